"""Paged KV batches for the sparse attention tests (shared by conftest and subprocess checks)."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from generation.sparse_attention import kernels, selection


@dataclass(frozen=True)
class Shape:
    """One named batch: GQA layout, page size, and each request's context length."""

    name: str
    heads: int
    kv_heads: int
    head_size: int
    block_size: int
    seq_lens: tuple[int, ...]


SHAPES = [
    Shape("one_token", 4, 2, 64, 16, (1,)),
    Shape("single_partial_block", 4, 2, 64, 16, (37,)),
    Shape("single_long", 8, 2, 64, 16, (1000,)),
    Shape("mixed_lengths", 4, 2, 64, 16, (1, 17, 300, 1024)),
    Shape("mha_block64", 4, 4, 32, 64, (64, 640, 129)),
    Shape("gqa8_head128", 16, 2, 128, 32, (513, 96)),
]


@dataclass
class Paged:
    """A paged KV cache holding a batch, in the backend's layout."""

    kv_cache: torch.Tensor  # [blocks, kv_heads, block_size, 2 * head_size]
    block_table: torch.Tensor  # [reqs, max_blocks] int32
    seq_lens: torch.Tensor  # [reqs] int32
    query: torch.Tensor  # [reqs, heads, head_size]
    summaries: torch.Tensor  # [blocks, kv_heads, 2, head_size]

    @property
    def key_cache(self) -> torch.Tensor:
        return kernels.split_kv_cache(self.kv_cache)[0]

    @property
    def value_cache(self) -> torch.Tensor:
        return kernels.split_kv_cache(self.kv_cache)[1]


def make_paged(shape: Shape, dtype: torch.dtype = torch.float32, seed: int = 0,
               spare_blocks: int = 3) -> Paged:
    """Random K/V for every request, scattered over shuffled physical blocks.

    Every slot the batch does not own holds NaN, so any read outside a request's context shows.
    """
    gen = torch.Generator().manual_seed(seed)
    bs = shape.block_size
    need = [-(-n // bs) for n in shape.seq_lens]
    total = sum(need) + spare_blocks
    kv = torch.full((total, shape.kv_heads, bs, 2 * shape.head_size), float("nan"), dtype=dtype)
    order = torch.randperm(total, generator=gen)
    width = max(need)
    table = torch.zeros(len(need), width, dtype=torch.int32)
    summaries = selection.new_summaries(total, shape.kv_heads, shape.head_size, kv)
    used = 0
    for r, (n, blocks) in enumerate(zip(shape.seq_lens, need, strict=True)):
        table[r, :blocks] = order[used:used + blocks].to(torch.int32)
        used += blocks
        slots = table[r, :blocks].long()[:, None] * bs + torch.arange(bs)
        slots = slots.flatten()[:n]
        keys = torch.randn(n, shape.kv_heads, shape.head_size, generator=gen)
        values = torch.randn(n, shape.kv_heads, shape.head_size, generator=gen)
        kernels.write_kv(kv, keys.to(dtype), values.to(dtype), slots)
        selection.update_summaries(summaries, keys.to(dtype), slots, bs)
    query = torch.randn(len(need), shape.heads, shape.head_size, generator=gen).to(dtype)
    seq_lens = torch.tensor(shape.seq_lens, dtype=torch.int32)
    return Paged(kv, table, seq_lens, query, summaries)


def shape_named(name: str) -> Shape:
    """The batch shape called `name`."""
    return next(s for s in SHAPES if s.name == name)
