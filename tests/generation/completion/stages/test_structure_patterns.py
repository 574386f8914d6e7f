"""The four ways real model output used to lose against its own raw text (issue 17), each as the
model wrote it: a leading newline at an empty line, a statement hole answered by a complete
block, a file broken elsewhere, and a run-on into a new top-level definition or `__main__` block.
Every case snapshots the text the user gets and checks that the file then parses."""

from __future__ import annotations

import pytest

from analysis.documents.document import Document
from analysis.documents.trial import TrialParser, region_view, unit_span
from tests.generation.completion.stages.helpers import completed, inputs, staged


def parses(source: str, language: str) -> bool:
    doc = Document(f"file:///t.{language}", source, language)
    return doc.tree is not None and not doc.has_errors()


# ---------------------------------------------------------------- 1. leading newline


def test_leading_newline_at_an_empty_line_keeps_the_statement():
    # The cursor is on an empty line after the loop; the model starts with "\n".
    src = ("def sums(numbers):\n    total = 0\n    for n in numbers:\n        total += n\n█")
    cand = staged(src, "python", "\n    return total\n\n\nif __name__ == \"__main__\":\n"
                  "    print(sums([1]))\n")
    assert cand.text == "    return total"
    assert cand.decisions[0].detail == "dedent at line 4"  # line 1 was the blank lead-in
    assert parses(completed(src, cand), "python")


def test_leading_blank_line_with_spaces_is_dropped_too():
    src = "def f(s):\n    if len(s) < 3:\n        return False\n█"
    cand = staged(src, "python", "    \n    return True\n")
    assert cand.text == "    return True"


def test_leading_newline_on_an_indented_empty_line_drops_the_cursor_indentation():
    src = "def f(a):\n    x = a\n    █\n"
    cand = staged(src, "python", "\n    return x\n")
    assert cand.text == "return x"
    assert completed(src, cand) == "def f(a):\n    x = a\n    return x\n"


def test_leading_newline_after_code_is_the_model_ending_the_line():
    # Code before the cursor: the line break is part of the completion, not a blank lead-in.
    src = "def f(a):\n    x = a█\n    return x\n"
    cand = staged(src, "python", "\n")
    assert cand.text is None


# ---------------------------------------------------------------- 2. a block for a statement


def test_statement_hole_answered_by_a_whole_block_keeps_the_block():
    # The hole was one line inside the loop body (indent 8); the model wrote its statements
    # at the function's level. All of them are the answer, up to the dedent of `if __name__`.
    src = ("def is_sorted(values):\n    for i in range(len(values) - 1):\n"
           "        if values[i] > values[i + 1]:\n            return False\n█")
    raw = ("    t = 0\n    for v in values:\n        t += v\n    return t >= 0\n\n"
           "if __name__ == \"__main__\":\n    print(is_sorted([1]))\n")
    cand = staged(src, "python", raw)
    assert cand.text == "    t = 0\n    for v in values:\n        t += v\n    return t >= 0"
    assert parses(completed(src, cand), "python")


def test_block_stops_where_the_output_repeats_the_suffix():
    src = ("def f(xs):\n    t = 0\n█\n    return t\n\n\ndef g():\n    pass\n")
    cand = staged(src, "python", "    for x in xs:\n        t += x\n    return t\n\n\ndef g():\n")
    assert cand.text == "    for x in xs:\n        t += x"


def test_indentation_the_block_ends_with_goes_to_the_code_after_the_cursor():
    # Code follows the cursor on its line: the model's last line is that code's indentation.
    src = ("def f(lst):\n    res = []\n    while lst:\n█        lst.pop()\n    return res\n")
    cand = staged(src, "python", "        if lst[0]:\n            res.append(lst[0])\n    ")
    assert cand.text == "        if lst[0]:\n            res.append(lst[0])\n    "
    assert "            lst.pop()" in completed(src, cand)


# ---------------------------------------------------------------- 3. broken elsewhere


def test_python_file_broken_at_the_top_keeps_a_good_loop_statement():
    src = ("x = (1,\n\n\ndef f():\n    return 1\n\n\ndef total(values):\n    result = 0\n"
           "    for v in values:\n        █\n    return result\n")
    cand = staged(src, "python", "result += v\n")
    assert cand.text == "result += v"
    assert [d.action for d in cand.decisions][:1] == ["cut"]


def test_typescript_function_broken_above_keeps_the_callback_statement():
    src = ("function f(values: number[]) {\n  const x = [1, 2\n  let t = 0;\n"
           "  values.forEach((v) => { t += █ });\n  return t;\n}\n")
    cand = staged(src, "typescript", "v;")
    assert cand.text == "v;"


def test_broken_unit_still_drops_text_that_does_not_parse_there():
    # The hole's own unit is broken (the line being typed): its error count does not move for
    # junk the parser folds into that error, but the junk's tokens are held against it.
    src = "def f(a):\n    x = █\n"
    assert staged(src, "python", ")))\n").text is None
    cand = staged(src, "python", "foo bar baz\n")
    assert (cand.text, cand.decisions[0].action) == ("foo", "truncated")


def test_a_function_left_open_before_the_next_export_may_be_finished():
    # The prefix stops inside a function the file never closes (the next code is an export):
    # the statement, the callback's close and the function's rest are one unit.
    src = ("export const total = (events: Event[]) => {\n  let t = 0\n"
           "  events.forEach((e) => {\n    t += new Date(█\n\nexport const other = 1\n")
    raw = "e.end).getTime()\n  })\n\n  return t\n}\n\nexport const more = 2\n"
    cand = staged(src, "typescript", raw)
    assert cand.text == "e.end).getTime()\n  })\n\n  return t\n}"
    assert parses(completed(src, cand), "typescript")


def test_trial_window_of_a_broken_file_is_the_hole_unit():
    src = b"x = (1,\n\n\ndef total(values):\n    result = 0\n    return result\n"
    doc = Document("file:///t.py", src.decode(), "python")
    offset = src.index(b"    return")
    trials = TrialParser(doc, offset)
    assert trials.window == (src.index(b"def total"), len(src))
    assert (trials.errors_before, trials.broken) == (0, False)


def test_unit_span_ignores_column_zero_lines_inside_a_docstring():
    src = b'def f():\n    """Doc\nat column 0\n"""\n    return 1\n'
    doc = Document("file:///t.py", src.decode(), "python")
    assert unit_span(src, src.index(b"return"), src.index(b"return"), True, doc.tree) == (
        0, len(src))
    # Without the tree a docstring's line at column 0 looks like the start of a unit.
    assert unit_span(src, src.index(b"return"), src.index(b"return"), True)[0] > 0


def test_hole_scopes_in_a_file_broken_elsewhere_are_the_function_s():
    src = "x = (1,\n\n\ndef total(values):\n    result = 0\n    █\n"
    prepared = inputs(src, "python")
    assert [s.name for s in prepared.hole.scopes] == ["total"]
    assert "values" in prepared.in_scope()
    clean = Document("file:///c.py", "def f():\n    pass\n", "python")
    assert region_view(clean, 5) is clean  # a clean file is read as it is


# ---------------------------------------------------------------- 4. run-on


@pytest.mark.parametrize(("src", "tail", "where"), [
    ("def strip_all(items):\n█", "\n\ndef helper(s):\n    return s\n", "dedent at line 4"),
    ("def strip_all(items):\n█", "\n\nif __name__ == \"__main__\":\n    main()\n",
     "dedent at line 4"),
    # At the top level there is no dedent: the new definition ends the unit.
    ("items = [' a ']\n█", "\n\ndef helper(s):\n    return s\n",
     "new top-level definition at line 4"),
    ("items = [' a ']\n█", "\n\nif __name__ == \"__main__\":\n    main()\n",
     "new top-level definition at line 4"),
])
def test_run_on_into_a_new_top_level_unit_keeps_the_right_line(src, tail, where):
    line = ("    return [s.strip() for s in items]" if src.startswith("def")
            else "stripped = [s.strip() for s in items]")
    cand = staged(src, "python", line + "\n" + tail)
    assert cand.text == line
    assert cand.decisions[0].detail == where


def test_typescript_run_on_into_a_new_function_keeps_the_statement():
    src = "function total(xs: number[]) {\n  let t = 0;\n█\n}\n"
    raw = "  for (const x of xs) t += x;\n  return t;\n}\n\nfunction other() {\n  return 1;\n}\n"
    cand = staged(src, "typescript", raw)
    assert cand.text == "  for (const x of xs) t += x;\n  return t;"
    assert parses(completed(src, cand), "typescript")


def test_top_level_statements_at_a_top_level_hole_stay_one_unit():
    src = "import os\n█\n"
    cand = staged(src, "python", "import sys\nimport re\n\n\ndef main():\n    pass\n")
    assert cand.text == "import sys\nimport re"
