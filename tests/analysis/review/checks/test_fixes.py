"""Fixes: the text each rule's fix produces, its safety, and that fixed code parses and is clean."""

from __future__ import annotations

import textwrap

from analysis.documents.document import Document
from analysis.review.checks import analyze
from analysis.review.findings import Applicability, apply_edits
from analysis.review.fixing import fix_document
from analysis.settings import ReviewSettings


def _doc(source: str, ext: str = "py") -> Document:
    return Document(f"file:///t/x.{ext}", textwrap.dedent(source).lstrip("\n"), path=f"x.{ext}")


def _fix(source: str, code: str, ext: str = "py") -> tuple[str, Applicability]:
    doc = _doc(source, ext)
    findings = [f for f in analyze(doc, codes={code}) if f.fix]
    assert len(findings) == 1, findings
    fix = findings[0].fix
    assert fix is not None
    fixed = apply_edits(doc.source, fix.edits).decode()
    after = Document(doc.uri, fixed, path=f"x.{ext}")
    assert not after.has_errors(), fixed
    return fixed, fix.applicability


def test_is_literal_fix_uses_equality_and_is_unsafe() -> None:
    fixed, safety = _fix('if status is not "ok":\n    pass\n', "SC305")
    assert fixed == 'if status != "ok":\n    pass\n'
    assert safety is Applicability.UNSAFE  # `[] is not []` is True, `[] != []` is False


def test_unreachable_python_print_is_removed_safely() -> None:
    fixed, safety = _fix("""
        def f(x):
            return x
            print("dead")
            print("dead too")
        """, "SC301")
    assert fixed == "def f(x):\n    return x\n"
    assert safety is Applicability.SAFE


def test_unreachable_python_binding_is_unsafe() -> None:
    _, safety = _fix("""
        def f():
            return total
            total = 1
        """, "SC301")
    assert safety is Applicability.UNSAFE  # `total` would change from local to global


def test_unreachable_javascript_keeps_hoisted_function() -> None:
    fixed, safety = _fix("""
        function f(x) {
          return g(x);
          console.log(x);
          function g(y) { return y; }
        }
        """, "SC301", "js")
    assert "console.log" not in fixed and "function g(y)" in fixed
    assert safety is Applicability.SAFE


def test_unreachable_javascript_declaration_is_unsafe() -> None:
    _, safety = _fix("function f() {\n  throw new Error();\n  let x = 1;\n}\n", "SC301", "js")
    assert safety is Applicability.UNSAFE


def test_unreachable_go_is_always_unsafe() -> None:
    fixed, safety = _fix("package p\n\nfunc F() int {\n\treturn 1\n\tprintln(2)\n}\n",
                         "SC301", "go")
    assert "println" not in fixed
    assert safety is Applicability.UNSAFE


def test_mutable_default_fix_creates_the_value_per_call() -> None:
    fixed, safety = _fix('''
        def add(tag, tags: list = []):
            """Add a tag."""
            tags.append(tag)
            return tags
        ''', "SC303")
    assert safety is Applicability.UNSAFE
    assert "tags: list | None = None" in fixed
    assert '"""Add a tag."""\n    if tags is None:\n        tags = []\n    tags.append' in fixed
    namespace: dict = {}
    exec(compile(fixed, "fixed.py", "exec"), namespace)
    assert namespace["add"]("a") == ["a"]
    assert namespace["add"]("b") == ["b"]  # no longer shared between calls


def test_mutable_default_has_no_fix_on_one_line_function() -> None:
    doc = _doc("def f(x=[]): return x\n")
    [finding] = analyze(doc, codes={"SC303"})
    assert finding.fix is None


def test_length_as_boolean_fix_compares_with_zero() -> None:
    fixed, safety = _fix("has_items = len(cart)\nif has_items:\n    pay()\n", "SC203")
    assert fixed == "has_items = len(cart) > 0\nif has_items:\n    pay()\n"
    assert safety is Applicability.SAFE  # only tested for truth: `> 0` keeps every outcome
    _, safety = _fix("const hasRows = rows.length;\nif (hasRows) { draw(); }\n", "SC203", "js")
    assert safety is Applicability.UNSAFE  # `.length` of an arbitrary object may be a string


def test_length_used_as_a_number_is_not_a_boolean() -> None:
    doc = _doc("can_dlc = len(data)\nframe = struct.pack('<B', can_dlc)\nif can_dlc:\n    pass\n")
    assert analyze(doc, codes={"SC203"}) == []


def test_nan_fix_javascript_and_python_with_math_import() -> None:
    fixed, _ = _fix("if (x !== NaN) {}\n", "SC306", "js")
    assert fixed == "if (!Number.isNaN(x)) {}\n"
    fixed, _ = _fix("import math\nok = y == math.nan\n", "SC306")
    assert fixed == "import math\nok = math.isnan(y)\n"
    [finding] = analyze(_doc("ok = y == float('nan')\n"), codes={"SC306"})
    assert finding.fix is None  # no `import math` in the file: no fix that would not run


def test_typeof_fix_suggests_the_close_name() -> None:
    fixed, safety = _fix('if (typeof v === "nubmer") {}\n', "SC307", "js")
    assert fixed == 'if (typeof v === "number") {}\n'
    assert safety is Applicability.UNSAFE


def test_fix_document_applies_only_safe_fixes_in_passes() -> None:
    doc = _doc("""
        def f(x, tags=[]):
            has_x = len(x)
            if has_x and x is "a":
                return 1
                print("dead")
            return tags
        """)
    every = ReviewSettings(preview=True)  # SC203 is a preview rule
    findings = analyze(doc, every)
    outcome = fix_document(doc, findings, lambda d: analyze(d, every))
    assert outcome.source is not None
    text = outcome.source.decode()
    assert "has_x = len(x) > 0" in text and "dead" not in text
    assert "tags=[]" in text and 'x is "a"' in text  # unsafe: left for the user
    assert outcome.applied == 2
    assert {f.code for f in outcome.findings} == {"SC303", "SC305"}


def test_fix_document_refuses_files_with_syntax_errors() -> None:
    doc = _doc('if x is "a":\n    pass\ndef broken(:\n')
    outcome = fix_document(doc, analyze(doc), analyze)
    assert outcome.source is None and outcome.applied == 0
    assert outcome.note is not None and "syntax errors" in outcome.note


def test_fix_document_leaves_files_in_another_declared_encoding_alone() -> None:
    source = ('# -*- coding: koi8-r -*-\ndef f():\n'
              '    return "\u043f\u0440\u0438\u0432\u0435\u0442"\n    print(1)\n')
    doc = _doc(source)
    findings = analyze(doc)
    assert [f.code for f in findings] == ["SC301"]  # the safe fix exists...
    outcome = fix_document(doc, findings, analyze)
    assert outcome.source is None  # ...but writing UTF-8 into a koi8-r file would corrupt it
    assert outcome.note == "not fixed: the file declares the koi8-r encoding"
