"""benchmarks/real_outputs.py runs on a few committed cases (no network), so it never rots:
its table shows every model beside its baselines, and its last line is the JSON of figures."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.real_outputs import DATA, first_line, load, passes

ROOT = Path(__file__).resolve().parents[3]

pytestmark = pytest.mark.skipif(not (DATA / "humaneval_single_line.jsonl.gz").exists(),
                                reason="benchmarks/data/real_outputs is not in this checkout")


def test_a_few_cases_run_end_to_end():
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "real_outputs.py"),
                           "--limit", "3"], capture_output=True, text=True, timeout=600,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    figures = json.loads(lines[-1])
    models = {m for row in load(DATA / "humaneval_single_line.jsonl.gz", 1)
              for m in row["outputs"]}
    assert len(models) == 4
    for model in models:
        assert any(line.startswith(f"  python/{model} ") for line in lines)
    for key in ("humaneval_python_raw_pass_at_1", "humaneval_python_first_line_pass_at_1",
                "humaneval_python_staged_pass_at_1", "cceval_python_staged_exact_match",
                "cceval_typescript_staged_exact_match", "shortfalls"):
        assert key in figures
    assert all(0.0 <= figures[k] <= 1.0 for k in figures if k.endswith("_pass_at_1"))


def test_tests_run_in_a_subprocess_with_a_timeout():
    assert passes("assert 1 + 1 == 2\n")
    assert not passes("assert 1 + 1 == 3\n")
    assert not passes("while True:\n    pass\n", timeout=1.0)


def test_first_line_truncation_keeps_the_line_break_for_line_holes():
    assert first_line("a\nb\n", keep_newline=True) == "a\n"
    assert first_line("a\nb\n", keep_newline=False) == "a"
    assert first_line("\n    x\n", keep_newline=True) == "\n"
