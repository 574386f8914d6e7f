"""Block selection: summaries, the bound, exact top-k, and the sink/window/threshold/ratio rules."""

from __future__ import annotations

import math

import pytest

# Needs torch (the cpu extra): skipped on an install without it.
pytest.importorskip("torch")

import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from generation.sparse_attention import kernels, selection
from generation.sparse_attention.config import SparseConfig


def _cfg(**over) -> SparseConfig:
    base = dict(enabled=True, block_size=16, sink_tokens=16, local_window=32, top_k=3,
                keep_ratio=1.0, dense_threshold=0, dense_layers=0)
    return SparseConfig(**{**base, **over})


def _brute_scores(query, lo, hi, kv_heads):
    """score[r, h, j] = sum over the group's heads and dims of max(q*lo, q*hi), by loops."""
    reqs, heads, _ = query.shape
    group = heads // kv_heads
    n = lo.shape[1]
    out = torch.empty(reqs, kv_heads, n, dtype=torch.float64)
    for r in range(reqs):
        for h in range(kv_heads):
            for j in range(n):
                total = 0.0
                for g in range(h * group, (h + 1) * group):
                    q = query[r, g].double()
                    total += torch.maximum(q * lo[r, j, h].double(), q * hi[r, j, h].double()).sum()
                out[r, h, j] = total
    return out


def _identity_batch(seq_lens, kv_heads=2, heads=4, dim=8, block_size=16, seed=0):
    """Random summaries laid out so logical block j of request r is physical block r*n + j."""
    gen = torch.Generator().manual_seed(seed)
    n = max(-(-s // block_size) for s in seq_lens)
    reqs = len(seq_lens)
    a = torch.randn(reqs * n, kv_heads, dim, generator=gen)
    b = torch.randn(reqs * n, kv_heads, dim, generator=gen)
    summaries = torch.stack((torch.minimum(a, b), torch.maximum(a, b)), dim=2)
    table = torch.arange(reqs * n, dtype=torch.int32).reshape(reqs, n)
    query = torch.randn(reqs, heads, dim, generator=gen)
    return query, summaries, table, torch.tensor(seq_lens, dtype=torch.int32)


@pytest.mark.parametrize("seed", range(5))
def test_exact_top_k_set_on_tie_free_inputs(seed):
    config = _cfg(top_k=4)
    seq_lens = [300, 200, 161]
    query, summaries, table, seq = _identity_batch(seq_lens, seed=seed)
    idx = selection.select_blocks(query, summaries, table, seq, config, max(seq_lens))
    n = table.shape[1]
    lo = summaries[table.long()][:, :, :, 0]
    hi = summaries[table.long()][:, :, :, 1]
    scores = _brute_scores(query, lo, hi, kv_heads=2)
    for r, length in enumerate(seq_lens):
        blocks = -(-length // 16)
        forced = {j for j in range(blocks) if j < 1 or j >= blocks - 1 - 2}
        candidates = [j for j in range(blocks) if j not in forced]
        for h in range(2):
            ranked = sorted(candidates, key=lambda j, r=r, h=h: -float(scores[r, h, j]))
            want = forced | set(ranked[:4])
            got = [int(b) for b in idx[r, h] if b >= 0]
            assert got == sorted(want), (r, h)
            assert all(int(b) == -1 for b in idx[r, h, len(got):])
    assert idx.shape[2] <= selection.max_selected(config, max(seq_lens))
    assert n > 7  # more candidates than top_k: the check above is a real ranking


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10_000), group=st.sampled_from([1, 2, 4]),
       fill=st.integers(1, 16), scale=st.floats(0.01, 100.0))
def test_bound_is_at_least_the_true_max(seed, group, fill, scale):
    gen = torch.Generator().manual_seed(seed)
    kv_heads, dim, bs, blocks = 2, 8, 16, 3
    kv = torch.zeros(blocks, kv_heads, bs, 2 * dim)
    keys = torch.randn(blocks * bs, kv_heads, dim, generator=gen) * scale
    slots = torch.cat([torch.arange(fill) + b * bs for b in range(blocks)])
    kernels.write_kv(kv, keys[: slots.numel()], keys[: slots.numel()], slots)
    key_cache = kernels.split_kv_cache(kv)[0]
    summaries = selection.new_summaries(blocks, kv_heads, dim, kv)
    selection.update_summaries(summaries, keys[: slots.numel()], slots, bs)
    query = torch.randn(1, kv_heads * group, dim, generator=gen) * scale
    table = torch.arange(blocks, dtype=torch.int32)[None]
    grouped = selection.score_blocks(query, summaries, table, blocks)[0]  # [kv_heads, blocks]
    per_head_lo = summaries[:, :, 0].repeat_interleave(group, dim=1)[None]
    per_head_hi = summaries[:, :, 1].repeat_interleave(group, dim=1)[None]
    per_head = selection.block_upper_bounds(query, per_head_lo, per_head_hi)[0]  # [heads, blocks]
    for b in range(blocks):
        k = key_cache[b, :, :fill]  # [kv_heads, fill, dim] (the written keys only)
        for h in range(kv_heads):
            q = query[0, h * group:(h + 1) * group]
            dots = q @ k[h].T  # [group, fill]
            tol = 1e-4 * scale * scale * dim
            assert grouped[h, b] >= dots.sum(dim=0).max() - tol
            for g in range(group):
                assert per_head[h * group + g, b] >= dots[g].max() - tol


def test_summaries_are_min_and_max_of_written_keys_only():
    gen = torch.Generator().manual_seed(5)
    summaries = selection.new_summaries(3, 1, 4, torch.empty(0))
    stale = torch.randn(16, 1, 4, generator=gen) * 1e6  # a previous owner of block 1
    selection.update_summaries(summaries, stale, torch.arange(16, 32), 16)
    keys = torch.randn(9, 1, 4, generator=gen)
    selection.update_summaries(summaries, keys[:5], torch.arange(16, 21), 16)  # offsets 0..4
    torch.testing.assert_close(summaries[1, 0, 0], keys[:5, 0].amin(dim=0))
    torch.testing.assert_close(summaries[1, 0, 1], keys[:5, 0].amax(dim=0))
    selection.update_summaries(summaries, keys[5:], torch.tensor([21, 22, 23, -1]), 16)
    torch.testing.assert_close(summaries[1, 0, 0], keys[:8, 0].amin(dim=0))  # -1: padding
    torch.testing.assert_close(summaries[1, 0, 1], keys[:8, 0].amax(dim=0))
    assert torch.isinf(summaries[0]).all() and torch.isinf(summaries[2]).all()  # untouched


def test_incremental_summaries_equal_from_scratch():
    gen = torch.Generator().manual_seed(3)
    keys = torch.randn(50, 2, 8, generator=gen)
    table = torch.tensor([2, 0, 3, 1])
    slots = table[torch.arange(50) // 16] * 16 + torch.arange(50) % 16
    step = selection.new_summaries(4, 2, 8, keys)
    selection.update_summaries(step, keys[:20], slots[:20], 16)  # a prefill chunk
    for t in range(20, 50):  # then token by token
        selection.update_summaries(step, keys[t:t + 1], slots[t:t + 1], 16)
    scratch = selection.new_summaries(4, 2, 8, keys)
    selection.update_summaries(scratch, keys, slots, 16)
    torch.testing.assert_close(step, scratch)
    for logical, physical in enumerate(table.tolist()):
        block = keys[logical * 16:(logical + 1) * 16]
        torch.testing.assert_close(step[physical, :, 0], block.amin(dim=0))
        torch.testing.assert_close(step[physical, :, 1], block.amax(dim=0))


def test_scores_do_not_depend_on_the_summaries_storage():
    query, summaries, table, _ = _identity_batch([300, 200], seed=4)
    head_major = selection.new_summaries(summaries.shape[0], 2, 8, summaries)
    head_major.copy_(summaries)
    assert not head_major.is_contiguous()  # the backend's storage: [kv_head, block] underneath
    want = selection.score_blocks(query, summaries, table, table.shape[1])
    got = selection.score_blocks(query, head_major, table, table.shape[1])
    torch.testing.assert_close(got, want)
    lo, hi = summaries[table.long()][:, :, :, 0], summaries[table.long()][:, :, :, 1]
    torch.testing.assert_close(got.double(), _brute_scores(query, lo, hi, 2), rtol=1e-5,
                               atol=1e-4)


def test_sink_and_window_always_kept_and_padding():
    config = _cfg(top_k=0, sink_tokens=20, local_window=40)  # sink 2 blocks, window 3 blocks
    query, summaries, table, seq = _identity_batch([330, 40])
    idx = selection.select_blocks(query, summaries, table, seq, config, 330)
    # 330 tokens = 21 blocks: sink 0,1; current 20; window 17,18,19
    assert idx[0, 0].tolist()[:6] == [0, 1, 17, 18, 19, 20]
    assert idx[1, 1].tolist()[:3] == [0, 1, 2]  # 40 tokens = 3 blocks, all sink/window
    assert (idx[1, :, 3:] == -1).all()


def test_dense_threshold_keeps_every_block_of_short_requests():
    config = _cfg(top_k=1, dense_threshold=200)
    query, summaries, table, seq = _identity_batch([400, 199, 200])
    idx = selection.select_blocks(query, summaries, table, seq, config, 400)
    kept = (idx >= 0).sum(dim=-1)
    assert kept[1].tolist() == [13, 13]  # 199 tokens: dense, all 13 blocks
    assert kept[0].tolist() == [5, 5]  # sink 1 + window 2 + current 1 + top-1
    assert kept[2].tolist() == [5, 5]  # at the threshold: sparse


@pytest.mark.parametrize("ratio", [0.1, 0.25, 0.5])
def test_keep_ratio_caps_the_dynamic_blocks(ratio):
    config = _cfg(top_k=100, keep_ratio=ratio)
    query, summaries, table, seq = _identity_batch([640])  # 40 blocks, 36 candidates
    idx = selection.select_blocks(query, summaries, table, seq, config, 640)
    kept = (idx >= 0).sum(dim=-1)
    assert kept.tolist() == [[4 + math.floor(36 * ratio)] * 2]


def test_block_without_summary_is_kept():
    config = _cfg(top_k=1)
    query, summaries, table, seq = _identity_batch([320])
    summaries[5, 1] = selection.new_summaries(1, 1, 8, summaries)[0, 0]  # never written
    idx = selection.select_blocks(query, summaries, table, seq, config, 320)
    assert 5 in idx[0, 1].tolist()  # unknown bound: conservatively read
    assert (idx[0, 1] >= 0).sum() == 5  # scored +inf, it takes the one top-k slot


def test_all_blocks_is_the_dense_selection():
    idx = selection.all_blocks(torch.tensor([33, 1]), 2, 16, 33)
    assert idx.tolist() == [[[0, 1, 2]] * 2, [[0, -1, -1]] * 2]


def test_length_bound_beyond_the_table_is_harmless():
    config = _cfg(top_k=2)
    query, summaries, table, seq = _identity_batch([200])  # 13 blocks, table width 13
    exact = selection.select_blocks(query, summaries, table, seq, config, 200)
    loose = selection.select_blocks(query, summaries, table, seq, config, 400)  # 25 > 13
    assert loose[..., :exact.shape[-1]].tolist() == exact.tolist()
    assert (loose[..., exact.shape[-1]:] == -1).all()
