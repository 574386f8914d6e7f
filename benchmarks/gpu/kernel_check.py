"""Section 1: the Triton decode kernel against the torch oracle on named shapes, paged like vLLM.

Each shape's requests own shuffled physical blocks of one cache; every slot no request owns holds
NaN, so a read outside a context shows. The cache comes in two layouts, the same K/V in each:
`backend` (this backend's `[blocks, kv_heads, block, 2 * d]`, K then V per token) and
`vllm_flash` (vLLM's GPU layout `[2, blocks, block, kv_heads, d]`). Selections: `sparse` (sink,
window and top-2 by the real selector) against the sparse oracle, `covering` (every block)
against the dense oracle. The oracle runs in fp32 on CPU.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from generation.sparse_attention import kernels, reference, selection
from generation.sparse_attention.config import SparseConfig
from generation.sparse_attention.kernels import triton_decode

from .common import Run, describe


@dataclass(frozen=True)
class Shape:
    """One named batch: GQA layout, page size and each request's context length."""

    name: str
    heads: int
    kv_heads: int
    head_size: int
    block_size: int
    seq_lens: tuple[int, ...]


FULL = (
    Shape("one_token", 4, 2, 64, 16, (1,)),
    Shape("mixed_lengths", 4, 2, 64, 16, (1, 17, 300, 1024)),
    Shape("gqa8_head128", 16, 2, 128, 32, (513, 96)),
    Shape("deepseek_6.7b_mha_block64", 32, 32, 128, 64, (8192, 4097, 100)),
    Shape("gqa4_head128_block16", 32, 8, 128, 16, (5000, 64, 33)),
)
SMOKE = (
    Shape("mixed_lengths", 4, 2, 64, 16, (1, 17, 300)),
    Shape("gqa4_small", 8, 2, 32, 16, (100, 33)),
)
LAYOUTS = ("backend", "vllm_flash")
TOLERANCE = {torch.float16: 2e-3, torch.bfloat16: 2e-2, torch.float32: 1e-5}


def paged(shape: Shape, dtype: torch.dtype, device: str, seed: int = 0) -> dict[str, Any]:
    """Random K/V per request on shuffled blocks, in both layouts, plus query and summaries."""
    gen = torch.Generator().manual_seed(seed)
    bs = shape.block_size
    need = [-(-n // bs) for n in shape.seq_lens]
    total = sum(need) + 3
    order = torch.randperm(total, generator=gen)
    table = torch.zeros(len(need), max(need), dtype=torch.int32)
    own = torch.full((total, shape.kv_heads, bs, 2 * shape.head_size), float("nan"), dtype=dtype)
    flash = torch.full((2, total, bs, shape.kv_heads, shape.head_size), float("nan"), dtype=dtype)
    summaries = selection.new_summaries(total, shape.kv_heads, shape.head_size, own)
    used = 0
    for r, (n, blocks) in enumerate(zip(shape.seq_lens, need, strict=True)):
        table[r, :blocks] = order[used:used + blocks].to(torch.int32)
        used += blocks
        slots = (table[r, :blocks].long()[:, None] * bs + torch.arange(bs)).flatten()[:n]
        keys = torch.randn(n, shape.kv_heads, shape.head_size, generator=gen).to(dtype)
        values = torch.randn(n, shape.kv_heads, shape.head_size, generator=gen).to(dtype)
        kernels.write_kv(own, keys, values, slots)
        flash[0, slots // bs, slots % bs] = keys
        flash[1, slots // bs, slots % bs] = values
        selection.update_summaries(summaries, keys, slots, bs)
    query = torch.randn(len(need), shape.heads, shape.head_size, generator=gen).to(dtype)
    own, flash = own.to(device), flash.to(device)
    return {
        "query": query.to(device), "block_table": table.to(device),
        "seq_lens": torch.tensor(shape.seq_lens, dtype=torch.int32, device=device),
        "summaries": summaries.to(device), "layouts": {
            "backend": kernels.split_kv_cache(own),
            "vllm_flash": (flash[0].permute(0, 2, 1, 3), flash[1].permute(0, 2, 1, 3)),
        },
    }


def _selection(batch: dict[str, Any], shape: Shape, mode: str) -> torch.Tensor:
    longest = max(shape.seq_lens)
    if mode == "covering":
        return selection.all_blocks(batch["seq_lens"], shape.kv_heads, shape.block_size, longest)
    bs = shape.block_size
    config = SparseConfig(enabled=True, block_size=bs, sink_tokens=bs, local_window=2 * bs,
                          top_k=2, dense_threshold=0, dense_layers=0)
    return selection.select_blocks(batch["query"], batch["summaries"], batch["block_table"],
                                   batch["seq_lens"], config, longest)


def _oracle(batch: dict[str, Any], idx: torch.Tensor, mode: str, scale: float) -> torch.Tensor:
    key, value = (t.float().cpu() for t in batch["layouts"]["backend"])
    args = (batch["query"].float().cpu(), key, value, batch["block_table"].cpu(),
            batch["seq_lens"].cpu())
    if mode == "covering":
        return reference.dense_decode(*args, scale)
    return reference.sparse_decode(*args, idx.cpu(), scale)


def run(run_: Run) -> dict[str, Any]:
    """Every shape x dtype x selection x layout: max error against the oracle, and a verdict."""
    shapes = SMOKE if run_.smoke else FULL
    dtypes = (torch.float16, torch.bfloat16)
    # The interpreter's bf16 tl.dot is wrong (STACK-NOTES): under it, bf16 runs upcast.
    upcast_bf16 = run_.device != "cuda"
    cases: dict[str, Any] = {}
    for shape in shapes:
        for dtype in dtypes:
            batch = paged(shape, dtype, run_.device)
            scale = shape.head_size ** -0.5
            for mode in ("sparse", "covering"):
                idx = _selection(batch, shape, mode)
                want = _oracle(batch, idx, mode, scale)
                limit = TOLERANCE[dtype] * (1.0 + float(want.abs().max()))
                for layout in LAYOUTS:
                    name = f"{shape.name}/{str(dtype).removeprefix('torch.')}/{mode}/{layout}"
                    key, value = batch["layouts"][layout]
                    try:
                        got = triton_decode.sparse_decode(
                            batch["query"], key, value, batch["block_table"], batch["seq_lens"],
                            idx, scale, upcast=upcast_bf16 and dtype == torch.bfloat16)
                        got = got.float().cpu()
                        err = float((got - want).abs().max())
                        finite = bool(torch.isfinite(got).all())
                        cases[name] = {"max_err": err, "tol": limit, "finite": finite,
                                       "ok": finite and err <= limit}
                    except Exception as exc:  # one broken case must not hide the others
                        cases[name] = {"ok": False, "error": describe(exc)}
    return {"cases": cases, "all_ok": all(c["ok"] for c in cases.values()),
            "count": len(cases), "bf16_upcast": upcast_bf16,
            "interpreted": type(triton_decode._split_kernel).__name__ == "InterpretedFunction"}
