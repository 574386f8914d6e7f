"""The CPU path: vLLM's own CPU_ATTN kernels, dense as stock and block-sparse on a compacted table.

On CPU hosts the backend keeps the KV cache exactly as stock CPU_ATTN does (written by its
`cpu_attn_reshape_and_cache`, in whatever layout its ISA uses) and calls its attention kernel:
- dense (prefill, dense layers, short contexts): one call over the batch, as stock;
- block-sparse decode: every (request, KV head) becomes a pseudo-request with one KV head and
  the group's query heads, whose block table lists only its selected blocks (ascending, so the
  one partial block, the request's last, stays last) over a one-head view of the cache
  (`[num_blocks * kv_heads, 1, 2 * block_size, d]`: row block * kv_heads + head). The kernel then
  reads the selected blocks only, at stock speed. Keys are stored after RoPE, so compacting the
  positions changes nothing.
Imports vLLM: only the backend (inside vLLM) imports this module.
"""

from __future__ import annotations

import torch
from vllm import _custom_ops as ops
from vllm import envs
from vllm.v1.attention.backends.cpu_attn import CPUAttentionBackend, _get_attn_isa

SUPPORTED_HEAD_SIZES = tuple(CPUAttentionBackend.get_supported_head_sizes())


def isa_for(dtype: torch.dtype, block_size: int, head_size: int,
            kv_cache_dtype: str = "auto") -> str:
    """The kernel ISA stock CPU_ATTN picks for this dtype, block size and head size."""
    return _get_attn_isa(dtype, block_size, head_size, kv_cache_dtype)


def _halves(kv_cache: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Stock's key and value views of one layer's cache (opaque: the ISA decides the layout)."""
    blocks, kv_heads, block_size, width = kv_cache.shape
    halves = kv_cache.view(blocks, kv_heads, 2 * block_size, width // 2).chunk(2, dim=2)
    return halves[0], halves[1]


def write(kv_cache: torch.Tensor, key: torch.Tensor, value: torch.Tensor,
          slot_mapping: torch.Tensor, isa: str, kv_cache_dtype: str = "auto",
          k_scale: float = 1.0, v_scale: float = 1.0) -> None:
    """Store key/value [tokens, kv_heads, d] at their slots, exactly as stock CPU_ATTN does."""
    key_cache, value_cache = _halves(kv_cache)
    ops.cpu_attn_reshape_and_cache(key, value, key_cache, value_cache, slot_mapping, isa,
                                   k_scale=k_scale, v_scale=v_scale,
                                   kv_cache_dtype=kv_cache_dtype)


def plan(num_heads: int, num_kv_heads: int, head_size: int, seq_lens: torch.Tensor,
         query_start_loc: torch.Tensor, dtype: torch.dtype, isa: str,
         kv_cache_dtype: str = "auto") -> torch.Tensor:
    """Stock's scheduler metadata for one call (causal, no sliding window)."""
    return ops.cpu_attn_get_scheduler_metadata(
        num_reqs=seq_lens.shape[0], num_heads=num_heads, num_kv_heads=num_kv_heads,
        head_dim=head_size, seq_lens=seq_lens, dtype=dtype, query_start_loc=query_start_loc,
        causal=True, sliding_window_size=-1, isa=isa, enable_kv_split=envs.VLLM_CPU_ATTN_SPLIT_KV,
        kv_cache_dtype=kv_cache_dtype)


def attend(query: torch.Tensor, kv_cache: torch.Tensor, output: torch.Tensor,
           query_start_loc: torch.Tensor, seq_lens: torch.Tensor, block_table: torch.Tensor,
           scale: float, scheduler: torch.Tensor, kv_cache_dtype: str = "auto",
           k_scale: float = 1.0, v_scale: float = 1.0) -> None:
    """Dense causal attention of `query[tokens, heads, d]` into `output`, as stock does it."""
    key_cache, value_cache = _halves(kv_cache)
    ops.cpu_attention_with_kv_cache(
        query=query, key_cache=key_cache, value_cache=value_cache, output=output,
        query_start_loc=query_start_loc, seq_lens=seq_lens, scale=scale, causal=True,
        alibi_slopes=None, sliding_window=-1, block_table=block_table, softcap=0.0,
        scheduler_metadata=scheduler, s_aux=None, k_scale=k_scale, v_scale=v_scale,
        kv_cache_dtype=kv_cache_dtype)


def sparse_decode(query: torch.Tensor, kv_cache: torch.Tensor, block_table: torch.Tensor,
                  seq_lens: torch.Tensor, block_idx: torch.Tensor, scale: float, isa: str,
                  kv_cache_dtype: str = "auto", k_scale: float = 1.0,
                  v_scale: float = 1.0) -> torch.Tensor:
    """Decode attention of query [reqs, heads, d] over the blocks in `block_idx`: [reqs, heads, d].

    `block_idx[req, kv_head, k]` holds logical blocks, -1 padded, no duplicates.
    """
    reqs, heads, dim = query.shape
    num_blocks, kv_heads, block_size, _ = kv_cache.shape
    group = heads // kv_heads
    width = block_idx.shape[-1]
    # Ascending with the padding last: the request's partial last block ends the compacted list.
    past_end = torch.iinfo(torch.int32).max
    order = torch.where(block_idx >= 0, block_idx.to(torch.int32), past_end).sort(dim=-1).values
    valid = order != past_end
    logical = torch.where(valid, order, 0).to(torch.long)
    physical = block_table.to(torch.long).gather(1, logical.view(reqs, -1)).view_as(logical)
    rows = physical * kv_heads + torch.arange(kv_heads, device=query.device)[:, None]
    table = rows.view(reqs * kv_heads, width).to(torch.int32)
    filled = (seq_lens.to(torch.long)[:, None, None] - logical * block_size).clamp(0, block_size)
    lens = torch.where(valid, filled, 0).sum(dim=-1).view(-1).to(torch.int32)
    starts = torch.arange(reqs * kv_heads + 1, dtype=torch.int32, device=query.device)
    q = query.contiguous().view(reqs * kv_heads, group, dim)
    out = torch.empty_like(q)
    one_head = kv_cache.view(num_blocks * kv_heads, 1, block_size, kv_cache.shape[-1])
    scheduler = plan(group, 1, dim, lens, starts, query.dtype, isa, kv_cache_dtype)
    attend(q, one_head, out, starts, lens, table, scale, scheduler, kv_cache_dtype,
           k_scale, v_scale)
    return out.view(reqs, heads, dim)
