"""Extract function: the edits parse, keep behaviour (the programs are run), and bad selections
are refused with a reason."""

from __future__ import annotations

import contextlib
import io
import textwrap

import pytest

from analysis.documents.document import Document
from analysis.refactor.extract_function import Extraction, Refusal, extract_function
from analysis.review.findings import apply_edits

STATS = '''
import math


def stats(values, scale=2):
    total = 0
    count = 0
    for v in values:
        total += v * scale
        count += 1
    mean = total / count
    spread = math.sqrt(sum((v - mean) ** 2 for v in values) / count)
    return mean, spread


print(stats([1, 2, 3, 4]))
print(stats([5.5, -1], scale=3))
'''


def _extract(source: str, first: str, last: str) -> tuple[str, Extraction | Refusal]:
    source = textwrap.dedent(source).lstrip("\n")
    start = source.index(first)
    end = source.index(last, start) + len(last)
    doc = Document("file:///t/x.py", source, "python")
    result = extract_function(doc, len(source[:start].encode()), len(source[:end].encode()))
    return source, result


def _run(source: str) -> str:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(source, "example.py", "exec"), {"__name__": "__main__"})
    return out.getvalue()


def _applied(source: str, result: Extraction | Refusal) -> str:
    assert isinstance(result, Extraction), result
    new = apply_edits(source.encode(), result.edits).decode()
    assert not Document("file:///t/y.py", new, "python").has_errors(), new
    return new


def test_extracts_loop_with_parameters_and_returns_and_keeps_behaviour() -> None:
    source, result = _extract(STATS, "total = 0", "count += 1")
    new = _applied(source, result)
    assert isinstance(result, Extraction)
    assert result.params == ("values", "scale") and result.returns == ("total", "count")
    assert "def extracted_function(values, scale):" in new
    assert "    total, count = extracted_function(values, scale)\n" in new
    assert _run(new) == _run(source)


def test_module_level_selection_passes_a_rebound_global() -> None:
    source, result = _extract("""
        x = 2
        x = x * 10
        y = x + 1
        print(x, y)
        """, "x = x * 10", "y = x + 1")
    new = _applied(source, result)
    assert isinstance(result, Extraction) and result.params == ("x",)
    assert "x, y = extracted_function(x)" in new
    assert _run(new) == _run(source) == "20 21\n"


def test_nested_block_is_reindented_and_name_does_not_clash() -> None:
    source, result = _extract("""
        def extracted_function():
            return "taken"


        def f(items):
            out = []
            for i in items:
                if i % 2:
                    doubled = i * 2
                    out.append(doubled)
            return out


        print(f([1, 2, 3]), extracted_function())
        """, "doubled = i * 2", "out.append(doubled)")
    new = _applied(source, result)
    assert isinstance(result, Extraction) and result.name == "extracted_function_2"
    assert result.params == ("i", "out") and result.returns == ()
    assert "def extracted_function_2(i, out):\n    doubled = i * 2\n" in new
    assert _run(new) == _run(source)


def test_async_selection_in_async_function() -> None:
    source, result = _extract("""
        import asyncio


        async def main():
            await asyncio.sleep(0)
            value = 41 + 1
            print(value)


        asyncio.run(main())
        """, "await asyncio.sleep(0)", "value = 41 + 1")
    new = _applied(source, result)
    assert "async def extracted_function():" in new
    assert "value = await extracted_function()" in new
    assert _run(new) == _run(source) == "42\n"


@pytest.mark.parametrize(("source", "first", "last", "reason"), [
    ("def f(x):\n    y = x + 1\n    return y\n", "x + 1", "x + 1", "whole statements"),
    ("def f(x):\n    y = x + 1\n    return y\n", "y = x", "return y", "`return`"),
    ("for i in range(3):\n    if i:\n        break\n", "if i", "break", "`break`"),
    ("class K:\n    a = 1\n    b = 2\n", "a = 1", "b = 2", "class body"),
    ("def f():\n    await g()\n", "await g()", "await g()", "`await`"),
    ("def f():\n    global n\n    n = 1\n", "n = 1", "n = 1", "global"),
    ('def f():\n    if 1:\n        s = """a\nb"""\n', "s =", 'b"""', "multi-line string"),
    ("def f():\n    a = 1; b = 2\n", "b = 2", "b = 2", "shares a line"),
    ("def f(:\n    a = 1\n", "a = 1", "a = 1", "syntax errors"),
])
def test_refusals_say_why(source: str, first: str, last: str, reason: str) -> None:
    _, result = _extract(source, first, last)
    assert isinstance(result, Refusal)
    assert reason in result.reason


@pytest.mark.parametrize(("first", "last", "shown"), [
    ("def helper", "return x * 2", "`def helper`"),
    ("@staticmethod", "return 1", "`def tool`"),
    ("class Box", "return 1", "`class Box`"),
    ("y = 1", "return x * 2", "`def helper`"),  # a definition among other statements
])
def test_a_whole_definition_is_refused(first: str, last: str, shown: str) -> None:
    source = textwrap.dedent("""
        y = 1


        def helper(x):
            return x * 2


        class Box:
            size = 1

            @staticmethod
            def tool():
                return 1
        """).lstrip("\n")
    start = source.index(first)
    end = source.index(last, start) + len(last)
    doc = Document("file:///t/x.py", source, "python")
    result = extract_function(doc, start, end)
    assert isinstance(result, Refusal), result
    assert result.reason == f"the selection is a whole definition ({shown}): select the " \
                            "statements inside it"


def test_module_level_bindings_stay_module_globals() -> None:
    """A module-level name that nothing below reads is still returned: importers read it."""
    source, result = _extract("""
        base = 10
        limit = base * 2
        print(base)
        """, "limit = base * 2", "limit = base * 2")
    new = _applied(source, result)
    assert isinstance(result, Extraction) and result.returns == ("limit",)
    namespace: dict = {}
    with contextlib.redirect_stdout(io.StringIO()):
        exec(compile(new, "m.py", "exec"), namespace)
    assert namespace["limit"] == 20


def test_other_languages_are_refused() -> None:
    doc = Document("file:///t/x.js", "let a = 1;\n", "javascript")
    result = extract_function(doc, 0, 10)
    assert isinstance(result, Refusal) and "Python" in result.reason
