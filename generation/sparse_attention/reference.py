"""Oracles: plain, loop-per-request torch decode attention over a paged KV cache, dense and sparse.

Written for obviousness, not speed: every request gathers its own tokens through its block table
and runs an fp32 softmax. Shapes:
  query        [reqs, heads, d]            one decode token per request
  key/value    [num_blocks, kv_heads, block_size, d]
  block_table  [reqs, max_blocks]          physical block of each logical block
  seq_lens     [reqs]                      tokens in context, the current one included
  block_idx    [reqs, kv_heads, k]         logical blocks to read, -1 padded
"""

from __future__ import annotations

import torch


def gather_tokens(cache: torch.Tensor, block_table_row: torch.Tensor,
                  seq_len: int) -> torch.Tensor:
    """One request's first `seq_len` tokens from a paged cache: [kv_heads, seq_len, d]."""
    block_size = cache.shape[2]
    n_blocks = -(-seq_len // block_size)
    pages = cache[block_table_row[:n_blocks].long()]  # [n, kv_heads, bs, d]
    tokens = pages.permute(1, 0, 2, 3).reshape(cache.shape[1], n_blocks * block_size, -1)
    return tokens[:, :seq_len]


def _attend(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, scale: float) -> torch.Tensor:
    """Softmax attention of q [g, d] over k, v [t, d] in fp32."""
    scores = (q.float() @ k.float().T) * scale
    return torch.softmax(scores, dim=-1) @ v.float()


def dense_decode(query: torch.Tensor, key_cache: torch.Tensor, value_cache: torch.Tensor,
                 block_table: torch.Tensor, seq_lens: torch.Tensor, scale: float) -> torch.Tensor:
    """Dense decode attention for every request: [reqs, heads, d] in fp32."""
    reqs, heads, _ = query.shape
    kv_heads = key_cache.shape[1]
    group = heads // kv_heads
    out = torch.empty(reqs, heads, value_cache.shape[-1], dtype=torch.float32)
    for r in range(reqs):
        n = int(seq_lens[r])
        keys = gather_tokens(key_cache, block_table[r], n)
        values = gather_tokens(value_cache, block_table[r], n)
        for h in range(kv_heads):
            g = slice(h * group, (h + 1) * group)
            out[r, g] = _attend(query[r, g], keys[h], values[h], scale)
    return out


def sparse_decode(query: torch.Tensor, key_cache: torch.Tensor, value_cache: torch.Tensor,
                  block_table: torch.Tensor, seq_lens: torch.Tensor, block_idx: torch.Tensor,
                  scale: float) -> torch.Tensor:
    """Decode attention restricted to the blocks named in `block_idx`: [reqs, heads, d] in fp32."""
    reqs, heads, _ = query.shape
    kv_heads = key_cache.shape[1]
    group = heads // kv_heads
    block_size = key_cache.shape[2]
    out = torch.empty(reqs, heads, value_cache.shape[-1], dtype=torch.float32)
    for r in range(reqs):
        n = int(seq_lens[r])
        keys = gather_tokens(key_cache, block_table[r], n)
        values = gather_tokens(value_cache, block_table[r], n)
        for h in range(kv_heads):
            chosen = sorted({int(b) for b in block_idx[r, h] if int(b) >= 0})
            positions = [t for b in chosen for t in range(b * block_size, (b + 1) * block_size)
                         if t < n]
            pos = torch.tensor(positions, dtype=torch.long)
            g = slice(h * group, (h + 1) * group)
            out[r, g] = _attend(query[r, g], keys[h, pos], values[h, pos], scale)
    return out


def attention_mass(query: torch.Tensor, key_cache: torch.Tensor, block_table: torch.Tensor,
                   seq_lens: torch.Tensor, block_idx: torch.Tensor, scale: float) -> torch.Tensor:
    """Share of each query head's dense softmax mass inside the selected blocks: [reqs, heads]."""
    reqs, heads, _ = query.shape
    kv_heads = key_cache.shape[1]
    group = heads // kv_heads
    block_size = key_cache.shape[2]
    out = torch.empty(reqs, heads, dtype=torch.float32)
    for r in range(reqs):
        n = int(seq_lens[r])
        keys = gather_tokens(key_cache, block_table[r], n)
        for h in range(kv_heads):
            g = slice(h * group, (h + 1) * group)
            probs = torch.softmax((query[r, g].float() @ keys[h].float().T) * scale, dim=-1)
            selected = torch.zeros(n, dtype=torch.bool)
            for b in block_idx[r, h].tolist():
                if b >= 0:
                    selected[b * block_size:(b + 1) * block_size] = True
            out[r, g] = probs[:, selected].sum(dim=-1)
    return out
