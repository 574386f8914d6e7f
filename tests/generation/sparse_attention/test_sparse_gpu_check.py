"""The prepared GPU check (benchmarks/gpu/run.sh) in --smoke mode: it runs, and its kernel agrees.

Smoke mode is the full-size script on tiny shapes on CPU with the Triton kernel interpreted, so
this keeps the GPU script from rotting between GPU slots. The run must also import nothing but
torch, triton, numpy, the standard library and generation.sparse_attention's vLLM-free modules.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]

pytestmark = pytest.mark.skipif(
    any(importlib.util.find_spec(m) is None for m in ("torch", "triton")),
    reason="needs torch and triton (pip install -e '.[cpu]')")


@pytest.fixture(scope="module")
def smoke(tmp_path_factory) -> tuple[dict, str]:
    out = tmp_path_factory.mktemp("gpu-check")
    env = {**os.environ, "PYTHON": sys.executable}
    env.pop("TRITON_INTERPRET", None)  # run.sh must set it itself
    proc = subprocess.run(["bash", "benchmarks/gpu/run.sh", "--smoke", str(out)], cwd=ROOT,
                          capture_output=True, text=True, env=env, timeout=900, check=False)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return json.loads((out / "sparse_gpu_check.json").read_text()), proc.stdout


def test_kernel_matches_oracle_on_every_tiny_case(smoke):
    figures, _ = smoke
    kernel = figures["kernel_vs_oracle"]
    assert kernel["interpreted"] and kernel["bf16_upcast"]
    # 2 shapes x (fp16, bf16) x (sparse, covering) x (backend, vllm_flash layouts)
    assert kernel["count"] == 16
    for name, case in kernel["cases"].items():
        assert case["ok"] and case["finite"], name
        assert case["max_err"] <= case["tol"], name
    assert kernel["all_ok"]


def test_decode_timing_bytes_and_selection_cost_are_reported(smoke):
    figures, _ = smoke
    sizes = figures["decode"]["sizes"]
    assert sorted(sizes) == ["gqa_tiny/512/b1", "gqa_tiny/512/b2", "mha_tiny/512/b1",
                             "mha_tiny/512/b2"]
    for name, size in sizes.items():
        assert all(size[k] > 0 for k in ("select_ms", "sparse_kernel_ms", "sparse_ms",
                                         "dense_triton_ms", "dense_sdpa_ms")), name
        # 32 blocks of 16 tokens; sink 1 + window 2 + current 1 + top-4 = 8 read.
        assert size["blocks"] == 32 and size["blocks_read_mean"] == 8, name
        assert 0.25 < size["kv_read_ratio"] < 0.4, name  # 8/32 of K/V plus the summaries
        assert size["dense_triton_vs_sdpa_max_err"] < 2e-2, name  # bf16: paged kernel == SDPA


def test_fidelity_figures_obey_their_invariants(smoke):
    fidelity = smoke[0]["fidelity"]
    assert fidelity["training"]["steps"] > 0
    assert fidelity["corpus"]["held_out_files"]
    for layer in [*fidelity["per_layer"], fidelity["mean"]]:
        # The selection keeps the static blocks and more; no choice of as many beats the best.
        assert layer["mass_static"] <= layer["mass_kept"] <= layer["mass_best"] + 1e-5
        assert 0.0 <= layer["rel_error"] < 1.0
        assert 0.0 < layer["blocks_read_share"] <= 1.0


def test_run_imports_nothing_forbidden_and_prints_its_file(smoke):
    figures, stdout = smoke
    assert figures["imports"] == {"forbidden_imported": [], "ok": True}
    assert json.loads(stdout) == figures


def test_the_fence_refuses_vllm_and_the_backend():
    code = ("from benchmarks.gpu.common import fence_imports\n"
            "assert fence_imports() == []\n"
            "from generation.sparse_attention import config, kernels, reference, selection\n"
            "from generation.sparse_attention.kernels import torch_decode, triton_decode\n"
            "for name in ('vllm', 'generation.sparse_attention.backend', 'analysis'):\n"
            "    try:\n"
            "        __import__(name)\n"
            "    except ModuleNotFoundError as exc:\n"
            "        print('refused', exc.name)\n")
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                          text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.split() == ["refused", "vllm", "refused",
                                   "generation.sparse_attention.backend", "refused", "analysis"]
