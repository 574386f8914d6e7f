"""Triton block-sparse decode attention over a paged KV cache (the GPU path).

Flash-decoding shape: program (req, kv_head, split) walks its share of `block_idx[req, kv_head, :]`
(logical blocks, -1 padded), maps each through the block table, and keeps an online softmax for
all query heads of the GQA group at once. A second small kernel merges the splits by log-sum-exp.
Takes any strides for the block, head and token axes of K and V (the head dimension must be
contiguous), so it reads the backend's layout and vLLM's GPU layout `[2, blocks, block, heads, d]`
alike. Runs under `TRITON_INTERPRET=1` on CPU tensors (fp32 and fp16; bf16 `tl.dot` is wrong in
the interpreter, so callers pass `upcast=True` there).
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

_NEG_BIG = -1.0e30  # finite "minus infinity": keeps exp(m_old - m_new) defined for empty blocks


@triton.jit
def _split_kernel(
    q_ptr, k_ptr, v_ptr, bt_ptr, seq_ptr, idx_ptr, part_out_ptr, part_lse_ptr,
    scale,
    stride_qr, stride_qh,
    stride_kb, stride_kh, stride_kt,
    stride_vb, stride_vh, stride_vt,
    stride_btr, stride_ir, stride_ih,
    stride_por, stride_poh, stride_pos,
    stride_plr, stride_plh,
    K_SLOTS, SLOTS_PER_SPLIT,
    GROUP: tl.constexpr, GROUP_PAD: tl.constexpr, HEAD: tl.constexpr, HEAD_PAD: tl.constexpr,
    BLOCK: tl.constexpr, DOT_FP32: tl.constexpr,
):
    req = tl.program_id(0)
    kvh = tl.program_id(1)
    split = tl.program_id(2)
    g = tl.arange(0, GROUP_PAD)
    d = tl.arange(0, HEAD_PAD)
    t = tl.arange(0, BLOCK)
    g_ok = g < GROUP
    d_ok = d < HEAD
    heads = kvh * GROUP + g
    q = tl.load(q_ptr + req * stride_qr + heads[:, None] * stride_qh + d[None, :],
                mask=g_ok[:, None] & d_ok[None, :], other=0.0)
    if DOT_FP32:
        q = q.to(tl.float32)
    seq_len = tl.load(seq_ptr + req)

    m_i = tl.full([GROUP_PAD], _NEG_BIG, tl.float32)
    l_i = tl.zeros([GROUP_PAD], tl.float32)
    acc = tl.zeros([GROUP_PAD, HEAD_PAD], tl.float32)
    first = split * SLOTS_PER_SPLIT
    last = tl.minimum(first + SLOTS_PER_SPLIT, K_SLOTS)
    for slot in range(first, last):
        logical = tl.load(idx_ptr + req * stride_ir + kvh * stride_ih + slot)
        limit = tl.where(logical >= 0, seq_len, 0)  # a padded slot reads nothing
        logical = tl.maximum(logical, 0)
        page = tl.load(bt_ptr + req * stride_btr + logical).to(tl.int64)
        pos = logical * BLOCK + t
        t_ok = pos < limit
        kv_mask = t_ok[:, None] & d_ok[None, :]
        k = tl.load(k_ptr + page * stride_kb + kvh * stride_kh + t[:, None] * stride_kt
                    + d[None, :], mask=kv_mask, other=0.0)
        v = tl.load(v_ptr + page * stride_vb + kvh * stride_vh + t[:, None] * stride_vt
                    + d[None, :], mask=kv_mask, other=0.0)
        if DOT_FP32:
            s = tl.dot(q, tl.trans(k.to(tl.float32)), input_precision="ieee")
        else:
            s = tl.dot(q, tl.trans(k))
        s = s * scale
        s = tl.where(t_ok[None, :], s, float("-inf"))
        m_new = tl.maximum(m_i, tl.max(s, axis=1))
        alpha = tl.exp(m_i - m_new)
        p = tl.exp(s - m_new[:, None])
        l_i = l_i * alpha + tl.sum(p, axis=1)
        if DOT_FP32:
            pv = tl.dot(p, v.to(tl.float32), input_precision="ieee")
        else:
            pv = tl.dot(p.to(v.dtype), v)
        acc = acc * alpha[:, None] + pv
        m_i = m_new

    has = l_i > 0
    out = acc / tl.where(has, l_i, 1.0)[:, None]
    lse = tl.where(has, m_i + tl.log(tl.where(has, l_i, 1.0)), _NEG_BIG)
    o_ptrs = (part_out_ptr + req * stride_por + heads[:, None] * stride_poh + split * stride_pos
              + d[None, :])
    tl.store(o_ptrs, out, mask=g_ok[:, None] & d_ok[None, :])
    tl.store(part_lse_ptr + req * stride_plr + heads * stride_plh + split, lse, mask=g_ok)


@triton.jit
def _merge_kernel(
    part_out_ptr, part_lse_ptr, out_ptr,
    stride_por, stride_poh, stride_pos, stride_plr, stride_plh, stride_or, stride_oh,
    SPLITS, SPLITS_PAD: tl.constexpr, HEAD: tl.constexpr, HEAD_PAD: tl.constexpr,
):
    req = tl.program_id(0)
    head = tl.program_id(1)
    s = tl.arange(0, SPLITS_PAD)
    d = tl.arange(0, HEAD_PAD)
    s_ok = s < SPLITS
    lse = tl.load(part_lse_ptr + req * stride_plr + head * stride_plh + s, mask=s_ok,
                  other=_NEG_BIG)
    top = tl.max(lse, axis=0)
    w = tl.where(s_ok, tl.exp(lse - top), 0.0)
    parts = tl.load(part_out_ptr + req * stride_por + head * stride_poh
                    + s[:, None] * stride_pos + d[None, :],
                    mask=s_ok[:, None] & (d[None, :] < HEAD), other=0.0)
    total = tl.sum(w, axis=0)
    out = tl.sum(parts * w[:, None], axis=0) / total
    tl.store(out_ptr + req * stride_or + head * stride_oh + d, out.to(out_ptr.dtype.element_ty),
             mask=d < HEAD)


def sparse_decode(query: torch.Tensor, key_cache: torch.Tensor, value_cache: torch.Tensor,
                  block_table: torch.Tensor, seq_lens: torch.Tensor, block_idx: torch.Tensor,
                  scale: float, out: torch.Tensor | None = None,
                  num_splits: int | None = None, upcast: bool = False) -> torch.Tensor:
    """Triton version of `kernels.torch_decode.sparse_decode`; same arguments and result.

    `upcast` computes the dot products in fp32 even for 16-bit inputs (fp32 inputs always are).
    """
    reqs, heads, dim = query.shape
    _, kv_heads, block, head_k = key_cache.shape
    if head_k != dim or value_cache.shape[-1] != dim:
        raise ValueError("query, key and value head sizes must match")
    if key_cache.stride(-1) != 1 or value_cache.stride(-1) != 1 or query.stride(-1) != 1:
        raise ValueError("the head dimension must be contiguous")
    group = heads // kv_heads
    slots = block_idx.shape[2]
    if num_splits is None:
        num_splits = max(1, min(slots, 16))
    num_splits = max(1, min(num_splits, max(slots, 1)))
    per_split = max(1, -(-slots // num_splits))
    part_out = torch.empty(reqs, heads, num_splits, dim, dtype=torch.float32,
                           device=query.device)
    part_lse = torch.empty(reqs, heads, num_splits, dtype=torch.float32, device=query.device)
    block_idx = block_idx.to(torch.int32).contiguous()
    block_table = block_table.to(torch.int32)
    seq_lens = seq_lens.to(torch.int32).contiguous()
    if out is None:
        out = torch.empty(reqs, heads, dim, dtype=query.dtype, device=query.device)
    dot_fp32 = upcast or query.dtype == torch.float32 or key_cache.dtype == torch.float32
    _split_kernel[(reqs, kv_heads, num_splits)](
        query, key_cache, value_cache, block_table, seq_lens, block_idx, part_out, part_lse,
        float(scale),
        query.stride(0), query.stride(1),
        key_cache.stride(0), key_cache.stride(1), key_cache.stride(2),
        value_cache.stride(0), value_cache.stride(1), value_cache.stride(2),
        block_table.stride(0), block_idx.stride(0), block_idx.stride(1),
        part_out.stride(0), part_out.stride(1), part_out.stride(2),
        part_lse.stride(0), part_lse.stride(1),
        slots, per_split,
        GROUP=group, GROUP_PAD=max(16, triton.next_power_of_2(group)),
        HEAD=dim, HEAD_PAD=max(16, triton.next_power_of_2(dim)),
        BLOCK=block, DOT_FP32=dot_fp32,
    )
    _merge_kernel[(reqs, heads)](
        part_out, part_lse, out,
        part_out.stride(0), part_out.stride(1), part_out.stride(2),
        part_lse.stride(0), part_lse.stride(1), out.stride(0), out.stride(1),
        num_splits, SPLITS_PAD=triton.next_power_of_2(num_splits),
        HEAD=dim, HEAD_PAD=max(16, triton.next_power_of_2(dim)),
    )
    return out
