"""Boundary stage: function bodies written by a completion get guards in the file's style."""

from __future__ import annotations

from analysis.documents.document import Document
from tests.generation.completion.stages.helpers import completed, staged


def boundary(cand):
    return next(d for d in cand.decisions if d.stage == "boundary")


def test_python_division_gets_value_error_guard():
    src = "def average(total, count):\n█\n"
    cand = staged(src, "python", "    return total / count\n")
    assert cand.text == ("    if count == 0:\n"
                         "        raise ValueError(\"count must not be zero\")\n"
                         "    return total / count")
    assert boundary(cand).action == "guarded"
    namespace: dict = {}
    exec(completed(src, cand), namespace)
    assert namespace["average"](6, 3) == 2
    try:
        namespace["average"](1, 0)
    except ValueError as exc:
        assert "count" in str(exc)
    else:
        raise AssertionError("the guard did not fire")


def test_python_guard_after_docstring_and_for_index():
    src = "def head(items):\n█\n"
    cand = staged(src, "python", '    """First item."""\n    return items[0]\n')
    assert cand.text == ('    """First item."""\n    if not items:\n'
                         '        raise ValueError("items must not be empty")\n'
                         '    return items[0]')


def test_python_already_guarded_is_kept():
    src = "def average(total, count):\n█\n"
    raw = "    if count == 0:\n        return 0.0\n    return total / count\n"
    cand = staged(src, "python", raw)
    assert boundary(cand).action == "kept"
    assert cand.text == raw.rstrip("\n")


def test_python_setting_turns_it_off():
    src = "def average(total, count):\n█\n"
    cand = staged(src, "python", "    return total / count\n", boundary_checks=False)
    assert cand.text == "    return total / count"


def test_not_a_whole_body_is_left_alone():
    src = "def average(total, count):\n    count = count or 1\n█\n"
    cand = staged(src, "python", "    return total / count\n")
    assert boundary(cand).action == "kept"


def test_javascript_throw_guard():
    src = "function ratio(a, b) {\n█}\n"
    cand = staged(src, "javascript", "  return a / b;\n}\n")
    assert cand.text == ("  if (b === 0) {\n    throw new RangeError(\"b must not be zero\");\n"
                         "  }\n  return a / b;\n")
    assert not Document("x", completed(src, cand), "javascript").has_errors()


def test_typescript_throw_guard():
    src = "function ratio(a: number, b: number): number {\n█}\n"
    cand = staged(src, "typescript", "  return a / b;\n}\n")
    assert "throw new RangeError(\"b must not be zero\")" in cand.text


def test_go_returns_error():
    src = ('package m\n\nimport "errors"\n\nvar _ = errors.New\n\n'
           'func ratio(a int, b int) (int, error) {\n█}\n')
    cand = staged(src, "go", "\treturn a / b, nil\n}\n")
    assert cand.text == ('\tif b == 0 {\n\t\treturn 0, errors.New("b must not be zero")\n\t}\n'
                         '\treturn a / b, nil\n')
    assert not Document("x", completed(src, cand), "go").has_errors()


def test_go_without_error_result_is_left_alone():
    src = "package m\n\nfunc ratio(a int, b int) int {\n█}\n"
    cand = staged(src, "go", "\treturn a / b\n}\n")
    assert cand.text == "\treturn a / b\n"
