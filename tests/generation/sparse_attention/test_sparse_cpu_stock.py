"""The CPU path (vLLM's CPU_ATTN kernel on a compacted block table) against the oracles.

The stock cache is filled from the same K/V as the reference-layout batch; slots outside every
context hold large finite garbage (the stock kernel masks by position; a read past a context
would swamp the softmax and show).
"""

from __future__ import annotations

import pytest

# Needs torch and vLLM's CPU kernels (the cpu extra): skipped on an install without them.
pytest.importorskip("torch")
pytest.importorskip("vllm")

import torch

from generation.sparse_attention import reference, selection
from generation.sparse_attention.config import SparseConfig
from generation.sparse_attention.kernels import cpu_stock


def _stock_cache(paged) -> tuple[torch.Tensor, str]:
    """The paged batch's K/V written into a stock-layout cache through stock's own writer."""
    blocks, kv_heads, block_size, dim = paged.key_cache.shape
    isa = cpu_stock.isa_for(paged.kv_cache.dtype, block_size, dim)
    kv = torch.full_like(paged.kv_cache, 1e4)
    keys = paged.key_cache.permute(0, 2, 1, 3).reshape(blocks * block_size, kv_heads, dim)
    values = paged.value_cache.permute(0, 2, 1, 3).reshape(blocks * block_size, kv_heads, dim)
    written = ~torch.isnan(keys).any(dim=-1).any(dim=-1)
    slots = torch.arange(blocks * block_size)[written]
    cpu_stock.write(kv, keys[written].contiguous(), values[written].contiguous(), slots, isa)
    return kv, isa


def _select(paged, shape, top_k: int) -> torch.Tensor:
    config = SparseConfig(enabled=True, block_size=shape.block_size, sink_tokens=shape.block_size,
                          local_window=2 * shape.block_size, top_k=top_k, dense_threshold=0,
                          dense_layers=0)
    return selection.select_blocks(paged.query, paged.summaries, paged.block_table,
                                   paged.seq_lens, config, int(paged.seq_lens.max()))


def _run(paged, idx) -> torch.Tensor:
    kv, isa = _stock_cache(paged)
    scale = paged.query.shape[-1] ** -0.5
    return cpu_stock.sparse_decode(paged.query, kv, paged.block_table, paged.seq_lens, idx,
                                   scale, isa)


def test_sparse_selection_matches_sparse_oracle(paged, shape):
    idx = _select(paged, shape, top_k=2)
    want = reference.sparse_decode(paged.query, paged.key_cache, paged.value_cache,
                                   paged.block_table, paged.seq_lens, idx,
                                   shape.head_size ** -0.5)
    torch.testing.assert_close(_run(paged, idx), want, atol=1e-5, rtol=0)


def test_every_block_equals_dense_oracle(paged, shape):
    idx = selection.all_blocks(paged.seq_lens, shape.kv_heads, shape.block_size,
                               int(paged.seq_lens.max()))
    want = reference.dense_decode(paged.query, paged.key_cache, paged.value_cache,
                                  paged.block_table, paged.seq_lens, shape.head_size ** -0.5)
    torch.testing.assert_close(_run(paged, idx), want, atol=1e-5, rtol=0)


def test_padding_anywhere_in_any_order(build_paged, named):
    paged = build_paged(named("mixed_lengths"))
    idx = torch.tensor([[[0, -1, -1, -1], [-1, 0, -1, -1]],
                        [[1, -1, 0, -1], [-1, -1, -1, 1]],
                        [[18, -1, 3, 0], [0, 5, -1, 18]],
                        [[63, 10, -1, -1], [-1, 63, 62, 2]]], dtype=torch.int32)
    want = reference.sparse_decode(paged.query, paged.key_cache, paged.value_cache,
                                   paged.block_table, paged.seq_lens, idx, 64 ** -0.5)
    torch.testing.assert_close(_run(paged, idx), want, atol=1e-5, rtol=0)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16], ids=["bf16", "fp16"])
def test_16_bit_caches_within_tolerance(build_paged, named, dtype):
    shape = named("gqa8_head128")
    paged = build_paged(shape, dtype=dtype)
    idx = _select(paged, shape, top_k=3)
    got = _run(paged, idx)
    assert got.dtype == dtype
    want = reference.sparse_decode(paged.query, paged.key_cache, paged.value_cache,
                                   paged.block_table, paged.seq_lens, idx, 128 ** -0.5)
    tol = 2e-2 if dtype == torch.bfloat16 else 2e-3
    torch.testing.assert_close(got.float(), want, atol=tol, rtol=tol)
