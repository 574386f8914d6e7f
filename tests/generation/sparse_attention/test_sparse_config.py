"""Settings from the environment, and plugin registration (off by default, idempotent)."""

from __future__ import annotations

import importlib.util
import json
from dataclasses import asdict

import msgspec
import pytest

from analysis.settings import SparseSettings
from generation.sparse_attention import config as sparse_config
from generation.sparse_attention import plugin
from generation.sparse_attention.config import ENV_VAR, SparseConfig, parse_config

# Registration and the backend class need vLLM (and torch); the settings tests need neither.
needs_vllm = pytest.mark.skipif(importlib.util.find_spec("vllm") is None,
                                reason="needs vllm (pip install -e '.[cpu]')")


def test_defaults_and_keys_match_the_settings_model():
    info = msgspec.inspect.type_info(SparseSettings)
    settings_defaults = {f.encode_name: f.default for f in info.fields}
    assert set(settings_defaults) == set(sparse_config._CAMEL)
    ours = asdict(SparseConfig())
    for camel, snake in sparse_config._CAMEL.items():
        assert ours[snake] == settings_defaults[camel], camel


def test_settings_json_round_trips():
    settings = SparseSettings(enabled=True, block_size=32, sink_tokens=0, local_window=128,
                              top_k=4, keep_ratio=0.5, dense_threshold=1024, dense_layers=1)
    config, problems = parse_config(msgspec.json.encode(settings).decode())
    assert problems == []
    assert config == SparseConfig(True, 32, 0, 128, 4, 0.5, 1024, 1)


def test_missing_keys_take_defaults():
    config, problems = parse_config('{"enabled": true, "topK": 8}')
    assert problems == []
    assert config == SparseConfig(enabled=True, top_k=8)


@pytest.mark.parametrize("text", ["{not json", "[1, 2]", '"enabled"'])
def test_bad_json_stays_stock_with_a_reason(text):
    config, problems = parse_config(text)
    assert config is None
    assert len(problems) == 1 and ENV_VAR in problems[0]


def test_bad_values_are_reported_and_defaulted():
    config, problems = parse_config(json.dumps({
        "enabled": True, "blockSize": 48, "topK": "8", "keepRatio": 0, "denseLayers": -1,
        "sinkTokens": True, "somethingNew": 1,
    }))
    assert config == SparseConfig(enabled=True)
    assert [p.split(":")[0] for p in problems] == [
        "blockSize", "topK", "keepRatio", "denseLayers", "sinkTokens"]


@needs_vllm
def test_register_is_a_no_op_unless_enabled(monkeypatch):
    from vllm.v1.attention.backends.registry import AttentionBackendEnum

    monkeypatch.delenv(ENV_VAR, raising=False)
    assert plugin.register() is None
    monkeypatch.setenv(ENV_VAR, '{"enabled": false, "topK": 1}')
    assert plugin.register() is None
    monkeypatch.setenv(ENV_VAR, "{oops")
    assert plugin.register() is None
    assert not AttentionBackendEnum.CPU_ATTN.is_overridden()


@needs_vllm
def test_register_overrides_cpu_attn_idempotently(monkeypatch):
    from vllm.v1.attention.backends.registry import AttentionBackendEnum

    from generation.sparse_attention.backend import SparseAttentionBackend

    slot = AttentionBackendEnum.CPU_ATTN
    assert not slot.is_overridden()
    monkeypatch.setenv(ENV_VAR, '{"enabled": true}')
    try:
        assert plugin.register() == "CPU_ATTN"
        assert plugin.register() == "CPU_ATTN"
        assert slot.get_class() is SparseAttentionBackend
        assert SparseAttentionBackend.get_name() == "CPU_ATTN"
        assert AttentionBackendEnum[SparseAttentionBackend.get_name()] is slot
        assert not AttentionBackendEnum.CUSTOM.is_overridden()
    finally:
        slot.clear_override()


@needs_vllm
def test_backend_block_size_follows_the_setting(monkeypatch):
    from generation.sparse_attention.backend import SparseAttentionBackend

    monkeypatch.setenv(ENV_VAR, '{"enabled": true, "blockSize": 32}')
    assert SparseAttentionBackend.get_supported_kernel_block_sizes() == [32]
    assert SparseAttentionBackend.get_kv_cache_shape(10, 32, 2, 64) == (10, 2, 32, 128)
    assert not SparseAttentionBackend.is_sparse()  # dense model layers, as vLLM defines it
