"""The torch decode path against the dense and sparse oracles, and against FlexAttention."""

from __future__ import annotations

import warnings

import pytest

# Needs torch (the cpu extra): skipped on an install without it.
pytest.importorskip("torch")

import torch
from torch.nn.attention.flex_attention import BlockMask, flex_attention

from generation.sparse_attention import kernels, reference, selection
from generation.sparse_attention.config import SparseConfig
from generation.sparse_attention.kernels import torch_decode

ATOL = 1e-5


def _scale(paged) -> float:
    return paged.query.shape[-1] ** -0.5


def _config(block_size: int, top_k: int, **over) -> SparseConfig:
    base = dict(enabled=True, block_size=block_size, sink_tokens=block_size,
                local_window=2 * block_size, top_k=top_k, dense_threshold=0, dense_layers=0)
    return SparseConfig(**{**base, **over})


def _select(paged, config: SparseConfig) -> torch.Tensor:
    return selection.select_blocks(paged.query, paged.summaries, paged.block_table,
                                   paged.seq_lens, config, int(paged.seq_lens.max()))


def test_all_blocks_equals_dense_oracle(paged, shape):
    idx = selection.all_blocks(paged.seq_lens, shape.kv_heads, shape.block_size,
                               int(paged.seq_lens.max()))
    got = torch_decode.sparse_decode(paged.query, paged.key_cache, paged.value_cache,
                                     paged.block_table, paged.seq_lens, idx, _scale(paged),
                                     budget=1)
    want = reference.dense_decode(paged.query, paged.key_cache, paged.value_cache,
                                  paged.block_table, paged.seq_lens, _scale(paged))
    torch.testing.assert_close(got, want, atol=ATOL, rtol=0)


def test_top_k_covering_every_block_equals_dense(paged, shape):
    n_blocks = -(-max(shape.seq_lens) // shape.block_size)
    idx = _select(paged, _config(shape.block_size, top_k=n_blocks))
    got = torch_decode.sparse_decode(paged.query, paged.key_cache, paged.value_cache,
                                     paged.block_table, paged.seq_lens, idx, _scale(paged))
    want = reference.dense_decode(paged.query, paged.key_cache, paged.value_cache,
                                  paged.block_table, paged.seq_lens, _scale(paged))
    torch.testing.assert_close(got, want, atol=ATOL, rtol=0)


def test_sparse_selection_matches_sparse_oracle(paged, shape):
    idx = _select(paged, _config(shape.block_size, top_k=2))
    got = torch_decode.sparse_decode(paged.query, paged.key_cache, paged.value_cache,
                                     paged.block_table, paged.seq_lens, idx, _scale(paged),
                                     budget=1)
    want = reference.sparse_decode(paged.query, paged.key_cache, paged.value_cache,
                                   paged.block_table, paged.seq_lens, idx, _scale(paged))
    torch.testing.assert_close(got, want, atol=ATOL, rtol=0)


def test_sparse_differs_from_dense_on_long_context(build_paged, named):
    paged = build_paged(named("single_long"))
    idx = _select(paged, _config(16, top_k=2))
    sparse = torch_decode.sparse_decode(paged.query, paged.key_cache, paged.value_cache,
                                        paged.block_table, paged.seq_lens, idx, _scale(paged))
    dense = reference.dense_decode(paged.query, paged.key_cache, paged.value_cache,
                                   paged.block_table, paged.seq_lens, _scale(paged))
    assert (idx >= 0).sum(dim=-1).max() < 63  # 1000 tokens = 63 blocks; far fewer are read
    assert (sparse - dense).abs().max() > 1e-3  # the oracle comparisons above are not vacuous


def _flex(paged, idx: torch.Tensor, block_size: int) -> torch.Tensor:
    """FlexAttention per request with a BlockMask built from the selected KV blocks."""
    reqs, heads, dim = paged.query.shape
    kv_heads = paged.kv_cache.shape[1]
    out = torch.empty(reqs, heads, dim)
    for r in range(reqs):
        n = int(paged.seq_lens[r])
        n_blocks = -(-n // block_size)
        padded = n_blocks * block_size
        keys = reference.gather_tokens(paged.key_cache, paged.block_table[r], n)
        values = reference.gather_tokens(paged.value_cache, paged.block_table[r], n)
        keys = torch.nn.functional.pad(keys, (0, 0, 0, padded - n))
        values = torch.nn.functional.pad(values, (0, 0, 0, padded - n))
        per_q = idx[r].repeat_interleave(heads // kv_heads, dim=0)  # [heads, k]
        chosen = torch.zeros(heads, n_blocks, dtype=torch.bool)
        for h in range(heads):
            chosen[h, per_q[h][per_q[h] >= 0].long()] = True
        counts = chosen.sum(dim=1).to(torch.int32)[None, :, None]
        order = torch.argsort((~chosen).to(torch.int8), dim=1, stable=True).to(torch.int32)

        def mask_mod(b, h, q_idx, kv_idx, chosen=chosen, n=n):
            # Eager flex materialises scores and applies mask_mod; it must agree with the blocks.
            return (kv_idx < n) & chosen[h, kv_idx // block_size]

        mask = BlockMask.from_kv_blocks(counts, order[None, :, None, :],
                                        BLOCK_SIZE=(1, block_size), mask_mod=mask_mod,
                                        seq_lengths=(1, padded))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            o = flex_attention(paged.query[r][None, :, None].float(), keys[None].float(),
                               values[None].float(), block_mask=mask,
                               scale=dim ** -0.5, enable_gqa=heads != kv_heads)
        out[r] = o[0, :, 0]
    return out


@pytest.mark.parametrize("top_k", [2, 1000], ids=["sparse", "covering"])
def test_flex_attention_is_an_independent_oracle(build_paged, named, top_k):
    shape = named("mixed_lengths")
    paged = build_paged(shape)
    idx = _select(paged, _config(shape.block_size, top_k=top_k))
    got = torch_decode.sparse_decode(paged.query, paged.key_cache, paged.value_cache,
                                     paged.block_table, paged.seq_lens, idx, _scale(paged))
    torch.testing.assert_close(got, _flex(paged, idx, shape.block_size), atol=ATOL, rtol=0)
    if top_k == 1000:
        dense = reference.dense_decode(paged.query, paged.key_cache, paged.value_cache,
                                       paged.block_table, paged.seq_lens, _scale(paged))
        torch.testing.assert_close(got, dense, atol=ATOL, rtol=0)


@pytest.mark.parametrize("q_len", [1, 5, 37])
def test_prefill_is_causal_dense_attention(build_paged, named, q_len):
    shape = named("single_long")
    paged = build_paged(shape)
    n = shape.seq_lens[0]
    queries = torch.randn(q_len, shape.heads, shape.head_size)
    got = kernels.prefill(queries, paged.key_cache, paged.value_cache, paged.block_table[0], n,
                          _scale(paged))
    for i in range(q_len):
        ctx = torch.tensor([n - q_len + i + 1], dtype=torch.int32)
        want = reference.dense_decode(queries[i][None], paged.key_cache, paged.value_cache,
                                      paged.block_table[:1], ctx, _scale(paged))
        torch.testing.assert_close(got[i][None].float(), want, atol=ATOL, rtol=0)


def test_padding_anywhere_and_duplicates_free_order(build_paged, named):
    paged = build_paged(named("mixed_lengths"))
    idx = torch.tensor([[[0, -1, -1, -1], [-1, 0, -1, -1]],
                        [[1, -1, 0, -1], [-1, -1, -1, 1]],
                        [[18, -1, 3, 0], [0, 5, -1, 18]],
                        [[63, 10, -1, -1], [-1, 63, 62, 2]]], dtype=torch.int32)
    got = torch_decode.sparse_decode(paged.query, paged.key_cache, paged.value_cache,
                                     paged.block_table, paged.seq_lens, idx, _scale(paged))
    want = reference.sparse_decode(paged.query, paged.key_cache, paged.value_cache,
                                   paged.block_table, paged.seq_lens, idx, _scale(paged))
    torch.testing.assert_close(got, want, atol=ATOL, rtol=0)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16], ids=["bf16", "fp16"])
def test_16_bit_caches_within_tolerance(build_paged, named, dtype):
    shape = named("gqa8_head128")
    paged = build_paged(shape, dtype=dtype)
    idx = _select(paged, _config(shape.block_size, top_k=3))
    got = torch_decode.sparse_decode(paged.query, paged.key_cache, paged.value_cache,
                                     paged.block_table, paged.seq_lens, idx, _scale(paged))
    assert got.dtype == dtype
    want = reference.sparse_decode(paged.query, paged.key_cache, paged.value_cache,
                                   paged.block_table, paged.seq_lens, idx, _scale(paged))
    tol = 2e-2 if dtype == torch.bfloat16 else 2e-3
    torch.testing.assert_close(got.float(), want, atol=tol, rtol=tol)
