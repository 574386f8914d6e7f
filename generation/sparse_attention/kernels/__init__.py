"""Decode and prefill attention over the backend's own paged KV layout (the CUDA path).

Layout (one layer): `kv_cache[num_blocks, kv_heads, block_size, 2 * head_size]`, each token's key
in the first half of the last axis and its value in the second. `split_kv_cache` returns the two
strided views every path reads. Decode dispatches to Triton on CUDA tensors and to the vectorised
torch path elsewhere (the oracles' fast twin, used by tests and the fidelity measurements);
Triton is imported only when it is needed. On CPU hosts the backend uses neither: the cache is
stock CPU_ATTN's and `cpu_stock` calls its kernels. This package imports no vLLM (`cpu_stock`
does, and is imported only by the backend).
"""

from __future__ import annotations

import torch

from . import torch_decode


def split_kv_cache(kv_cache: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Key and value views [num_blocks, kv_heads, block_size, head_size] of one layer's cache."""
    head_size = kv_cache.shape[-1] // 2
    return kv_cache[..., :head_size], kv_cache[..., head_size:]


def write_kv(kv_cache: torch.Tensor, key: torch.Tensor, value: torch.Tensor,
             slot_mapping: torch.Tensor) -> None:
    """Store key/value [tokens, kv_heads, d] at slots (block * block_size + offset; < 0 skips)."""
    block_size = kv_cache.shape[2]
    slots = slot_mapping.reshape(-1).to(torch.long)
    n = min(slots.shape[0], key.shape[0])
    slots = slots[:n]
    keep = slots >= 0
    slots = slots[keep]
    if slots.numel() == 0:
        return
    rows = torch.cat((key[:n][keep], value[:n][keep]), dim=-1).to(kv_cache.dtype)
    blocks = slots // block_size
    offsets = slots % block_size
    kv_cache[blocks, :, offsets] = rows


def decode(query: torch.Tensor, key_cache: torch.Tensor, value_cache: torch.Tensor,
           block_table: torch.Tensor, seq_lens: torch.Tensor, block_idx: torch.Tensor,
           scale: float, out: torch.Tensor | None = None) -> torch.Tensor:
    """Block-sparse decode attention: Triton on CUDA, vectorised torch elsewhere."""
    if query.is_cuda:
        from . import triton_decode

        return triton_decode.sparse_decode(query, key_cache, value_cache, block_table, seq_lens,
                                           block_idx, scale, out=out)
    return torch_decode.sparse_decode(query, key_cache, value_cache, block_table, seq_lens,
                                      block_idx, scale, out=out)


def prefill(query: torch.Tensor, key_cache: torch.Tensor, value_cache: torch.Tensor,
            block_table_row: torch.Tensor, seq_len: int, scale: float) -> torch.Tensor:
    """Dense causal attention of one request's last `query.shape[0]` tokens: [q, heads, d]."""
    q_len, heads, _ = query.shape
    block_size = key_cache.shape[2]
    n_blocks = -(-seq_len // block_size)
    pages = block_table_row[:n_blocks].to(torch.long)
    kv_heads = key_cache.shape[1]
    keys = key_cache[pages].permute(1, 0, 2, 3).reshape(kv_heads, -1, key_cache.shape[-1])
    values = value_cache[pages].permute(1, 0, 2, 3).reshape(kv_heads, -1, value_cache.shape[-1])
    keys, values = keys[:, :seq_len], values[:, :seq_len]
    # Query i sits at position seq_len - q_len + i and sees keys up to and including it.
    q_pos = torch.arange(seq_len - q_len, seq_len, device=query.device)[:, None]
    allowed = torch.arange(seq_len, device=query.device)[None, :] <= q_pos
    # fp32 on CPU (matches the decode path's precision); native dtype on GPU for fused kernels.
    dtype = query.dtype if query.is_cuda else torch.float32
    result = torch.nn.functional.scaled_dot_product_attention(
        query.transpose(0, 1).to(dtype), keys.to(dtype), values.to(dtype), attn_mask=allowed,
        scale=scale, enable_gqa=heads != kv_heads,
    )
    return result.transpose(0, 1)
