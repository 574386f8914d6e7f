"""Choose which KV blocks each decode query reads: summaries, upper-bound scores, block_idx.

Pure torch, device-agnostic, no host synchronisation on the selection path.

- Summaries: per physical KV block and KV head, the elementwise min and max of the keys written so
  far (`summaries[block, kv_head, 0|1, head_size]`), refreshed as K/V is written.
- Score: for query q and a block with key bounds [lo, hi], sum_d max(q_d * lo_d, q_d * hi_d) is an
  upper bound of q.k for every key k in the block. The per-KV-head score sums it over the query
  heads of the GQA group.
- Selection: the sink blocks and the local window (plus the current partial block) are always kept;
  of the other blocks the top-k by score, at most `keep_ratio` of them. Requests whose context is
  under the dense threshold keep every block. Output: `block_idx[req, kv_head, k]`, logical block
  numbers (positions in the request's block table) in ascending order, padded with -1.
"""

from __future__ import annotations

import torch

from .config import SparseConfig

_NEG = float("-inf")


def new_summaries(num_blocks: int, num_kv_heads: int, head_size: int, like: torch.Tensor):
    """Empty summaries (min=+inf, max=-inf) for a KV cache of `num_blocks` blocks."""
    out = torch.empty(num_blocks, num_kv_heads, 2, head_size, dtype=torch.float32,
                      device=like.device)
    out[:, :, 0].fill_(float("inf"))
    out[:, :, 1].fill_(_NEG)
    return out


def update_summaries(summaries: torch.Tensor, key_cache: torch.Tensor,
                     slot_mapping: torch.Tensor) -> None:
    """Recompute min/max of every block that `slot_mapping` just wrote, over its filled prefix.

    Tokens enter a block in position order, so after writing offset o the block holds valid keys
    at offsets 0..o; recomputing over that prefix ignores stale keys left by a previous owner of
    the block (or by rejected speculative tokens) without any reset bookkeeping.
    """
    block_size = key_cache.shape[2]
    slots = slot_mapping.reshape(-1).to(torch.long)
    slots = slots[slots >= 0]
    if slots.numel() == 0:
        return
    blocks = slots // block_size
    offsets = slots % block_size
    touched, inverse = torch.unique(blocks, return_inverse=True)
    fill = torch.zeros(touched.shape[0], dtype=torch.long, device=slots.device)
    fill.scatter_reduce_(0, inverse, offsets + 1, reduce="amax")
    keys = key_cache[touched].float()  # [n, kv_heads, block_size, head_size]
    valid = torch.arange(block_size, device=slots.device)[None, :] < fill[:, None]
    valid = valid[:, None, :, None]
    lo = torch.where(valid, keys, float("inf")).amin(dim=2)
    hi = torch.where(valid, keys, _NEG).amax(dim=2)
    summaries[touched] = torch.stack((lo, hi), dim=2)


def block_upper_bounds(query: torch.Tensor, key_min: torch.Tensor,
                       key_max: torch.Tensor) -> torch.Tensor:
    """Upper bound of q.k per query head and block: [reqs, heads, n]; keys [reqs, n, heads, d]."""
    q = query.float()
    pos = q.clamp(min=0)
    neg = q.clamp(max=0)
    return (torch.einsum("rhd,rnhd->rhn", pos, key_max.float())
            + torch.einsum("rhd,rnhd->rhn", neg, key_min.float()))


def score_blocks(query: torch.Tensor, summaries: torch.Tensor, block_table: torch.Tensor,
                 num_blocks: int) -> torch.Tensor:
    """Group-summed upper bounds for the first `num_blocks` logical blocks: [reqs, kv_heads, n].

    `query` is [reqs, heads, d]; heads are grouped consecutively per KV head (GQA).
    """
    reqs, heads, dim = query.shape
    kv_heads = summaries.shape[1]
    group = heads // kv_heads
    q = query.float().reshape(reqs, kv_heads, group, dim)
    # sum_g max(q_g lo, q_g hi) = (sum_g q_g+) . hi + (sum_g q_g-) . lo
    pos = q.clamp(min=0).sum(dim=2)
    neg = q.clamp(max=0).sum(dim=2)
    table = block_table[:, :num_blocks].to(torch.long).clamp(min=0)
    if table.shape[1] < num_blocks:  # a host-side length bound may exceed the table: pad, masked
        table = torch.nn.functional.pad(table, (0, num_blocks - table.shape[1]))
    summ = summaries[table]  # [reqs, n, kv_heads, 2, d]
    lo, hi = summ[:, :, :, 0], summ[:, :, :, 1]
    # A block with no summary yet (min > max) has no bound: score it +inf so it is kept.
    unknown = (lo[..., 0] > hi[..., 0]).transpose(1, 2)  # [reqs, kv_heads, n]
    scores = block_upper_bounds_grouped(pos, neg, lo, hi)
    return scores.masked_fill(unknown, float("inf"))


def block_upper_bounds_grouped(pos: torch.Tensor, neg: torch.Tensor, key_min: torch.Tensor,
                               key_max: torch.Tensor) -> torch.Tensor:
    """Bounds from precomputed positive and negative query parts (already summed over a group)."""
    return (torch.einsum("rhd,rnhd->rhn", pos, key_max)
            + torch.einsum("rhd,rnhd->rhn", neg, key_min))


def max_selected(config: SparseConfig, max_seq_len: int) -> int:
    """Width of block_idx: enough for any request up to `max_seq_len` tokens (host-side bound)."""
    total = -(-max_seq_len // config.block_size)
    dense_blocks = -(-max(config.dense_threshold - 1, 0) // config.block_size)
    sparse_blocks = config.sink_blocks + config.window_blocks + 1 + config.top_k
    return max(1, min(total, max(dense_blocks, sparse_blocks)))


def all_blocks(seq_lens: torch.Tensor, num_kv_heads: int, block_size: int,
               max_seq_len: int) -> torch.Tensor:
    """block_idx that keeps every block of every request (the dense selection)."""
    total = max(1, -(-max_seq_len // block_size))
    n_blocks = (seq_lens.to(torch.long) + block_size - 1) // block_size
    idx = torch.arange(total, device=seq_lens.device).expand(seq_lens.shape[0], total)
    idx = torch.where(idx < n_blocks[:, None], idx, -1)
    return idx[:, None, :].expand(-1, num_kv_heads, -1).to(torch.int32).contiguous()


def select_blocks(query: torch.Tensor, summaries: torch.Tensor, block_table: torch.Tensor,
                  seq_lens: torch.Tensor, config: SparseConfig, max_seq_len: int) -> torch.Tensor:
    """block_idx[req, kv_head, k] for single-token queries `query[req, head, d]`, -1 padded."""
    reqs = query.shape[0]
    kv_heads = summaries.shape[1]
    bs = config.block_size
    total = max(1, -(-max_seq_len // bs))
    device = query.device
    n_blocks = (seq_lens.to(torch.long) + bs - 1) // bs  # [reqs]
    j = torch.arange(total, device=device)[None, :]
    exists = j < n_blocks[:, None]
    forced = (j < config.sink_blocks) | (j >= n_blocks[:, None] - 1 - config.window_blocks)
    dense_req = seq_lens.to(torch.long) < config.dense_threshold
    forced = exists & (forced | dense_req[:, None])
    candidate = exists & ~forced  # [reqs, total]

    width = max_selected(config, max_seq_len)
    k_cap = min(config.top_k, total)
    keep = forced[:, None, :].expand(reqs, kv_heads, total)
    if k_cap > 0 and total > 0:
        scores = score_blocks(query, summaries, block_table, total)
        scores = scores.masked_fill(~candidate[:, None, :], _NEG)
        n_cand = candidate.sum(dim=1)
        by_ratio = torch.floor(n_cand.double() * config.keep_ratio + 1e-9).to(torch.long)
        k_req = torch.clamp(by_ratio, max=config.top_k)  # [reqs]
        vals, top = scores.topk(k_cap, dim=-1)
        rank = torch.arange(k_cap, device=device)[None, None, :]
        take = (rank < k_req[:, None, None]) & (vals > _NEG)
        chosen = torch.zeros(reqs, kv_heads, total, dtype=torch.bool, device=device)
        chosen.scatter_(2, top, take)
        keep = keep | chosen
    # Ascending logical block numbers first, dropped blocks pushed past the end, then cut.
    key = torch.where(keep, j[None], j[None] + total)
    order = key.sort(dim=-1).values[..., :width]
    return torch.where(order < total, order, -1).to(torch.int32)
