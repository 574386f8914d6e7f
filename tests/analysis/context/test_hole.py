"""The one cursor model: the `Hole`'s line facts, its masking, and the shared binding test."""

from __future__ import annotations

import pytest

from analysis.context.builder import build_context
from analysis.context.hole import HoleKind
from analysis.documents.document import Document
from analysis.scope.names import names_in_span
from tests.analysis.context.context_cases import document

CURSOR = "█"


def hole_at(source: str, name: str):
    offset = len(source[: source.index(CURSOR)].encode())
    return build_context(document(source.replace(CURSOR, ""), name), offset).hole


def test_line_facts():
    hole = hole_at("def f(a):\n    x = g(a, █b)  # c\n\n    y = 1\n    z = 2\n    w = 3\n",
                   "facts.py")
    assert hole.kind is HoleKind.ARGUMENTS
    assert (hole.line_before, hole.line_rest) == ("    x = g(a, ", "b)  # c")
    assert hole.suffix_lines == ("y = 1", "z = 2", "w = 3")  # blank lines skipped, three kept
    assert (hole.indent, hole.base_indent, hole.indent_unit) == ("    ", 4, "    ")
    assert not hole.newline_follows and hole.code_before and not hole.in_literal
    assert [s.name for s in hole.scopes] == ["f"]


def test_python_blank_line_at_column_zero_belongs_to_the_block_above():
    # The code on it would be indented like the statement above: the hole is inside `f`.
    hole = hole_at("def f(a):\n    if a and \\\n       a > 1:\n█\n", "col0.py")
    assert (hole.kind, hole.base_indent) == (HoleKind.BLOCK, 8)  # the header's `if`, not `a > 1`
    assert [s.name for s in hole.scopes] == ["f"]
    top = hole_at("def f(a):\n    return a\n\n\nx = 1\n█\n", "top.py")
    assert (top.kind, top.base_indent, top.scopes) == (HoleKind.STATEMENT, 0, ())


def test_text_facts_are_masked_like_the_prompt():
    secret = "ghp_" + "a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8"
    hole = hole_at(f'TOKEN = "{secret}"█\nheaders = {{"Authorization": "token {secret}"}}\n',
                   "settings.py")
    assert secret[:12] not in hole.line_before + "".join(hole.suffix_lines)
    assert len(hole.line_before) == len(f'TOKEN = "{secret}"')  # masking keeps lengths


def test_indent_unit_ignores_continuation_alignment():
    source = ("def f(parser):\n    parser.add(\n            'a',\n            help='x')\n"
              "    parser.add(\n            'b',\n            help='y')\n    if parser:\n"
              "        █\n")
    assert hole_at(source, "unit.py").indent_unit == "    "


BINDINGS = [  # (language, code, the identifiers that bind, those that are uses)
    ("python", "def f(a, b: int = y, *args, **kw):\n    x, (p, q) = v\n    import os.path as op\n"
     "    for i in z:\n        pass\n    with o as h:\n        g(k=w)\n    t += 1\n",
     {"f", "a", "b", "args", "kw", "x", "p", "q", "os", "path", "op", "i", "h"},
     {"y", "v", "z", "o", "g", "w", "t"}),
    ("javascript", "import d, { a as b } from 'm';\nfunction f(c, {e}, g = 1, ...r) {\n"
     "  const [x, y] = z;\n  let { w: ww } = q;\n  for (const i of k) { u(i); }\n}\n",
     {"d", "b", "f", "c", "g", "r", "x", "y", "ww", "i"}, {"z", "q", "k", "u"}),
    ("go", "package p\nfunc f(a, b int) int { x, y := a, b; for i := range z { _ = i }; "
     "return x + y }\n", {"f", "a", "b", "x", "y", "i"}, {"z"}),
    ("rust", "fn f(a: i32, (b, c): (i32, i32)) -> i32 { let (x, mut y) = z; x + y + v.len() }\n",
     {"f", "a", "b", "c", "x", "y"}, {"z", "v"}),
]


@pytest.mark.parametrize(("language", "code", "binds", "uses"), BINDINGS,
                         ids=[b[0] for b in BINDINGS])
def test_one_binding_test_for_every_grammar(language, code, binds, uses):
    doc = Document(f"file:///b.{language}", code, language)
    assert doc.tree is not None and not doc.has_errors()
    found = names_in_span(doc.tree.root_node, 0, len(doc.source))
    defined = {u.name for u in found if u.defines}
    assert binds <= defined, binds - defined
    assert uses <= {u.name for u in found if not u.defines}
    assert not uses & defined, uses & defined  # a use is never taken for a binding
