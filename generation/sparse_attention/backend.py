"""The vLLM attention backend: block-sparse decode, dense prefill, over vLLM's paged KV cache.

Four classes, as in vLLM's own backends:
- `SparseAttentionBackend`: stateless factory; registered as CUSTOM on GPU hosts and in place of
  CPU_ATTN on CPU hosts (vLLM's CPU platform always picks CPU_ATTN), so `get_name()` answers with
  the enum member it occupies.
- `SparseAttentionMetadata` / `SparseAttentionMetadataBuilder`: per-batch split into decode rows
  (query length 1: block-sparse path) and the rest (prefill, chunked prefill, speculative
  verification: dense causal path).
- `SparseAttentionImpl`: writes K/V (and folds the new keys into the per-block key summaries),
  selects blocks per KV head for decode rows, and runs the decode kernel on them.

Two device paths share the selection:
- CPU hosts: the cache is stock CPU_ATTN's and every attention call goes to its kernels
  (`kernels/cpu_stock.py`): prefill, dense layers and short contexts exactly as stock, sparse
  decode on a compacted block table.
- CUDA: the backend's own layout (`kernels.split_kv_cache`), the Triton decode kernel, and dense
  prefill through torch SDPA.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch
from vllm.platforms import current_platform
from vllm.v1.attention.backend import (
    AttentionBackend,
    AttentionImpl,
    AttentionMetadataBuilder,
    AttentionType,
    CommonAttentionMetadata,
)
from vllm.v1.kv_cache_layout import KVCacheLayout

from . import kernels, selection, stats
from .config import STATS_ENV_VAR, SparseConfig, active_config

_LAYER_NUMBER = re.compile(r"(?:^|\.)(\d+)(?:\.|$)")
_SUPPORTED_KV_DTYPES = ("auto", "float16", "bfloat16")  # "auto" follows the model dtype

# Key summaries per KV cache tensor, shared by layers that share a cache (KV sharing).
_summaries: dict[tuple[int, tuple[int, ...]], torch.Tensor] = {}


def _cpu_head_sizes() -> tuple[int, ...]:
    from .kernels import cpu_stock

    return cpu_stock.SUPPORTED_HEAD_SIZES


def layer_index(layer_name: str) -> int | None:
    """The layer number inside a vLLM layer name such as `model.layers.3.self_attn.attn`."""
    match = _LAYER_NUMBER.search(layer_name)
    return int(match.group(1)) if match else None


def unsupported_reasons(alibi_slopes: Any, sliding_window: int | None, kv_cache_dtype: str,
                        logits_soft_cap: float | None, attn_type: str,
                        extra: dict[str, Any], head_size: int | None = None) -> list[str]:
    """Why a layer cannot run on this backend; empty when it can."""
    reasons = []
    if head_size is not None and current_platform.is_cpu() and head_size not in _cpu_head_sizes():
        reasons.append(f"head size {head_size} is not supported by vLLM's CPU attention kernels")
    if alibi_slopes is not None:
        reasons.append("ALiBi slopes are not supported")
    if sliding_window is not None:
        reasons.append("sliding-window attention is not supported")
    if logits_soft_cap:
        reasons.append("logits soft-capping is not supported")
    if attn_type != AttentionType.DECODER:
        reasons.append(f"attention type {attn_type} is not supported (decoder only)")
    if kv_cache_dtype not in _SUPPORTED_KV_DTYPES:
        reasons.append(f"KV cache dtype {kv_cache_dtype} is not supported (no quantized KV)")
    if extra.get("sinks") is not None:
        reasons.append("learned attention sinks are not supported")
    return reasons


class SparseAttentionBackend(AttentionBackend):
    """Factory for the sparse attention metadata builder and implementation."""

    forward_includes_kv_cache_update: bool = False
    supported_dtypes: ClassVar[list[torch.dtype]] = [torch.float16, torch.bfloat16, torch.float32]
    supported_kv_cache_dtypes: ClassVar[list[Any]] = list(_SUPPORTED_KV_DTYPES)

    @staticmethod
    def get_name() -> str:
        """The enum member this backend occupies: CPU_ATTN on CPU hosts, CUSTOM elsewhere."""
        return "CPU_ATTN" if current_platform.is_cpu() else "CUSTOM"

    @staticmethod
    def get_impl_cls() -> type[SparseAttentionImpl]:
        """The per-layer implementation."""
        return SparseAttentionImpl

    @staticmethod
    def get_builder_cls() -> type[SparseAttentionMetadataBuilder]:
        """The per-batch metadata builder."""
        return SparseAttentionMetadataBuilder

    @staticmethod
    def get_kv_cache_shape(num_blocks: int, block_size: int, num_kv_heads: int, head_size: int,
                           cache_dtype_str: str = "auto") -> tuple[int, ...]:
        """One layer's cache: K and V side by side in the last axis."""
        return (num_blocks, num_kv_heads, block_size, 2 * head_size)

    @staticmethod
    def get_supported_kernel_block_sizes(kv_cache_spec: Any = None) -> list[Any]:
        """Pages of exactly the selection block size (vLLM splits larger manager blocks)."""
        return [active_config().block_size]

    @classmethod
    def supported_kv_cache_layouts(cls) -> tuple[KVCacheLayout, ...]:
        """Head-major block interiors, [block, kv_head, token, K|V]."""
        return (KVCacheLayout.LBHNC,)

    @classmethod
    def supports_attn_type(cls, attn_type: str) -> bool:
        """Decoder self-attention only."""
        return attn_type == AttentionType.DECODER


@dataclass
class SparseAttentionMetadata:
    """One batch, split into decode rows and dense rows."""

    num_actual_tokens: int  # tokens in the batch, padding excluded
    num_reqs: int
    max_query_len: int
    max_seq_len: int
    query_start_loc_cpu: torch.Tensor  # [num_reqs + 1] int, host
    query_start_loc: torch.Tensor  # [num_reqs + 1] int32, device
    seq_lens: torch.Tensor  # [num_reqs] tokens in context incl. the new ones, device
    seq_lens_cpu: torch.Tensor  # [num_reqs] host copy (upper bound for async spec decode rows)
    block_table: torch.Tensor  # [num_reqs, max_blocks] physical block per logical block
    slot_mapping: torch.Tensor  # [num_tokens] block * block_size + offset, -1 for padding
    decode_reqs: torch.Tensor  # [num_decodes] long, device: requests with query length 1
    decode_tokens: torch.Tensor  # [num_decodes] long, device: their token rows
    decode_max_seq_len: int  # host bound on the decode rows' context length
    dense_reqs: list[int]  # requests with query length > 1 (prefill, spec verify): dense path
    dense_index: torch.Tensor  # [len(dense_reqs)] long, device: dense_reqs as a tensor
    dense_tokens: torch.Tensor  # [tokens of dense_reqs] long, device: their token rows
    dense_query_start_loc: torch.Tensor  # [len(dense_reqs) + 1] int32: the same rows, packed
    # Stock CPU scheduler plans, made by the first layer that needs one and shared by the rest.
    cpu_plans: dict[tuple[Any, ...], torch.Tensor] = field(default_factory=dict)


class SparseAttentionMetadataBuilder(AttentionMetadataBuilder[SparseAttentionMetadata]):
    """Builds `SparseAttentionMetadata` from vLLM's common per-batch metadata."""

    reorder_batch_threshold: int | None = 1

    def __init__(self, kv_cache_spec: Any, layer_names: list[str], vllm_config: Any,
                 device: torch.device) -> None:
        super().__init__(kv_cache_spec, layer_names, vllm_config, device)

    def build(self, common_prefix_len: int, common_attn_metadata: CommonAttentionMetadata,
              fast_build: bool = False) -> SparseAttentionMetadata:
        """Split the batch into decode rows and dense rows (host-side only, no device sync)."""
        m = common_attn_metadata
        qsl = m.query_start_loc_cpu[: m.num_reqs + 1].to(torch.long)
        q_lens = qsl[1:] - qsl[:-1]
        if m.seq_lens_cpu_upper_bound is not None:
            seq_cpu = m.seq_lens_cpu_upper_bound[: m.num_reqs]
        else:
            seq_cpu = m.seq_lens[: m.num_reqs].cpu()
        decode = torch.nonzero(q_lens == 1).flatten()
        dense = torch.nonzero(q_lens > 1).flatten().tolist()
        device = m.seq_lens.device
        spans = [torch.arange(int(qsl[r]), int(qsl[r + 1])) for r in dense]
        dense_tokens = torch.cat(spans) if spans else torch.zeros(0, dtype=torch.long)
        dense_starts = torch.zeros(len(dense) + 1, dtype=torch.int32)
        dense_starts[1:] = torch.cumsum(q_lens[dense], dim=0)
        return SparseAttentionMetadata(
            num_actual_tokens=m.num_actual_tokens,
            num_reqs=m.num_reqs,
            max_query_len=m.max_query_len,
            max_seq_len=m.max_seq_len,
            query_start_loc_cpu=qsl,
            query_start_loc=m.query_start_loc[: m.num_reqs + 1],
            seq_lens=m.seq_lens[: m.num_reqs],
            seq_lens_cpu=seq_cpu,
            block_table=m.block_table_tensor[: m.num_reqs],
            slot_mapping=m.slot_mapping,
            decode_reqs=decode.to(device),
            decode_tokens=qsl[decode].to(device),
            decode_max_seq_len=int(seq_cpu[decode].max()) if decode.numel() else 0,
            dense_reqs=dense,
            dense_index=torch.tensor(dense, dtype=torch.long, device=device),
            dense_tokens=dense_tokens.to(device),
            dense_query_start_loc=dense_starts.to(device),
        )


class SparseAttentionImpl(AttentionImpl[SparseAttentionMetadata]):  # type: ignore[type-var]
    """Per-layer attention: K/V writes with summaries, sparse decode, dense prefill."""

    def __init__(self, num_heads: int, head_size: int, scale: float,
                 num_kv_heads: int | None = None, alibi_slopes: list[float] | None = None,
                 sliding_window: int | None = None, kv_cache_dtype: str = "auto",
                 logits_soft_cap: float | None = None, attn_type: str = AttentionType.DECODER,
                 kv_sharing_target_layer_name: str | None = None, **extra: Any) -> None:
        reasons = unsupported_reasons(alibi_slopes, sliding_window, kv_cache_dtype,
                                      logits_soft_cap, attn_type, extra, head_size=head_size)
        if reasons:
            raise NotImplementedError("sparse attention backend: " + "; ".join(reasons))
        self.num_heads = num_heads
        self.head_size = head_size
        self.scale = float(scale)
        self.num_kv_heads = num_kv_heads or num_heads
        self.kv_cache_dtype = kv_cache_dtype
        self.attn_type = attn_type
        self.kv_sharing_target_layer_name = kv_sharing_target_layer_name
        self.config: SparseConfig = active_config()
        self._dense_layer: bool | None = None  # decided from the layer name on first use
        self._isa: str | None = None  # the stock CPU kernel ISA, chosen on first use (CPU only)

    def _is_dense_layer(self, layer: Any) -> bool:
        if self._dense_layer is None:
            index = layer_index(getattr(layer, "layer_name", ""))
            self._dense_layer = index is not None and index < self.config.dense_layers
        return self._dense_layer

    def _summaries_for(self, kv_cache: torch.Tensor) -> torch.Tensor:
        key = (kv_cache.data_ptr(), tuple(kv_cache.shape))
        found = _summaries.get(key)
        if found is None:
            num_blocks, kv_heads, _, width = kv_cache.shape
            found = selection.new_summaries(num_blocks, kv_heads, width // 2, kv_cache)
            _summaries[key] = found
        return found

    def _cpu_isa(self, dtype: torch.dtype, block_size: int) -> str:
        if self._isa is None:
            self._isa = cpu_stock().isa_for(dtype, block_size, self.head_size,
                                            self.kv_cache_dtype)
        return self._isa

    @staticmethod
    def _scales(layer: Any) -> tuple[float, float]:
        return getattr(layer, "_k_scale_float", 1.0), getattr(layer, "_v_scale_float", 1.0)

    def do_kv_cache_update(self, layer: Any, key: torch.Tensor, value: torch.Tensor,
                           kv_cache: torch.Tensor, slot_mapping: torch.Tensor) -> None:
        """Write the new tokens' K/V and fold their keys into the blocks' summaries."""
        if kv_cache.numel() == 0:
            return
        block_size = kv_cache.shape[2]
        if kv_cache.is_cuda:
            kernels.write_kv(kv_cache, key, value, slot_mapping)
        else:
            isa = self._cpu_isa(kv_cache.dtype, block_size)
            cpu_stock().write(kv_cache, key, value, slot_mapping, isa, self.kv_cache_dtype,
                              *self._scales(layer))
        if not self._is_dense_layer(layer):
            selection.update_summaries(self._summaries_for(kv_cache), key, slot_mapping,
                                       block_size)

    def forward(self, layer: Any, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor,
                kv_cache: torch.Tensor, attn_metadata: SparseAttentionMetadata | None,
                output: torch.Tensor, output_scale: torch.Tensor | None = None,
                output_block_scale: torch.Tensor | None = None) -> torch.Tensor:
        """Attention for one layer and batch, written into `output` [tokens, heads, head_size]."""
        if output_scale is not None or output_block_scale is not None:
            raise NotImplementedError("fused output quantization is not supported")
        if attn_metadata is None:  # vLLM's profiling run: no cache, no metadata
            return output.zero_()
        meta = attn_metadata
        decoding = bool(meta.decode_reqs.numel())
        dense = (self._is_dense_layer(layer)
                 or meta.decode_max_seq_len < self.config.dense_threshold)
        block_idx = None
        if not kv_cache.is_cuda and (dense or not decoding):
            self._cpu_dense(layer, query, kv_cache, meta, output)
        else:
            if decoding:
                block_idx = self._decode(layer, query, kv_cache, meta, output, dense)
            if meta.dense_reqs and kv_cache.is_cuda:
                self._cuda_prefill(query, kv_cache, meta, output)
            elif meta.dense_reqs:
                self._cpu_prefill(layer, query, kv_cache, meta, output)
        self._record(meta, kv_cache, None if dense else block_idx)
        return output

    def _cpu_plan(self, meta: SparseAttentionMetadata, name: str, seq_lens: torch.Tensor,
                  starts: torch.Tensor, dtype: torch.dtype, isa: str) -> torch.Tensor:
        """The stock scheduler plan for this batch (or its dense rows), made once per batch."""
        key = (name, self.num_heads, self.num_kv_heads, self.head_size, dtype, isa)
        found = meta.cpu_plans.get(key)
        if found is None:
            found = cpu_stock().plan(self.num_heads, self.num_kv_heads, self.head_size, seq_lens,
                                     starts, dtype, isa, self.kv_cache_dtype)
            meta.cpu_plans[key] = found
        return found

    def _cpu_dense(self, layer: Any, query: torch.Tensor, kv_cache: torch.Tensor,
                   meta: SparseAttentionMetadata, output: torch.Tensor) -> None:
        """The whole batch through stock CPU_ATTN, exactly as stock runs it."""
        n = meta.num_actual_tokens
        isa = self._cpu_isa(kv_cache.dtype, kv_cache.shape[2])
        scheduler = self._cpu_plan(meta, "batch", meta.seq_lens, meta.query_start_loc,
                                   query.dtype, isa)
        cpu_stock().attend(query[:n], kv_cache, output[:n], meta.query_start_loc, meta.seq_lens,
                           meta.block_table, self.scale, scheduler, self.kv_cache_dtype,
                           *self._scales(layer))

    def _cpu_prefill(self, layer: Any, query: torch.Tensor, kv_cache: torch.Tensor,
                     meta: SparseAttentionMetadata, output: torch.Tensor) -> None:
        """The batch's dense rows (prefill, spec verify) through stock CPU_ATTN, packed."""
        rows, reqs = meta.dense_tokens, meta.dense_index
        seq_lens = meta.seq_lens.index_select(0, reqs)
        isa = self._cpu_isa(kv_cache.dtype, kv_cache.shape[2])
        scheduler = self._cpu_plan(meta, "dense_rows", seq_lens, meta.dense_query_start_loc,
                                   query.dtype, isa)
        q = query.index_select(0, rows)
        out = torch.empty_like(q)
        cpu_stock().attend(q, kv_cache, out, meta.dense_query_start_loc, seq_lens,
                           meta.block_table.index_select(0, reqs), self.scale, scheduler,
                           self.kv_cache_dtype, *self._scales(layer))
        output.index_copy_(0, rows, out.to(output.dtype))

    def _cuda_prefill(self, query: torch.Tensor, kv_cache: torch.Tensor,
                      meta: SparseAttentionMetadata, output: torch.Tensor) -> None:
        key_cache, value_cache = kernels.split_kv_cache(kv_cache)
        for r in meta.dense_reqs:
            start, end = int(meta.query_start_loc_cpu[r]), int(meta.query_start_loc_cpu[r + 1])
            output[start:end] = kernels.prefill(
                query[start:end], key_cache, value_cache, meta.block_table[r],
                int(meta.seq_lens_cpu[r]), self.scale,
            ).to(output.dtype)

    def _decode(self, layer: Any, query: torch.Tensor, kv_cache: torch.Tensor,
                meta: SparseAttentionMetadata, output: torch.Tensor,
                dense: bool) -> torch.Tensor:
        """Decode rows: select blocks (all of them when dense) and attend; returns block_idx."""
        q = query[meta.decode_tokens]
        table = meta.block_table[meta.decode_reqs]
        seq_lens = meta.seq_lens[meta.decode_reqs]
        block_size = kv_cache.shape[2]
        if dense:
            block_idx = selection.all_blocks(seq_lens, self.num_kv_heads, block_size,
                                             meta.decode_max_seq_len)
        else:
            block_idx = selection.select_blocks(q, self._summaries_for(kv_cache), table,
                                                seq_lens, self.config, meta.decode_max_seq_len)
        if kv_cache.is_cuda:
            key_cache, value_cache = kernels.split_kv_cache(kv_cache)
            out = kernels.decode(q, key_cache, value_cache, table, seq_lens, block_idx,
                                 self.scale)
        else:
            isa = self._cpu_isa(kv_cache.dtype, block_size)
            out = cpu_stock().sparse_decode(q, kv_cache, table, seq_lens, block_idx, self.scale,
                                            isa, self.kv_cache_dtype, *self._scales(layer))
        output[meta.decode_tokens] = out.to(output.dtype)
        return block_idx

    def _record(self, meta: SparseAttentionMetadata, kv_cache: torch.Tensor,
                block_idx: torch.Tensor | None) -> None:
        """Count this call's paths; with stats on, also the decode blocks read of those there."""
        counts: dict[str, int] = {}
        if meta.dense_reqs:
            counts["prefill_dense"] = 1
        if meta.decode_reqs.numel():
            counts["decode_dense" if block_idx is None else "decode_sparse"] = 1
            if os.environ.get(STATS_ENV_VAR):
                block_size = kv_cache.shape[2]
                seq_lens = meta.seq_lens[meta.decode_reqs].to(torch.long)
                total = int(((seq_lens + block_size - 1) // block_size).sum()) * self.num_kv_heads
                counts["blocks_total"] = total
                counts["blocks_read"] = total if block_idx is None else int((block_idx >= 0).sum())
        if counts:
            stats.record(**counts)


def cpu_stock() -> Any:
    """The stock CPU kernel wrappers, imported on first use (CUDA hosts never need them)."""
    from .kernels import cpu_stock as module

    return module
