"""Vectorised torch block-sparse decode attention over a paged KV cache (the CPU path).

Gathers only the blocks named in `block_idx` (logical, -1 padded) through the block table, as
whole block rows (`index_select`, padding trimmed to the widest request first), then runs one
fused `scaled_dot_product_attention` (fp32 accumulation for 16-bit inputs) in which batch =
request, heads = KV head, and the query heads of each GQA group play the query-length axis, so a
group shares one gather. Requests go in groups that keep the gathered K/V under `GATHER_BUDGET`
elements, so memory stays bounded at long context and large batch.
"""

from __future__ import annotations

import torch

GATHER_BUDGET = 1 << 26  # elements of K (and again of V) gathered at once


def _compact(block_idx: torch.Tensor) -> torch.Tensor:
    """The same selection with valid entries first and padding trimmed to the widest row."""
    valid = block_idx >= 0
    width = int(valid.sum(dim=-1).max()) if block_idx.numel() else 0
    if width == block_idx.shape[-1] or width == 0:
        return block_idx
    order = torch.sort((~valid).to(torch.int8), dim=-1, stable=True).indices
    return block_idx.gather(-1, order)[..., :width]


def _group(query: torch.Tensor, key_cache: torch.Tensor, value_cache: torch.Tensor,
           block_table: torch.Tensor, seq_lens: torch.Tensor, block_idx: torch.Tensor,
           scale: float) -> torch.Tensor:
    """Attention for a group of requests: [reqs, heads, d]."""
    reqs, kv_heads, slots = block_idx.shape
    block_size, dim = key_cache.shape[2], key_cache.shape[3]
    heads = query.shape[1]
    tokens = slots * block_size
    valid = block_idx >= 0
    logical = block_idx.to(torch.long).clamp(min=0)
    physical = block_table.to(torch.long).gather(1, logical.flatten(1)).view_as(logical)
    # Row (block, kv_head) of the cache seen as [num_blocks * kv_heads, block_size, d].
    rows = (physical * kv_heads + torch.arange(kv_heads, device=logical.device)[:, None]).flatten()
    keys = key_cache.flatten(0, 1).index_select(0, rows).view(reqs, kv_heads, tokens, dim)
    values = value_cache.flatten(0, 1).index_select(0, rows).view(reqs, kv_heads, tokens, -1)
    positions = logical[..., None] * block_size + torch.arange(block_size, device=rows.device)
    mask = valid[..., None] & (positions < seq_lens.to(torch.long)[:, None, None, None])
    # Slots past the context hold whatever the block held before, maybe NaN, and a masked NaN
    # still poisons the result (0 * NaN). Only padded slots and each request's last block can
    # hold such slots: zero them in the gathered copy (a few blocks, not the whole gather).
    last = (seq_lens.to(torch.long) - 1) // block_size
    at = torch.nonzero(~valid | (logical >= last[:, None, None]), as_tuple=True)
    for gathered in (keys, values):
        blocks = gathered.view(reqs, kv_heads, slots, block_size, -1)
        blocks[at] = blocks[at].masked_fill(~mask[at][..., None], 0.0)
    # The group's query heads play the query-length axis: one fused kernel, no repeated K/V.
    q = query.reshape(reqs, kv_heads, heads // kv_heads, dim).to(keys.dtype)
    out = torch.nn.functional.scaled_dot_product_attention(
        q, keys, values, attn_mask=mask.view(reqs, kv_heads, 1, tokens), scale=scale)
    return out.reshape(reqs, heads, -1)


def sparse_decode(query: torch.Tensor, key_cache: torch.Tensor, value_cache: torch.Tensor,
                  block_table: torch.Tensor, seq_lens: torch.Tensor, block_idx: torch.Tensor,
                  scale: float, out: torch.Tensor | None = None,
                  budget: int = GATHER_BUDGET) -> torch.Tensor:
    """Attention of query [reqs, heads, d] over the selected blocks; returns [reqs, heads, d]."""
    reqs, heads, _ = query.shape
    if out is None:
        out = torch.empty(reqs, heads, value_cache.shape[-1], dtype=query.dtype,
                          device=query.device)
    block_idx = _compact(block_idx)
    if block_idx.shape[-1] == 0:
        return out.zero_()
    _, kv_heads, block_size, dim = key_cache.shape
    per_request = max(1, kv_heads * block_idx.shape[2] * block_size * dim)
    step = max(1, budget // per_request)
    for start in range(0, reqs, step):
        part = slice(start, start + step)
        out[part] = _group(query[part], key_cache, value_cache, block_table[part],
                           seq_lens[part], block_idx[part], scale)
    return out
