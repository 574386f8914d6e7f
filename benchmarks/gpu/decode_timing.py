"""Sections 2-4: decode attention time (sparse vs dense), selection cost, and KV bytes read.

Per attention shape, context and batch, one layer's decode step, bf16, default settings:
- `select_ms`: the block selection alone (scores from the key summaries, top-k, block_idx);
- `sparse_kernel_ms`: the Triton kernel over the selected blocks; `sparse_ms`: both together;
- `dense_triton_ms`: the same paged Triton kernel over every block (a paged dense kernel);
- `dense_sdpa_ms`: torch SDPA (FlashAttention when torch picks it; `sdpa_backend` says) on
  contiguous K/V, the query heads of a GQA group as its query axis;
- `kv_read_ratio`: bytes the sparse step reads (selected K/V blocks plus every key summary the
  scorer reads) over the bytes a dense step reads.
The paged cache is a strided view of the very tensors SDPA reads (no second copy, so 128K x 32
fits): request b's logical block j is physical row b * kv_heads * blocks + j, and both kernels
go through the block table. Random keys: the selection's cost, not its choices, is measured.
A size whose K/V would not fit in the memory budget, or that the time budget no longer allows,
is skipped with the reason.
"""

from __future__ import annotations

from typing import Any

import torch

from generation.sparse_attention import selection
from generation.sparse_attention.config import SparseConfig
from generation.sparse_attention.kernels import triton_decode

from .common import Run, describe, time_ms

# name: (query heads, KV heads, head size)
SHAPES = {"deepseek_coder_6.7b_mha": (32, 32, 128), "gqa_32q_8kv": (32, 8, 128)}
CONTEXTS = (4096, 16384, 32768, 65536, 131072)
BATCHES = (1, 8, 32)
SMOKE_SHAPES = {"mha_tiny": (4, 4, 32), "gqa_tiny": (4, 2, 32)}
SMOKE_CONTEXTS = (512,)
SMOKE_BATCHES = (1, 2)
FULL_CONFIG = SparseConfig(enabled=True, dense_threshold=0)
SMOKE_CONFIG = SparseConfig(enabled=True, block_size=16, sink_tokens=16, local_window=32,
                            top_k=4, dense_threshold=0)
SECONDS_PER_SIZE = 8.0  # a generous bound on one size's setup + five timings, for the budget


def _memory_budget(device: str) -> float:
    """Bytes of K/V one size may allocate."""
    if device != "cuda":
        return 1 << 30
    free, _ = torch.cuda.mem_get_info()
    return 0.7 * free - (4 << 30)


def _paged_views(keys: torch.Tensor, block_size: int) -> torch.Tensor:
    """[physical blocks, kv_heads, block, d] view of contiguous [batch, kv_heads, T, d]."""
    batch, kv_heads, context, dim = keys.shape
    blocks = context // block_size
    physical = (batch - 1) * kv_heads * blocks + blocks
    return keys.as_strided((physical, kv_heads, block_size, dim),
                           (block_size * dim, context * dim, dim, 1))


def _summaries(keys: torch.Tensor, block_size: int) -> torch.Tensor:
    """Key summaries in the backend's storage, row b * blocks + j for request b's block j."""
    batch, kv_heads, context, dim = keys.shape
    blocks = context // block_size
    out = selection.new_summaries(batch * blocks, kv_heads, dim, keys)
    view = keys.view(batch, kv_heads, blocks, block_size, dim)
    for b in range(batch):  # one request at a time keeps the fp32 temporaries small
        lo, hi = torch.aminmax(view[b].float(), dim=2)  # [kv_heads, blocks, d]
        out[b * blocks:(b + 1) * blocks, :, 0] = lo.transpose(0, 1)
        out[b * blocks:(b + 1) * blocks, :, 1] = hi.transpose(0, 1)
    return out


def _sdpa(query: torch.Tensor, keys: torch.Tensor, values: torch.Tensor, scale: float):
    """Dense decode through SDPA, FlashAttention forced when available; returns (fn, backend)."""
    batch, heads, dim = query.shape
    q = query.view(batch, keys.shape[1], heads // keys.shape[1], dim)

    def plain():
        return torch.nn.functional.scaled_dot_product_attention(q, keys, values, scale=scale)

    if query.is_cuda:
        from torch.nn.attention import SDPBackend, sdpa_kernel

        def flash():
            with sdpa_kernel(SDPBackend.FLASH_ATTENTION):
                return plain()

        try:
            flash()
            return flash, "flash"
        except RuntimeError:
            pass
    return plain, "default"


def one_size(run_: Run, shape: tuple[int, int, int], context: int, batch: int,
             config: SparseConfig) -> dict[str, Any]:
    """Every figure for one (shape, context, batch)."""
    heads, kv_heads, dim = shape
    bs = config.block_size
    device = run_.device
    dtype = torch.bfloat16
    gen = torch.Generator(device=device).manual_seed(context + batch)
    keys = torch.randn(batch, kv_heads, context, dim, generator=gen, device=device, dtype=dtype)
    values = torch.randn(batch, kv_heads, context, dim, generator=gen, device=device,
                         dtype=dtype)
    query = torch.randn(batch, heads, dim, generator=gen, device=device, dtype=dtype)
    blocks = context // bs
    key_pages, value_pages = _paged_views(keys, bs), _paged_views(values, bs)
    reqs = torch.arange(batch, device=device, dtype=torch.int32)[:, None]
    logical = torch.arange(blocks, device=device, dtype=torch.int32)[None, :]
    kv_table = reqs * kv_heads * blocks + logical
    summary_table = reqs * blocks + logical
    summaries = _summaries(keys, bs)
    seq = torch.full((batch,), context, dtype=torch.int32, device=device)
    scale = dim ** -0.5
    upcast = device != "cuda"  # the interpreter's bf16 dot (smoke only)

    def select():
        return selection.select_blocks(query, summaries, summary_table, seq, config, context)

    idx = select()
    every = selection.all_blocks(seq, kv_heads, bs, context)

    def sparse_kernel():
        return triton_decode.sparse_decode(query, key_pages, value_pages, kv_table, seq, idx,
                                           scale, upcast=upcast)

    def sparse():
        return triton_decode.sparse_decode(query, key_pages, value_pages, kv_table, seq,
                                           select(), scale, upcast=upcast)

    def dense_triton():
        return triton_decode.sparse_decode(query, key_pages, value_pages, kv_table, seq, every,
                                           scale, upcast=upcast)

    sdpa, backend = _sdpa(query, keys, values, scale)
    check = (dense_triton().float() - sdpa().reshape(batch, heads, dim).float()).abs().max()
    read = (idx >= 0).sum(dim=-1).double()  # [batch, kv_heads]
    block_bytes = 2 * bs * dim * keys.element_size()
    summary_bytes = 2 * dim * summaries.element_size()
    sparse_bytes = float((read * block_bytes + blocks * summary_bytes).sum())
    dense_bytes = float(batch * kv_heads * blocks * block_bytes)
    figures: dict[str, Any] = {
        "blocks": blocks, "blocks_read_mean": float(read.mean()),
        "kv_read_ratio": sparse_bytes / dense_bytes, "kv_bytes_dense": dense_bytes,
        "kv_bytes_sparse": sparse_bytes, "dense_triton_vs_sdpa_max_err": float(check),
        "sdpa_backend": backend,
    }
    for name, fn in (("select_ms", select), ("sparse_kernel_ms", sparse_kernel),
                     ("sparse_ms", sparse), ("dense_triton_ms", dense_triton),
                     ("dense_sdpa_ms", sdpa)):
        figures[name] = time_ms(fn, device, run_.smoke)
    figures["sparse_vs_sdpa"] = figures["sparse_ms"] / figures["dense_sdpa_ms"]
    figures["sparse_vs_dense_triton"] = figures["sparse_ms"] / figures["dense_triton_ms"]
    return figures


def _tokens(count: int) -> str:
    return f"{count // 1024}k" if count % 1024 == 0 else str(count)


def run(run_: Run, reserve_s: float) -> dict[str, Any]:
    """The whole grid, skipping sizes beyond the memory budget or the time left minus reserve."""
    shapes = SMOKE_SHAPES if run_.smoke else SHAPES
    contexts = SMOKE_CONTEXTS if run_.smoke else CONTEXTS
    batches = SMOKE_BATCHES if run_.smoke else BATCHES
    config = SMOKE_CONFIG if run_.smoke else FULL_CONFIG
    sizes: dict[str, Any] = {}
    for shape_name, shape in shapes.items():
        _, kv_heads, dim = shape
        for context in contexts:
            for batch in batches:
                name = f"{shape_name}/{_tokens(context)}/b{batch}"
                kv_bytes = 2 * batch * kv_heads * context * dim * 2
                if kv_bytes > _memory_budget(run_.device):
                    sizes[name] = {"skipped": f"K/V {kv_bytes / 2**30:.0f} GiB > memory budget"}
                    continue
                if run_.left() - reserve_s < SECONDS_PER_SIZE:
                    sizes[name] = {"skipped": "time budget"}
                    continue
                try:
                    sizes[name] = one_size(run_, shape, context, batch, config)
                except Exception as exc:  # e.g. out of memory: record it, go on
                    sizes[name] = {"error": describe(exc)}
                finally:
                    if run_.device == "cuda":
                        torch.cuda.empty_cache()
    return {"config": {"block_size": config.block_size, "sink_tokens": config.sink_tokens,
                       "local_window": config.local_window, "top_k": config.top_k},
            "dtype": "bfloat16", "sizes": sizes}
