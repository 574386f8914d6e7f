"""Structure stage on real code: stop at the unit's end, keep `//` and blank lines, drop repeats."""

from __future__ import annotations

import pytest

from analysis.documents.document import Document
from tests.generation.completion.stages.helpers import completed, inputs, staged

PY_BODY = '''import math


def hypotenuse(a, b):
█

def area(r):
    return math.pi * r ** 2
'''


def parses(source: str, language: str) -> bool:
    return not Document("file:///x", source, language).has_errors()


def test_python_body_keeps_floor_division_and_blank_lines():
    raw = ("    half = a // 2\n\n    total = half + b // 3\n    return math.sqrt(total)\n\n"
           "def area(r):\n    return math.pi * r ** 2\n")
    cand = staged(PY_BODY, "python", raw)
    assert cand.text == ("    half = a // 2\n\n    total = half + b // 3\n"
                         "    return math.sqrt(total)")
    assert cand.decisions[0].detail.startswith("dedent")
    assert parses(completed(PY_BODY, cand), "python")


def test_python_expression_hole_stops_at_statement_end():
    src = "def f(a, b):\n    x = █\n    return x\n"
    cand = staged(src, "python", "a // b  # floor division\n    return x\n")
    assert cand.text == "a // b  # floor division"


def test_python_expression_spanning_lines_in_brackets():
    src = "def f(a, b):\n    x = █\n    return x\n"
    cand = staged(src, "python", "max(\n        a,\n        b,\n    )\n    return x\n")
    assert cand.text == "max(\n        a,\n        b,\n    )"


def test_python_closing_bracket_already_in_suffix():
    src = "def f(a, b):\n    return max(█)\n"
    cand = staged(src, "python", "a, b)\n\nprint(f(1, 2))\n")
    assert cand.text == "a, b"


def test_python_suffix_repeat_is_dropped():
    src = "def f(items):\n    total = 0\n█    return total\n"
    raw = "    for item in items:\n        total += item\n    return total\n"
    cand = staged(src, "python", raw)
    assert cand.text == "    for item in items:\n        total += item\n"
    assert "suffix" in cand.decisions[0].detail
    assert parses(completed(src, cand), "python")


def test_python_truncates_to_longest_valid_prefix():
    src = "def f(a):\n█\n"
    raw = "    b = a + 1\n    c = (b +\n"  # the model stopped mid-expression
    cand = staged(src, "python", raw)
    assert cand.text == "    b = a + 1"
    assert cand.decisions[0].action == "truncated"


def test_python_string_with_hash_and_brackets_survives():
    src = "def f():\n    x = █\n"
    cand = staged(src, "python", "'# not a comment )'\n    return x\n")
    assert cand.text == "'# not a comment )'"


def test_javascript_block_stops_at_closing_brace():
    src = "function first(items) {\n█}\n\nmodule.exports = { first };\n"
    raw = "  const head = items[0];\n\n  return head;\n}\n\nmodule.exports = { first };\n"
    cand = staged(src, "javascript", raw, boundary_checks=False)
    assert cand.text == "  const head = items[0];\n\n  return head;\n"
    assert parses(completed(src, cand), "javascript")


def test_javascript_comment_division_regex_like_text():
    src = "function half(n) {\n  const h = █\n  return h;\n}\n"
    cand = staged(src, "javascript", "n / 2; // halve it (roughly)\n  return h;\n}\n")
    assert cand.text == "n / 2; // halve it (roughly)"


def test_typescript_arguments_on_one_line():
    src = "function add(a: number, b: number): number {\n  return Math.max(█);\n}\n"
    cand = staged(src, "typescript", "a, b);\n}\n")
    assert cand.text == "a, b"


def test_go_block_inside_if():
    src = "package m\n\nfunc f(a int) int {\n\tif a > 0 {\n█\t}\n\treturn 0\n}\n"
    cand = staged(src, "go", "\t\treturn a / 2\n\t}\n\treturn 0\n}\n")
    assert cand.text == "\t\treturn a / 2\n"
    assert parses(completed(src, cand), "go")


def test_rust_line_hole_drops_repeated_semicolon():
    src = "fn f(a: i32) -> i32 {\n    let y = █;\n    y\n}\n"
    cand = staged(src, "rust", "a * 2;\n    y\n}\n")
    assert cand.text == "a * 2"
    assert parses(completed(src, cand), "rust")


def test_dropped_when_nothing_valid():
    src = "def f(a):\n    x = █\n"
    cand = staged(src, "python", ")))\n")
    assert cand.text is None and cand.decisions[0].action == "dropped"


HOLES = [  # (source with the cursor, the context's hole kind, the shape this stage cuts)
    ("def f():\n█\n", "body", "block"),  # column 0 under `def f():` goes in its body
    ("def f():█\n", "body", "block"),
    ("def f():\n    x = █\n", "expression", "expression"),
    ("def f():\n    g(█)\n", "arguments", "line"),  # the call goes on after the cursor
    ("def f(a, b):\n    return max(a,█", "arguments", "expression"),  # left open: may go on
    ("def f():\n    x = 1  # note█\n", "comment", "line"),
    ("function f() {\n  return `a${█}`;\n}\n", "expression", "line"),
    ("function f() {█}\n", "body", "line"),  # `}` follows on the line: finish the line
]


@pytest.mark.parametrize(("source", "kind", "shape"), HOLES)
def test_hole_kind_and_cut_shape(source, kind, shape):
    language = "javascript" if source.startswith("function") else "python"
    prepared = inputs(source, language)
    assert (prepared.hole.kind, prepared.unit.shape) == (kind, shape)


def test_base_indent_of_a_body_at_column_zero():
    assert inputs("def f():\n█\n", "python").hole.base_indent == 4
    assert inputs("if x:\n\tif y:\n█\n", "python").hole.base_indent == 16  # tabs count 8


def test_open_call_at_line_end_may_close_on_a_later_line():
    # The editor and `stagecoder stages` both keep this (they used to disagree: see
    # tests/e2e/test_replay_equals_editor.py): the call is closed, and the file parses.
    src = "def f(a, b):\n    return max(a,█"
    cand = staged(src, "python", " b,\n               0)\n")
    assert cand.text == " b,\n               0)"
    assert parses(completed(src, cand), "python")
