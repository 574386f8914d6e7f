"""The backend's builder and impl driven in-process through vLLM's interfaces, step by step.

A batch goes through `build()` then, per layer, `do_kv_cache_update()` and `forward()`, exactly as
vLLM calls them; every output row is checked against the oracles. On CPU the cache is stock
CPU_ATTN's (its layout is the kernel ISA's business), so the oracles read a shadow cache in the
reference layout that receives the same K/V; a dense layer is also compared with vLLM's own
CPU_ATTN implementation run on the same batches.
"""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest

# Needs torch and vLLM (the cpu extra): skipped on an install without it.
pytest.importorskip("torch")
pytest.importorskip("vllm")

import torch
from vllm.v1.attention.backend import CommonAttentionMetadata

from generation.sparse_attention import kernels, reference, selection
from generation.sparse_attention.backend import (
    SparseAttentionImpl,
    SparseAttentionMetadataBuilder,
    layer_index,
    unsupported_reasons,
)
from generation.sparse_attention.config import ENV_VAR, SparseConfig
from generation.sparse_attention.kernels import cpu_stock

HEADS, KV_HEADS, DIM, BS = 4, 2, 64, 16
SETTINGS = dict(enabled=True, blockSize=BS, sinkTokens=16, localWindow=32, topK=2,
                denseThreshold=64, denseLayers=1)
SCALE = DIM ** -0.5


class Engine:
    """A miniature model runner: block allocation, slot mapping, metadata, one layer's cache."""

    def __init__(self, num_blocks: int = 64, seed: int = 0):
        self.kv = torch.full((num_blocks, KV_HEADS, BS, 2 * DIM), 1e4)  # stale garbage
        self.shadow = torch.full_like(self.kv, float("nan"))  # reference layout, for oracles
        self.free = list(torch.randperm(num_blocks, generator=torch.Generator().manual_seed(seed)))
        self.tables: dict[str, list[int]] = {}
        self.lens: dict[str, int] = {}
        self.builder = SparseAttentionMetadataBuilder(None, [], None, torch.device("cpu"))

    def step(self, work: list[tuple[str, int]]):
        """Schedule (request, new tokens) pairs; return metadata and slot mapping."""
        starts, seq_lens, slots = [0], [], []
        for req, new in work:
            table = self.tables.setdefault(req, [])
            old = self.lens.get(req, 0)
            for pos in range(old, old + new):
                if pos // BS >= len(table):
                    table.append(int(self.free.pop()))
                slots.append(table[pos // BS] * BS + pos % BS)
            self.lens[req] = old + new
            starts.append(starts[-1] + new)
            seq_lens.append(old + new)
        width = max(len(self.tables[r]) for r, _ in work)
        table = torch.zeros(len(work), width, dtype=torch.int32)
        for i, (req, _) in enumerate(work):
            table[i, :len(self.tables[req])] = torch.tensor(self.tables[req], dtype=torch.int32)
        qsl = torch.tensor(starts, dtype=torch.int32)
        slot_mapping = torch.tensor([*slots, -1, -1])  # two padding tokens, as vLLM pads
        common = CommonAttentionMetadata(
            query_start_loc=qsl, query_start_loc_cpu=qsl,
            seq_lens=torch.tensor(seq_lens, dtype=torch.int32), num_reqs=len(work),
            num_actual_tokens=starts[-1], max_query_len=max(n for _, n in work),
            max_seq_len=max(seq_lens), block_table_tensor=table, slot_mapping=slot_mapping,
        )
        self.common = common
        return self.builder.build(0, common), slot_mapping


@pytest.fixture
def impl(monkeypatch):
    monkeypatch.setenv(ENV_VAR, json.dumps(SETTINGS))
    return SparseAttentionImpl(HEADS, DIM, SCALE, KV_HEADS, None, None, "auto")


def _run(impl, engine, layer, work, gen):
    meta, slots = engine.step(work)
    tokens = meta.num_actual_tokens + 2
    q = torch.randn(tokens, HEADS, DIM, generator=gen)
    k = torch.randn(tokens, KV_HEADS, DIM, generator=gen)
    v = torch.randn(tokens, KV_HEADS, DIM, generator=gen)
    impl.do_kv_cache_update(layer, k, v, engine.kv, slots)
    kernels.write_kv(engine.shadow, k, v, slots)
    engine.last = (q, k, v)
    out = torch.full((tokens, HEADS, DIM), 7.0)
    impl.forward(layer, q, k, v, engine.kv, meta, out)
    return meta, q, out


def _check_rows(engine, meta, q, out, sparse_config=None):
    key_cache, value_cache = kernels.split_kv_cache(engine.shadow)
    for r in range(meta.num_reqs):
        start, end = int(meta.query_start_loc_cpu[r]), int(meta.query_start_loc_cpu[r + 1])
        n = int(meta.seq_lens_cpu[r])
        table = meta.block_table[r:r + 1]
        q_len = end - start
        for i in sorted({0, q_len - 1, *range(0, q_len, 13)}):  # prefill rows: a sample
            t = start + i
            ctx = torch.tensor([n - (end - start) + i + 1], dtype=torch.int32)
            want = reference.dense_decode(q[t:t + 1], key_cache, value_cache, table, ctx, SCALE)
            if sparse_config is not None and q_len == 1 and n >= 64:
                summaries = selection.new_summaries(engine.kv.shape[0], KV_HEADS, DIM, engine.kv)
                written = torch.cat([table[0, :-(-n // BS)].long()[:, None] * BS
                                     + torch.arange(BS)]).flatten()[:n]
                keys = key_cache[written // BS, :, written % BS]
                selection.update_summaries(summaries, keys, written, BS)
                idx = selection.select_blocks(q[t:t + 1], summaries, table, ctx, sparse_config, n)
                assert (idx >= 0).sum() < KV_HEADS * -(-n // BS)  # really sparse
                want = reference.sparse_decode(q[t:t + 1], key_cache, value_cache, table, ctx,
                                               idx, SCALE)
            torch.testing.assert_close(out[t:t + 1], want, atol=1e-5, rtol=0)


def test_sparse_layer_over_prefill_then_mixed_batches(impl):
    engine, gen = Engine(), torch.Generator().manual_seed(1)
    layer = SimpleNamespace(layer_name="model.layers.1.self_attn.attn")
    config = SparseConfig(enabled=True, block_size=BS, sink_tokens=16, local_window=32, top_k=2,
                          dense_threshold=64, dense_layers=1)
    meta, q, out = _run(impl, engine, layer, [("a", 150), ("b", 40)], gen)
    assert meta.dense_reqs == [0, 1] and meta.decode_reqs.numel() == 0
    _check_rows(engine, meta, q, out)
    for _ in range(3):  # decodes, plus a chunked prefill of a new request in the same batch
        meta, q, out = _run(impl, engine, layer, [("a", 1), ("c", 70), ("b", 1)], gen)
        assert meta.decode_reqs.tolist() == [0, 2] and meta.dense_reqs == [1]
        _check_rows(engine, meta, q, out, sparse_config=config)
        assert (out[meta.num_actual_tokens:] == 7.0).all()  # padding rows untouched
    meta, q, out = _run(impl, engine, layer, [("c", 1)], gen)  # 211 tokens: sparse
    _check_rows(engine, meta, q, out, sparse_config=config)


def test_dense_layer_reads_everything(impl):
    engine, gen = Engine(), torch.Generator().manual_seed(2)
    layer = SimpleNamespace(layer_name="model.layers.0.self_attn.attn")
    _run(impl, engine, layer, [("a", 300)], gen)
    meta, q, out = _run(impl, engine, layer, [("a", 1)], gen)
    _check_rows(engine, meta, q, out)  # the dense oracle, though the context is long


class StockTwin:
    """vLLM's own CPU_ATTN implementation over its own cache, fed the same batches."""

    def __init__(self, engine: Engine):
        from vllm.config import VllmConfig, set_current_vllm_config
        from vllm.v1.attention.backends.cpu_attn import CPUAttentionBackendImpl

        config = VllmConfig()  # the impl reads only the model dtype from the current config
        object.__setattr__(config, "model_config", SimpleNamespace(dtype=torch.float32))
        with set_current_vllm_config(config):
            self.impl = CPUAttentionBackendImpl(HEADS, DIM, SCALE, KV_HEADS, None, None, "auto")
        self.kv = engine.kv.clone()
        self.isa = cpu_stock.isa_for(torch.float32, BS, DIM)
        self.layer = SimpleNamespace(isa=self.isa, _k_scale_float=1.0, _v_scale_float=1.0)

    def run(self, common, q, k, v, slots) -> torch.Tensor:
        from vllm import _custom_ops as ops
        from vllm import envs
        from vllm.v1.attention.backends.cpu_attn import CPUAttentionMetadata

        plan = ops.cpu_attn_get_scheduler_metadata(  # as CPUAttentionMetadataBuilder.build does
            common.num_reqs, HEADS, KV_HEADS, DIM, common.seq_lens, torch.float32,
            common.query_start_loc, True, -1, self.isa, envs.VLLM_CPU_ATTN_SPLIT_KV)
        meta = CPUAttentionMetadata(
            num_actual_tokens=common.num_actual_tokens, max_query_len=common.max_query_len,
            query_start_loc=common.query_start_loc, max_seq_len=common.max_seq_len,
            seq_lens=common.seq_lens, block_table=common.block_table_tensor,
            slot_mapping=slots, scheduler_metadata=plan)
        self.impl.do_kv_cache_update(self.layer, k, v, self.kv, slots)
        out = torch.full((q.shape[0], HEADS, DIM), 7.0)
        self.impl.forward(self.layer, q, k, v, self.kv, meta, out)
        return out


@pytest.mark.parametrize("layer_name", ["model.layers.0.self_attn.attn",
                                        "model.layers.1.self_attn.attn"],
                         ids=["dense_layer", "sparse_layer_short_contexts"])
def test_dense_paths_are_stock_cpu_attn(monkeypatch, layer_name):
    # Contexts stay under the dense threshold (64 tokens) in the sparse layer too.
    settings = {**SETTINGS, "denseThreshold": 10_000}
    monkeypatch.setenv(ENV_VAR, json.dumps(settings))
    impl = SparseAttentionImpl(HEADS, DIM, SCALE, KV_HEADS, None, None, "auto")
    engine, gen = Engine(), torch.Generator().manual_seed(4)
    twin = StockTwin(engine)
    layer = SimpleNamespace(layer_name=layer_name)
    for work in ([("a", 150), ("b", 40)], [("a", 1), ("c", 70), ("b", 1)], [("a", 1), ("c", 1)]):
        _, _, out = _run(impl, engine, layer, work, gen)
        stock = twin.run(engine.common, *engine.last, engine.common.slot_mapping)
        assert torch.equal(out, stock), work  # the very same kernel calls, bit for bit


def test_covering_selection_matches_stock_cpu_attn(monkeypatch):
    settings = {**SETTINGS, "topK": 1000, "denseThreshold": 0, "denseLayers": 0}
    monkeypatch.setenv(ENV_VAR, json.dumps(settings))
    impl = SparseAttentionImpl(HEADS, DIM, SCALE, KV_HEADS, None, None, "auto")
    engine, gen = Engine(), torch.Generator().manual_seed(5)
    twin = StockTwin(engine)
    layer = SimpleNamespace(layer_name="model.layers.1.self_attn.attn")
    _run(impl, engine, layer, [("a", 150), ("b", 40)], gen)
    twin.run(engine.common, *engine.last, engine.common.slot_mapping)
    for work in ([("a", 1), ("c", 70), ("b", 1)], [("a", 1), ("c", 1), ("b", 1)]):
        meta, _, out = _run(impl, engine, layer, work, gen)
        assert meta.decode_reqs.numel()
        stock = twin.run(engine.common, *engine.last, engine.common.slot_mapping)
        # Every block kept: one pseudo-request per KV head instead of one per request.
        torch.testing.assert_close(out, stock, atol=1e-6, rtol=0)


def test_profiling_run_zeroes_output(impl):
    out = torch.full((3, HEADS, DIM), 5.0)
    impl.forward(SimpleNamespace(layer_name="x"), out, out, out, torch.empty(0), None, out)
    assert (out == 0).all()


def test_layer_index_and_unsupported_features():
    assert layer_index("model.layers.12.self_attn.attn") == 12
    assert layer_index("language_model.model.layers.0.attn") == 0
    assert layer_index("attn") is None
    assert unsupported_reasons(None, None, "auto", None, "decoder", {}) == []
    reasons = unsupported_reasons([1.0], 128, "fp8", 30.0, "encoder_only", {"sinks": 1})
    assert len(reasons) == 6
    with pytest.raises(NotImplementedError, match="sliding-window"):
        SparseAttentionImpl(HEADS, DIM, SCALE, KV_HEADS, None, 256, "auto")
