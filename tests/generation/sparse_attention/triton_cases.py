"""Run the Triton decode kernel under TRITON_INTERPRET=1 on every case; print one JSON line.

Run as a script in a fresh process (test_sparse_triton.py does): the interpreter flag must be on
before triton is first imported, which a pytest process that already imported vLLM cannot
guarantee. Each case reports the kernel's max abs error against the oracle and its tolerance.
"""

from __future__ import annotations

import json
import os
import sys

CASES = [
    *(f"{name}-{sel}-{dt}" for name in ("one_token", "mixed_lengths", "mha_block64",
                                        "gqa8_head128")
      for sel in ("sparse", "covering") for dt in ("fp32", "fp16")),
    *(f"single_long-splits{n}-fp32" for n in (1, 2, 7, 64)),
]
TOLERANCE = {"fp32": 1e-5, "fp16": 2e-3}


def run_case(case: str) -> dict:
    """Max error of the kernel on one case, against the dense or sparse oracle."""
    import torch

    from generation.sparse_attention import reference, selection
    from generation.sparse_attention.config import SparseConfig
    from generation.sparse_attention.kernels import triton_decode
    from tests.generation.sparse_attention.sparse_batches import make_paged, shape_named

    name, mode, dt = case.split("-")
    dtype = {"fp32": torch.float32, "fp16": torch.float16}[dt]
    shape = shape_named(name)
    paged = make_paged(shape, dtype=dtype)
    longest = int(paged.seq_lens.max())
    splits = 3
    if mode.startswith("splits"):
        splits = int(mode.removeprefix("splits"))
        idx = selection.all_blocks(paged.seq_lens, shape.kv_heads, shape.block_size, longest)
    else:
        top_k = 2 if mode == "sparse" else 1000
        config = SparseConfig(enabled=True, block_size=shape.block_size,
                              sink_tokens=shape.block_size, local_window=2 * shape.block_size,
                              top_k=top_k, dense_threshold=0, dense_layers=0)
        idx = selection.select_blocks(paged.query, paged.summaries, paged.block_table,
                                      paged.seq_lens, config, longest)
    scale = shape.head_size ** -0.5
    got = triton_decode.sparse_decode(paged.query, paged.key_cache, paged.value_cache,
                                      paged.block_table, paged.seq_lens, idx, scale,
                                      num_splits=splits)
    if mode == "sparse":
        want = reference.sparse_decode(paged.query, paged.key_cache, paged.value_cache,
                                       paged.block_table, paged.seq_lens, idx, scale)
    else:
        want = reference.dense_decode(paged.query, paged.key_cache, paged.value_cache,
                                      paged.block_table, paged.seq_lens, scale)
    err = (got.float() - want).abs()
    return {"max_err": float(err.max()), "tol": TOLERANCE[dt] * (1 + float(want.abs().max())),
            "dtype_ok": got.dtype == dtype, "finite": bool(torch.isfinite(got).all()),
            "interpreted": type(triton_decode._split_kernel).__name__}


def main() -> int:
    """Run every case (or those named on the command line) and print the results as JSON."""
    if os.environ.get("TRITON_INTERPRET") != "1":
        print("set TRITON_INTERPRET=1", file=sys.stderr)
        return 2
    cases = sys.argv[1:] or CASES
    print(json.dumps({case: run_case(case) for case in cases}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
