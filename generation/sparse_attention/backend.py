"""The vLLM attention backend: block-sparse decode, dense prefill, over vLLM's paged KV cache.

Four classes, as in vLLM's own backends:
- `SparseAttentionBackend`: stateless factory; registered as CUSTOM on GPU hosts and in place of
  CPU_ATTN on CPU hosts (vLLM's CPU platform always picks CPU_ATTN), so `get_name()` answers with
  the enum member it occupies.
- `SparseAttentionMetadata` / `SparseAttentionMetadataBuilder`: per-batch split into decode rows
  (query length 1: block-sparse path) and the rest (prefill, chunked prefill, speculative
  verification: dense causal path).
- `SparseAttentionImpl`: writes K/V (and refreshes the per-block key summaries), selects blocks per
  KV head for decode rows, and runs the decode kernel on them.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
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


def layer_index(layer_name: str) -> int | None:
    """The layer number inside a vLLM layer name such as `model.layers.3.self_attn.attn`."""
    match = _LAYER_NUMBER.search(layer_name)
    return int(match.group(1)) if match else None


def unsupported_reasons(alibi_slopes: Any, sliding_window: int | None, kv_cache_dtype: str,
                        logits_soft_cap: float | None, attn_type: str,
                        extra: dict[str, Any]) -> list[str]:
    """Why a layer cannot run on this backend; empty when it can."""
    reasons = []
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
    seq_lens: torch.Tensor  # [num_reqs] tokens in context incl. the new ones, device
    seq_lens_cpu: torch.Tensor  # [num_reqs] host copy (upper bound for async spec decode rows)
    block_table: torch.Tensor  # [num_reqs, max_blocks] physical block per logical block
    slot_mapping: torch.Tensor  # [num_tokens] block * block_size + offset, -1 for padding
    decode_reqs: torch.Tensor  # [num_decodes] long, device: requests with query length 1
    decode_tokens: torch.Tensor  # [num_decodes] long, device: their token rows
    decode_max_seq_len: int  # host bound on the decode rows' context length
    dense_reqs: list[int]  # requests with query length > 1 (prefill, spec verify): dense path


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
        return SparseAttentionMetadata(
            num_actual_tokens=m.num_actual_tokens,
            num_reqs=m.num_reqs,
            max_query_len=m.max_query_len,
            max_seq_len=m.max_seq_len,
            query_start_loc_cpu=qsl,
            seq_lens=m.seq_lens[: m.num_reqs],
            seq_lens_cpu=seq_cpu,
            block_table=m.block_table_tensor[: m.num_reqs],
            slot_mapping=m.slot_mapping,
            decode_reqs=decode.to(device),
            decode_tokens=qsl[decode].to(device),
            decode_max_seq_len=int(seq_cpu[decode].max()) if decode.numel() else 0,
            dense_reqs=dense,
        )


class SparseAttentionImpl(AttentionImpl[SparseAttentionMetadata]):  # type: ignore[type-var]
    """Per-layer attention: K/V writes with summaries, sparse decode, dense prefill."""

    def __init__(self, num_heads: int, head_size: int, scale: float,
                 num_kv_heads: int | None = None, alibi_slopes: list[float] | None = None,
                 sliding_window: int | None = None, kv_cache_dtype: str = "auto",
                 logits_soft_cap: float | None = None, attn_type: str = AttentionType.DECODER,
                 kv_sharing_target_layer_name: str | None = None, **extra: Any) -> None:
        reasons = unsupported_reasons(alibi_slopes, sliding_window, kv_cache_dtype,
                                      logits_soft_cap, attn_type, extra)
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

    def do_kv_cache_update(self, layer: Any, key: torch.Tensor, value: torch.Tensor,
                           kv_cache: torch.Tensor, slot_mapping: torch.Tensor) -> None:
        """Write the new tokens' K/V and refresh the key summaries of the blocks they touched."""
        if kv_cache.numel() == 0:
            return
        kernels.write_kv(kv_cache, key, value, slot_mapping)
        if not self._is_dense_layer(layer):
            key_cache, _ = kernels.split_kv_cache(kv_cache)
            selection.update_summaries(self._summaries_for(kv_cache), key_cache, slot_mapping)

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
        key_cache, value_cache = kernels.split_kv_cache(kv_cache)
        if meta.decode_reqs.numel():
            self._decode(layer, query, kv_cache, key_cache, value_cache, meta, output)
        for r in meta.dense_reqs:
            start, end = int(meta.query_start_loc_cpu[r]), int(meta.query_start_loc_cpu[r + 1])
            output[start:end] = kernels.prefill(
                query[start:end], key_cache, value_cache, meta.block_table[r],
                int(meta.seq_lens_cpu[r]), self.scale,
            ).to(output.dtype)
        if meta.dense_reqs:
            stats.record(prefill_dense=1)
        return output

    def _decode(self, layer: Any, query: torch.Tensor, kv_cache: torch.Tensor,
                key_cache: torch.Tensor, value_cache: torch.Tensor,
                meta: SparseAttentionMetadata, output: torch.Tensor) -> None:
        q = query[meta.decode_tokens]
        table = meta.block_table[meta.decode_reqs]
        seq_lens = meta.seq_lens[meta.decode_reqs]
        cfg = self.config
        dense = self._is_dense_layer(layer) or meta.decode_max_seq_len < cfg.dense_threshold
        if dense:
            block_idx = selection.all_blocks(seq_lens, self.num_kv_heads, key_cache.shape[2],
                                             meta.decode_max_seq_len)
        else:
            block_idx = selection.select_blocks(q, self._summaries_for(kv_cache), table,
                                                seq_lens, cfg, meta.decode_max_seq_len)
        out = kernels.decode(q, key_cache, value_cache, table, seq_lens, block_idx, self.scale)
        output[meta.decode_tokens] = out.to(output.dtype)
        if os.environ.get(STATS_ENV_VAR):
            total = (seq_lens.to(torch.long) + key_cache.shape[2] - 1) // key_cache.shape[2]
            stats.record(**{
                "decode_dense" if dense else "decode_sparse": 1,
                "blocks_read": int((block_idx >= 0).sum()),
                "blocks_total": int(total.sum()) * self.num_kv_heads,
            })
        else:
            stats.record(**{"decode_dense" if dense else "decode_sparse": 1})
