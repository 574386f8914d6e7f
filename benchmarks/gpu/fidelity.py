"""Section 5: fidelity of the block selection on a trained causal decoder's attention, per layer.

A small decoder (decoder.py) is trained on the standard library's code, then reads held-out
files; every layer's queries, keys and values are captured, and queries at positions spread
over the second half of the context act as decode steps over the keys before them. Per layer:
- `mass_kept`: share of the dense softmax mass inside the blocks the selector picked;
- `mass_best`: the most mass any choice of as many blocks could hold (per query head);
- `mass_static`: the mass of the always-kept blocks alone (sink, window, current block), so
  `1 - mass_static` is what the dynamic top-k has to find;
- `rel_error`: |sparse - dense| / |dense| of the attention output, through the backend's decode
  kernel (Triton on CUDA, the vectorised torch path on CPU).
Sizes: `gpu` trains at 8K context for about three minutes with the default settings; `cpu` is
the reduced form a 2-core machine can afford (1K context, every token setting divided by 8 and
top-k kept, so the block counts match 8K: 128 blocks, 42 read at the end); `smoke` only
exercises the code.

    python -m benchmarks.gpu.fidelity --size cpu        # 120 steps: a few minutes on two cores
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict, replace
from typing import Any

import torch

from generation.sparse_attention import kernels, selection
from generation.sparse_attention.config import SparseConfig

from . import decoder

DEFAULTS = SparseConfig(enabled=True, dense_threshold=0, dense_layers=0)
CONFIGS = {
    "gpu": DEFAULTS,
    "cpu": replace(DEFAULTS, block_size=8, sink_tokens=8, local_window=64),  # 8K / 8
    "smoke": replace(DEFAULTS, block_size=16, sink_tokens=16, local_window=32, top_k=4),
}
EVAL = {"gpu": (8, 32), "cpu": (8, 16), "smoke": (2, 8)}  # (held-out files, queries per file)


def identity_cache(keys: torch.Tensor, values: torch.Tensor,
                   block_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Contiguous K/V [kv_heads, n, d] in the backend's paged layout, blocks in order; + table."""
    kv_heads, n, dim = keys.shape
    blocks = -(-n // block_size)
    pad = blocks * block_size - n
    k = torch.nn.functional.pad(keys, (0, 0, 0, pad)).reshape(kv_heads, blocks, block_size, dim)
    v = torch.nn.functional.pad(values, (0, 0, 0, pad)).reshape(kv_heads, blocks, block_size, dim)
    kv = torch.cat((k, v), dim=-1).permute(1, 0, 2, 3).contiguous()
    return kv, torch.arange(blocks, dtype=torch.int32, device=keys.device)


def _mass(probs: torch.Tensor, idx: torch.Tensor, blocks: int, block_size: int,
          group: int) -> torch.Tensor:
    """Share of each query head's probability inside the blocks of `idx`: [positions, heads]."""
    positions, kv_heads, _ = idx.shape
    chosen = torch.zeros(positions, kv_heads, blocks + 1, dtype=torch.bool, device=idx.device)
    chosen.scatter_(2, torch.where(idx >= 0, idx, blocks).long(), True)
    per_block = probs.view(positions, probs.shape[1], blocks, block_size).sum(dim=-1)
    return (per_block * chosen[..., :blocks].repeat_interleave(group, dim=1)).sum(dim=-1)


def measure_layer(q_all: torch.Tensor, k_all: torch.Tensor, v_all: torch.Tensor,
                  config: SparseConfig, positions: list[int]) -> dict[str, torch.Tensor]:
    """Per (position, query head) figures for one layer; q [heads, n, d], k/v [kv_heads, n, d]."""
    heads, n, dim = q_all.shape
    kv_heads = k_all.shape[0]
    group = heads // kv_heads
    bs = config.block_size
    kv, table = identity_cache(k_all, v_all, bs)
    key_cache, value_cache = kernels.split_kv_cache(kv)
    summaries = selection.new_summaries(kv.shape[0], kv_heads, dim, kv)
    selection.update_summaries(summaries, k_all.transpose(0, 1),
                               torch.arange(n, device=kv.device), bs)
    pos = torch.tensor(positions, device=kv.device)
    query = q_all[:, pos].transpose(0, 1).contiguous()  # [positions, heads, d]
    seq = (pos + 1).to(torch.int32)
    tables = table[None].expand(len(positions), -1)
    longest = int(seq.max())
    idx = selection.select_blocks(query, summaries, tables, seq, config, longest)
    static = selection.select_blocks(query, summaries, tables, seq, replace(config, top_k=0),
                                     longest)
    scale = dim ** -0.5
    sparse = kernels.decode(query, key_cache, value_cache, tables, seq, idx, scale)
    dense = kernels.decode(query, key_cache, value_cache, tables, seq,
                           selection.all_blocks(seq, kv_heads, bs, longest), scale)
    blocks = kv.shape[0]
    keys = torch.nn.functional.pad(k_all, (0, 0, 0, blocks * bs - n))
    scores = torch.einsum("phd,htd->pht", query, keys.repeat_interleave(group, dim=0)) * scale
    t = torch.arange(blocks * bs, device=kv.device)
    probs = torch.softmax(scores.masked_fill(t > pos[:, None, None], float("-inf")), dim=-1)
    per_block = probs.view(len(positions), heads, blocks, bs).sum(dim=-1)
    ranked = per_block.sort(dim=-1, descending=True).values.cumsum(dim=-1)
    count = (idx >= 0).sum(dim=-1).repeat_interleave(group, dim=1)  # [positions, heads]
    in_context = (seq.to(torch.long) + bs - 1) // bs
    return {
        "mass_kept": _mass(probs, idx, blocks, bs, group),
        "mass_best": ranked.gather(-1, (count - 1).clamp(min=0)[..., None])[..., 0],
        "mass_static": _mass(probs, static, blocks, bs, group),
        "rel_error": (sparse - dense).norm(dim=-1) / dense.norm(dim=-1),
        "blocks_read_share": count / in_context[:, None],
    }


def summarize(parts: list[dict[str, torch.Tensor]]) -> dict[str, float]:
    """Means (and tails) over positions, heads and sequences of one layer's figures."""
    joined = {k: torch.cat([p[k].flatten().float().cpu() for p in parts]) for k in parts[0]}
    kept, best = joined["mass_kept"], joined["mass_best"]
    return {
        "mass_kept": float(kept.mean()), "mass_kept_p10": float(kept.quantile(0.1)),
        "mass_best": float(best.mean()), "kept_over_best": float(kept.mean() / best.mean()),
        "mass_static": float(joined["mass_static"].mean()),
        "rel_error": float(joined["rel_error"].mean()),
        "rel_error_p90": float(joined["rel_error"].quantile(0.9)),
        "blocks_read_share": float(joined["blocks_read_share"].mean()),
    }


QKV = tuple[torch.Tensor, torch.Tensor, torch.Tensor]  # one layer's q, k, v


def measure(per_sequence_layers: list[list[QKV]], config: SparseConfig,
            positions: list[int]) -> dict[str, Any]:
    """Per-layer summaries over sequences, plus their mean over layers."""
    layers = len(per_sequence_layers[0])
    per_layer = [summarize([measure_layer(*seq[i], config, positions)
                            for seq in per_sequence_layers]) for i in range(layers)]
    mean = {k: sum(layer[k] for layer in per_layer) / layers for k in per_layer[0]}
    return {"per_layer": per_layer, "mean": mean}


def run(size_name: str, device: str, seconds: float | None = None) -> dict[str, Any]:
    """Train the decoder of `size_name`, then measure on held-out code; the figures as a dict."""
    size = decoder.SIZES[size_name]
    config = CONFIGS[size_name]
    files, queries = EVAL[size_name]
    corpus = decoder.stdlib_corpus()
    rows, names = decoder.held_out_sequences(corpus, size.context, files)
    if not names:
        return {"error": f"no held-out file of {size.context} bytes under {corpus.source}"}
    budget = size.train_seconds if seconds is None else seconds
    model, training = decoder.train(size, corpus, device, budget)
    held_bits = decoder.bits_per_byte(model, rows, device)
    first = size.context // 2
    positions = sorted({first + (size.context - 1 - first) * i // (queries - 1)
                        for i in range(queries)})
    captured = []
    with torch.no_grad():
        for row in rows:
            layers: list[QKV] = []
            model(row[None].to(device), capture=layers)
            captured.append(layers)
    figures = measure(captured, config, positions)
    return {
        "size": asdict(size), "config": {k: v for k, v in asdict(config).items()
                                         if k in ("block_size", "sink_tokens", "local_window",
                                                  "top_k", "keep_ratio")},
        "corpus": {"source": corpus.source, "python": sys.version.split()[0],
                   "train_bytes": int(corpus.train.numel()), "held_out_files": names},
        "training": training, "held_out_bits_per_byte": held_bits,
        "positions": [positions[0], positions[-1], len(positions)], **figures,
    }


def main(argv: list[str] | None = None) -> int:
    """Train, measure, print a per-layer table and then the figures as one JSON line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", choices=sorted(decoder.SIZES), default=None,
                        help="gpu on a CUDA host, cpu otherwise")
    parser.add_argument("--seconds", type=float, default=None, help="training time budget")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    args = parser.parse_args(argv)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    size = args.size or ("gpu" if device == "cuda" else "cpu")
    if args.threads:
        torch.set_num_threads(args.threads)
    figures = run(size, device, args.seconds)
    if "error" in figures:
        print(figures["error"], file=sys.stderr)
        return 1
    print(f"decoder {size}: {figures['training']['steps']} steps, "
          f"{figures['training']['parameters']:,} parameters, held-out "
          f"{figures['held_out_bits_per_byte']:.2f} bits/byte; queries at positions "
          f"{figures['positions'][0]}..{figures['positions'][1]}")
    print(f"{'layer':>5} {'kept':>6} {'best':>6} {'kept/best':>9} {'static':>7} "
          f"{'rel err':>8} {'p90':>6} {'read':>6}")
    for i, row in enumerate([*figures["per_layer"], figures["mean"]]):
        label = str(i) if i < len(figures["per_layer"]) else "mean"
        print(f"{label:>5} {row['mass_kept']:>6.3f} {row['mass_best']:>6.3f} "
              f"{row['kept_over_best']:>9.3f} {row['mass_static']:>7.3f} "
              f"{row['rel_error']:>8.4f} {row['rel_error_p90']:>6.3f} "
              f"{row['blocks_read_share']:>6.1%}")
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
