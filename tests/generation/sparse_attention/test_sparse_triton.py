"""The Triton decode kernel on CPU under TRITON_INTERPRET=1, fp32 and fp16, against the oracles.

The kernel runs in a fresh interpreter process (see triton_cases.py); each case here checks one
of its results.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.generation.sparse_attention.triton_cases import CASES

ROOT = Path(__file__).resolve().parents[3]

# The kernel runs in a subprocess that needs torch and triton (the cpu extra); find_spec keeps
# triton out of this process.
pytestmark = pytest.mark.skipif(
    any(importlib.util.find_spec(m) is None for m in ("torch", "triton")),
    reason="needs torch and triton (pip install -e '.[cpu]')")


@pytest.fixture(scope="module")
def results() -> dict:
    env = {**os.environ, "TRITON_INTERPRET": "1"}
    proc = subprocess.run([sys.executable, "-m", "tests.generation.sparse_attention.triton_cases"],
                          cwd=ROOT, capture_output=True, text=True, env=env, timeout=600,
                          check=False)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("case", CASES)
def test_triton_matches_oracle(results, case):
    result = results[case]
    assert result["interpreted"] == "InterpretedFunction"
    assert result["dtype_ok"] and result["finite"]
    assert result["max_err"] <= result["tol"], result
