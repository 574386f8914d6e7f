"""Guards for values one step from a parameter (issue 17's examples), none where the body
already checks, and the README's boundary example, run as the README says."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.generation.completion.stages.helpers import completed, staged

ROOT = Path(__file__).resolve().parents[4]


def boundary_of(cand) -> str:
    return next(d.detail for d in cand.decisions if d.stage == "boundary")


def test_division_by_the_length_of_a_parameter_gets_an_empty_guard():
    cand = staged("def mean(values):\n█\n", "python",
                  "    total = sum(values)\n    return total / len(values)\n")
    assert cand.text == ("    if not values:\n        raise ValueError(\"values must not be "
                         "empty\")\n    total = sum(values)\n    return total / len(values)")
    assert boundary_of(cand) == "guard added for values (empty)"


def test_division_by_a_local_holding_the_length():
    cand = staged("def mean(values):\n█\n", "python",
                  "    n = len(values)\n    return sum(values) / n\n")
    assert boundary_of(cand) == "guard added for values (empty)"


def test_split_result_indexed_at_a_fixed_position_is_guarded_after_it_is_made():
    cand = staged("def first_word(text):\n█\n", "python",
                  "    words = text.split()\n    return words[0]\n")
    assert cand.text == ("    words = text.split()\n    if not words:\n        raise ValueError("
                         "\"words must not be empty\")\n    return words[0]")
    assert boundary_of(cand) == "guard added for words (length 1)"


def test_filter_result_indexed_is_guarded():
    cand = staged("def first_even(items):\n█\n", "python",
                  "    evens = [x for x in items if x % 2 == 0]\n    return evens[0]\n")
    assert boundary_of(cand) == "guard added for evens (length 1)"


def test_highest_fixed_index_beats_an_emptiness_guard():
    cand = staged("def ratio(values):\n█\n", "python",
                  "    if not values:\n        raise ValueError(\"values must not be empty\")\n"
                  "    return values[0] / values[1]\n")
    assert cand.text.startswith("    if len(values) < 2:\n        raise ValueError(\"values must "
                                "have at least 2 items\")\n")
    assert boundary_of(cand) == "guard added for values (length 2)"


def test_no_guard_where_the_body_already_checks():
    for body in ("    if len(values) < 2:\n        raise ValueError('short')\n"
                 "    return values[0] / values[1]\n",
                 "    words = text.split()\n    if not words:\n        return ''\n"
                 "    return words[0]\n",
                 "    parts = text.split(',')\n    return parts[0]\n"):  # split(",") has one
        src = "def f(values, text):\n█\n"
        assert boundary_of(staged(src, "python", body)) == "every parameter use is guarded"


def test_javascript_length_divisor_and_split_index():
    cand = staged("function mean(values) {\n█\n}\n", "javascript",
                  "  const total = values.reduce((a, b) => a + b, 0);\n"
                  "  return total / values.length;\n")
    assert cand.text.startswith("  if (values == null || values.length === 0) {\n    throw new "
                                "RangeError(\"values must not be empty\");\n  }\n")
    cand = staged("function second(s) {\n█\n}\n", "typescript",
                  "  const parts = s.split(\",\");\n  return parts[1];\n")
    assert cand.text == ("  const parts = s.split(\",\");\n  if (parts.length < 2) {\n"
                         "    throw new RangeError(\"parts must have at least 2 items\");\n  }\n"
                         "  return parts[1];")
    assert "return parts[1];" in completed("function second(s) {\n█\n}\n", cand)


README_FILE = "def mean(values):\n\n"
README_RAW = "    total = sum(values)\n    return total / len(values)\n"
README_TEXT = ("    if not values:\n        raise ValueError(\"values must not be empty\")\n"
               "    total = sum(values)\n    return total / len(values)")


def test_readme_boundary_example_reproduces(tmp_path: Path):
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for block in (README_FILE.rstrip("\n"), README_RAW.rstrip("\n"), README_TEXT):
        shown = "\n".join(f"   {line}" if line else "" for line in block.split("\n"))
        assert shown in readme
    assert "stagecoder stages mean.py --line 2 --col 1 --raw raw.txt" in readme
    (tmp_path / "mean.py").write_text(README_FILE)
    (tmp_path / "raw.txt").write_text(README_RAW)
    proc = subprocess.run([sys.executable, "-m", "lsp_server", "stages", "mean.py", "--line",
                           "2", "--col", "1", "--raw", "raw.txt"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=60,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["text"] == README_TEXT
