"""Completion context on real code in nine languages: hole kind, scopes, imports, trimming,
related snippets, and bad input.

The fixture projects under tests/fixtures/context/<language>/ are small multi-file programs with a
cross-file call each. Every expectation below was checked by eye against the fixture source.
"""

from __future__ import annotations

import pytest

from analysis.context.builder import ContextBuilder, HoleKind, build_context
from analysis.documents.document import Document
from analysis.index.workspace_index import SymbolIndex
from analysis.scope.visible import visible_names
from analysis.settings import ContextSettings
from tests.analysis.context.context_cases import FIXTURES, document, load, place

INVOICE = "java/src/main/java/com/acme/billing/Invoice.java"


@pytest.fixture(scope="module")
def index() -> SymbolIndex:
    built = SymbolIndex()
    built.build([FIXTURES])
    return built


def builder(index: SymbolIndex | None, budget: int = 2048, share: float = 0.25) -> ContextBuilder:
    return ContextBuilder(index, ContextSettings(budget_tokens=budget, related_share=share))


# (file, cursor after, hole, scope names, imports, related (path, name), text in that snippet)
GOLDEN = [
    ("python/shop/cart.py", "return apply_discount(", HoleKind.ARGUMENTS, ["Cart", "net_total"],
     ["from __future__ import annotations", "import json",
      "from dataclasses import dataclass, field", "from decimal import Decimal",
      "from shop.pricing import PriceList, apply_discount, with_tax"],
     ("python/shop/pricing.py", "apply_discount"),
     'def apply_discount(amount: Decimal, percent: int) -> Decimal:\n    """Return `amount`'),
    ("javascript/src/invoice.js", "const amount = formatCurrency(", HoleKind.ARGUMENTS,
     ["Invoice", "render"],
     ['import { formatCurrency, padLeft } from "./format.js";', 'import fs from "node:fs";'],
     ("javascript/src/format.js", "formatCurrency"),
     "export function formatCurrency(cents, currency = DEFAULT_CURRENCY) { ... }"),
    ("typescript/src/route.ts", "total += distance(", HoleKind.ARGUMENTS, ["Route", "length"],
     ['import { distance, Point, Segment } from "./geometry";'],
     ("typescript/src/geometry.ts", "distance"),
     "/** Straight-line distance between two points. */\n"
     "export function distance(a: Point, b: Point): number { ... }"),
    ("tsx/src/App.tsx", "<Badge label={formatCount(", HoleKind.ARGUMENTS, ["Counter"],
     ['import React, { useState } from "react";', 'import { Badge } from "./Badge";',
      'import { formatCount } from "./format";'],
     ("tsx/src/format.ts", "formatCount"),
     "export function formatCount(value: number): string { ... }"),
    ("go/main.go", "stock.Reorder(", HoleKind.ARGUMENTS, ["main"],
     ['import ( "fmt" "os" "example.com/inventory/stock" )'],
     ("go/stock/stock.go", "Reorder"),
     "// Reorder reports whether an item should be reordered at the given threshold.\n"
     "func Reorder(item Item, threshold int) (bool, error) { ... }"),
    ("rust/src/main.rs", ".map(|s| area(", HoleKind.ARGUMENTS, ["Inventory", "total_area"],
     ["mod geometry;", "use std::collections::HashMap;", "use crate::geometry::{area, Shape};"],
     ("rust/src/geometry.rs", "area"),
     "/// Area of a shape in square units.\npub fn area(shape: &Shape) -> f64 { ... }"),
    (INVOICE, "calculator.computeTax(", HoleKind.ARGUMENTS, ["Invoice", "total"],
     ["import java.math.BigDecimal;", "import java.util.ArrayList;", "import java.util.List;"],
     ("java/src/main/java/com/acme/billing/TaxCalculator.java", "computeTax"),
     "public BigDecimal computeTax(BigDecimal net) { ... }"),
    ("c/src/main.c", "ringbuf_push(", HoleKind.ARGUMENTS, ["main"],
     ["#include <stdio.h>", "#include <stdlib.h>", '#include "ringbuf.h"'],
     ("c/src/ringbuf.h", "ringbuf_push"),
     "/* Append a value; returns false when the buffer is full. */\n"
     "bool ringbuf_push(struct ringbuf *rb, int value);"),
    ("cpp/src/main.cpp", "print(linalg::transpose(", HoleKind.ARGUMENTS, ["main"],
     ["#include <iostream>", '#include "matrix.hpp"', "using linalg::Matrix;"],
     ("cpp/include/matrix.hpp", "transpose"),
     "/// The transpose of a matrix (a new matrix).\nMatrix transpose(const Matrix& m);"),
]


@pytest.mark.parametrize(("file", "anchor", "hole", "scopes", "imports", "related", "text"),
                         GOLDEN, ids=[g[0].split("/")[0] for g in GOLDEN])
def test_golden_cross_file_call(index, file, anchor, hole, scopes, imports, related, text):
    doc = load(file)
    ctx = builder(index).build(doc, place(doc, anchor))
    assert ctx.hole.kind == hole
    assert [s.name for s in ctx.hole.scopes] == scopes
    assert list(ctx.imports) == imports
    snippets = {(s.path, s.name): s for s in ctx.related}
    assert related in snippets, sorted(snippets)
    assert text in snippets[related].text
    assert all(s.path != ctx.path for s in ctx.related)  # the file itself is never a snippet
    # The whole small file fits: prefix + suffix is the file.
    assert ctx.prefix + ctx.suffix == doc.text


def test_related_resolved_through_imports_beats_same_name(index, tmp_path):
    # Two definitions of `apply_discount`: the one the import points at wins.
    other = tmp_path / "legacy"
    other.mkdir()
    (other / "pricing_old.py").write_text("def apply_discount(x):\n    return x\n")
    index.index_paths([other / "pricing_old.py"])
    try:
        doc = load("python/shop/cart.py")
        ctx = builder(index).build(doc, place(doc, "return apply_discount("))
        chosen = [s for s in ctx.related if s.name == "apply_discount"]
        assert [s.path for s in chosen] == ["python/shop/pricing.py"]
    finally:
        index.remove(other)


# (file, cursor after, text typed there ("|" = cursor), hole, scope names)
HOLES = [
    ("python/shop/cart.py", "# Tax applies", "", HoleKind.COMMENT, ["Cart", "total"]),
    ("python/shop/cart.py", '{"li', "", HoleKind.STRING, ["Cart", "to_json"]),
    ("python/shop/cart.py", "        payload = ", "", HoleKind.EXPRESSION, ["Cart", "to_json"]),
    ("python/shop/cart.py", "return json.dumps(payload, sort_keys=True)",
     "\n\n    def count(self) -> int:\n        ", HoleKind.BODY, ["Cart", "count"]),
    ("python/shop/cart.py", "            Decimal(0),\n        )", "\n        ",
     HoleKind.STATEMENT, ["Cart", "net_total"]),
    ("python/shop/cart.py", "    def total(self) -> Decimal:",
     "\n        if not self.lines:\n            ", HoleKind.BLOCK, ["Cart", "total"]),
    ("javascript/src/invoice.js", "// The total", "", HoleKind.COMMENT, ["Invoice", "render"]),
    ("javascript/src/invoice.js", 'this.render(), "utf', "", HoleKind.STRING, ["Invoice", "save"]),
    ("javascript/src/invoice.js", "  save(path) {", "\n    if (!path) {|}", HoleKind.BLOCK,
     ["Invoice", "save"]),
    ("javascript/src/invoice.js", '    return rows.join("\\n");\n  }',
     "\n\n  isEmpty() {\n    |\n  }", HoleKind.BODY, ["Invoice", "isEmpty"]),
    ("javascript/src/invoice.js", "    this.lines = lines;", "\n    ", HoleKind.STATEMENT,
     ["Invoice", "constructor"]),
    ("javascript/src/invoice.js", "const amount = ", "", HoleKind.EXPRESSION,
     ["Invoice", "render"]),
    ("typescript/src/route.ts", "  describe(): string {",
     "\n    if (this.stops.length === 0) {\n      |\n    }", HoleKind.BLOCK,
     ["Route", "describe"]),
    ("typescript/src/route.ts", "    return this;\n  }", "\n\n  clear(): void {\n    |\n  }",
     HoleKind.BODY, ["Route", "clear"]),
    ("typescript/src/route.ts", "`${this.name}: ", "", HoleKind.STRING, ["Route", "describe"]),
    ("tsx/src/App.tsx", "const tone = ", "", HoleKind.EXPRESSION, ["Counter"]),
    ("tsx/src/App.tsx", "export default function App() {", "\n  ", HoleKind.STATEMENT, ["App"]),
    ("tsx/src/App.tsx", 'className="coun', "", HoleKind.STRING, ["Counter"]),
    ("tsx/src/App.tsx", "<button onClick={() => setCount(", "", HoleKind.ARGUMENTS, ["Counter"]),
    ("go/main.go", "// Only items", "", HoleKind.COMMENT, ["main"]),
    ("go/main.go", "r.lines = append(r.lines, fmt.Sprintf(format, args...))\n}",
     "\n\nfunc (r *report) empty() bool {\n\t|\n}", HoleKind.BODY, ["empty"]),
    ("go/main.go", "\tvar r report", "\n\t", HoleKind.STATEMENT, ["main"]),
    ("go/main.go", '"reorder %s', "", HoleKind.STRING, ["main"]),
    ("rust/src/main.rs", "Inventory { shapes: HashMap::new() }\n    }",
     "\n\n    fn is_empty(&self) -> bool {\n        |\n    }", HoleKind.BODY,
     ["Inventory", "is_empty"]),
    ("rust/src/main.rs", "// Print the sum", "", HoleKind.COMMENT, ["main"]),
    ("rust/src/main.rs", "let mut inventory = ", "", HoleKind.EXPRESSION, ["main"]),
    ("rust/src/main.rs", '"total area', "", HoleKind.STRING, ["main"]),
    (INVOICE, "    public BigDecimal net() {\n",
     "        if (amounts.isEmpty()) {\n            |\n        }\n", HoleKind.BLOCK,
     ["Invoice", "net"]),
    (INVOICE, "        return sum;\n    }", "\n\n    public int count() {\n        |\n    }",
     HoleKind.BODY, ["Invoice", "count"]),
    (INVOICE, '"negative', "", HoleKind.STRING, ["Invoice", "addAmount"]),
    (INVOICE, "// Tax is computed", "", HoleKind.COMMENT, ["Invoice", "total"]),
    ("c/src/main.c", "/* Ignore values", "", HoleKind.COMMENT, ["main"]),
    ("c/src/main.c", "    return total;\n}",
     "\n\nstatic int is_full(struct ringbuf *rb) {\n    |\n}", HoleKind.BODY, ["is_full"]),
    ("c/src/main.c", "    ringbuf_init(&rb);", "\n    ", HoleKind.STATEMENT, ["main"]),
    ("c/src/main.c", '"sum: ', "", HoleKind.STRING, ["main"]),
    ("cpp/src/main.cpp", "m.at(0, 2) = ", "", HoleKind.EXPRESSION, ["main"]),
    ("cpp/src/main.cpp", "// Show the", "", HoleKind.COMMENT, ["main"]),
    ("cpp/src/main.cpp", "        std::cout << '\\n';\n    }\n}",
     "\n\nint count(const Matrix& m) {\n    |\n}", HoleKind.BODY, ["(anonymous)", "count"]),
    ("cpp/src/main.cpp", "    for (std::size_t r = 0; r < m.rows(); ++r) {",
     "\n        if (r == 0) {\n            |\n        }", HoleKind.BLOCK,
     ["(anonymous)", "print"]),
]


@pytest.mark.parametrize(("file", "anchor", "typed", "hole", "scopes"), HOLES,
                         ids=[f"{h[0].split('/')[0]}-{h[3]}-{i}" for i, h in enumerate(HOLES)])
def test_hole_kind_and_scopes(file, anchor, typed, hole, scopes):
    doc = load(file)
    offset = place(doc, anchor, typed)
    ctx = builder(None).build(doc, offset)
    assert (ctx.hole.kind, [s.name for s in ctx.hole.scopes]) == (hole, scopes)


def test_scope_kinds_and_signatures():
    doc = load("python/shop/cart.py")
    ctx = builder(None).build(doc, place(doc, "return apply_discount("))
    assert [(s.kind, s.signature, s.line) for s in ctx.hole.scopes] == [
        ("class", "class Cart:", 18),
        ("method", "def net_total(self) -> Decimal:", 29),
    ]
    doc = load("rust/src/main.rs")
    ctx = builder(None).build(doc, place(doc, ".map(|s| area("))
    assert [(s.kind, s.name) for s in ctx.hole.scopes] == [("impl", "Inventory"),
                                                      ("method", "total_area")]


# (file, cursor after, first line of the prefix, last line of the suffix) at 100 tokens: each
# prefix starts a statement and each suffix ends one (checked by eye against the fixtures).
TRIMMED = [
    ("python/shop/cart.py", "return json.dumps(",
     "    def total(self) -> Decimal:", "payload, sort_keys=True)"),
    ("javascript/src/invoice.js", "rows.push(",
     "      const amount = formatCurrency(line.cents * line.quantity);",
     "`Total ${padLeft(formatCurrency(this.totalCents()), COLUMN_WIDTH)}`);"),
    ("typescript/src/route.ts", "total += distance(",
     "      out.push([this.stops[i - 1], this.stops[i]]);", "  }"),
    ("tsx/src/App.tsx", "<Badge label={formatCount(",
     "type Props = { initial: number };", "count)} tone={tone} />"),
    ("go/main.go", 'r.add("reorder', "\tfor _, item := range items {", "\t}"),
    ("rust/src/main.rs", 'inventory.insert("disc"',
     "        self.shapes.values().map(|s| area(s)).sum()", ", Shape::Circle { radius: 1.5 });"),
    (INVOICE, "sum = sum.add(", "        amounts.add(amount);", "    }"),
    ("c/src/main.c", "ringbuf_push(&rb, ", "int main(int argc, char **argv) {", "}"),
    ("cpp/src/main.cpp", "print(linalg::transpose(",
     "            std::cout << m.at(r, c) << ' ';", "}"),
]


@pytest.mark.parametrize(("file", "anchor", "first", "last"), TRIMMED,
                         ids=[t[0].split("/")[0] for t in TRIMMED])
def test_trimmed_at_statement_boundaries(index, file, anchor, first, last):
    doc = load(file)
    offset = place(doc, anchor)
    ctx = builder(index, budget=100, share=0).build(doc, offset)
    assert ctx.prefix.split("\n")[0] == first
    assert ctx.suffix.rstrip("\n").split("\n")[-1] == last
    src = doc.source
    assert ctx.prefix_start == 0 or src[ctx.prefix_start - 1:ctx.prefix_start] == b"\n"
    assert ctx.suffix_end == len(src) or src[ctx.suffix_end - 1:ctx.suffix_end] == b"\n"
    assert src[ctx.prefix_start:offset].decode() == ctx.prefix
    assert src[offset:ctx.suffix_end].decode() == ctx.suffix
    assert ctx.tokens.prefix + ctx.tokens.suffix <= 100


def test_budget_is_respected_on_a_long_file():
    text = "".join(f"def f{i}(x):\n    return x + {i}\n\n\n" for i in range(2000))
    doc = document(text, "long.py")
    offset = place(doc, "def f1000(x):\n    return ")
    ctx = builder(None, budget=512).build(doc, offset)
    assert ctx.tokens.prefix + ctx.tokens.suffix <= 512
    assert len(ctx.prefix) > 1000 and len(ctx.suffix) > 200
    assert ctx.prefix.startswith("def f")  # a statement start
    assert ctx.suffix.endswith("\n") and ctx.suffix.rstrip().split("\n")[-1].startswith("    ")


def test_never_inside_a_multibyte_character():
    # One very long line of 2-, 3- and 4-byte characters: the cut has to fall inside the line.
    line = "s = '" + "é€😀" * 3000 + "'\n"
    doc = document(line * 2, "wide.py")
    for offset in (len(line.encode()) + 5000, len(line.encode()) + 5001,
                   len(line.encode()) + 5002, len(line.encode()) + 5003):
        ctx = builder(None, budget=64).build(doc, offset)
        src = doc.source
        assert src[ctx.prefix_start:ctx.offset].decode("utf-8") == ctx.prefix  # strict decode
        assert src[ctx.offset:ctx.suffix_end].decode("utf-8") == ctx.suffix
        assert "\ufffd" not in ctx.prefix + ctx.suffix


def test_prefix_start_sticks_while_typing():
    text = "".join(f"value_{i} = compute({i})\n" for i in range(3000))
    doc = document(text, "typing.py")
    build = builder(None, budget=400)
    offset = place(doc, "value_1500 = compute(1500)\n")
    starts = []
    for ch in "result = value_1":
        doc.replace_bytes(offset, offset, ch, doc.version + 1)
        offset += 1
        starts.append(build.build(doc, offset).prefix_start)
    assert len(set(starts)) == 1


def test_results_are_cached_per_version_and_offset(index):
    doc = load("python/shop/cart.py")
    build = builder(index)
    offset = place(doc, "return apply_discount(")
    first = build.build(doc, offset)
    assert build.build(doc, offset) is first
    doc.replace_bytes(offset, offset, "g", doc.version + 1)
    assert build.build(doc, offset + 1) is not first


def test_indentation_units():
    expected = {"go/main.go": "\t", "javascript/src/invoice.js": "  ",
                "python/shop/cart.py": "    ", "c/src/main.c": "    ", INVOICE: "    "}
    for file, unit in expected.items():
        doc = load(file)
        assert builder(None).build(doc, len(doc.source) // 2).hole.indent_unit == unit, file


# ---------------------------------------------------------------------- bad input


def test_cursor_past_the_end_is_clamped(index):
    doc = load("python/shop/cart.py")
    ctx = builder(index).build(doc, len(doc.source) + 10_000)
    assert ctx.offset == len(doc.source) and ctx.suffix == ""
    ctx = builder(index).build_at(doc, 10_000, 10_000)
    assert ctx.offset == len(doc.source)
    ctx = builder(index).build(doc, -5)
    assert ctx.offset == 0 and ctx.prefix == ""


def test_empty_file(index):
    ctx = builder(index).build(document("", "empty.py", FIXTURES / "python"), 0)
    assert (ctx.prefix, ctx.suffix, ctx.hole.kind, ctx.hole.scopes, ctx.related) == (
        "", "", HoleKind.STATEMENT, (), ())


def test_parse_errors_everywhere(index):
    garbage = ")(}{][ def class :: <<>> 'unterminated \n" * 200 + "return (((\n" * 50
    for name in ("broken.py", "broken.ts", "broken.go", "broken.rs", "broken.java",
                 "broken.c", "broken.cpp", "broken.js", "broken.tsx"):
        doc = document(garbage, name, FIXTURES)
        assert doc.has_errors()
        for offset in (0, 1, len(doc.source) // 3, len(doc.source) - 1, len(doc.source)):
            ctx = builder(index).build(doc, offset)
            assert ctx.prefix + ctx.suffix in doc.text


def test_unknown_language_gives_plain_text_context(index):
    doc = Document("file:///tmp/notes.xyz", "first line\nsecond line\n", None)
    ctx = builder(index).build(doc, 12)
    assert ctx.language == "plaintext" and ctx.line_comment == "#"
    assert (ctx.prefix, ctx.suffix) == ("first line\ns", "econd line\n")
    assert ctx.hole.scopes == () and ctx.imports == ()


def test_untitled_documents_and_odd_budgets(index):
    doc = Document("untitled:Untitled-1", "x = 1\n", "python")
    assert build_context(doc, 3, index).prefix == "x ="
    for budget in (0, 1, 5):
        ctx = builder(index, budget=budget).build(doc, 3)
        assert ctx.prefix in "x =" and ctx.suffix in " 1\n"


def test_invalid_utf8_is_tolerated(index):
    doc = Document.from_bytes("file:///tmp/bad.py", b"x = '\xff\xfe'\ny = 2\n")
    ctx = builder(index).build(doc, 8)
    assert "\ufffd" in ctx.prefix


# ---------------------------------------------------------------------- visible names

VISIBLE = [
    ("x.py", "import os\nfrom m import y as z\nTOP = 1\n\n\ndef f(a, b: int = 1, *args, **kw):\n"
     "    x, y = 1, 2\n    for i in z:\n        pass\n    with open(p) as fh:\n        pass\n"
     "    def inner(u):\n        w = 1\n    |\n\n\nclass K:\n    def m(self):\n        pass\n",
     {"os", "z", "TOP", "f", "a", "b", "args", "kw", "x", "y", "i", "fh", "inner", "K"},
     {"u", "w", "m", "int", "open", "p"}),
    ("x.js", 'import { a1 } from "./m";\nfunction f(a, {b, c}, d = 1, ...e) {\n'
     "  const [x, y] = z;\n  let w = 1;\n  for (const i of k) { | }\n}\n"
     "const h = (p) => p;\nclass C { m() {} }\n",
     {"a1", "f", "a", "b", "c", "d", "e", "x", "y", "w", "i", "h", "C"}, {"z", "k", "p", "m"}),
    ("x.go", 'package p\n\nimport "fmt"\n\nfunc f(a, b int) {\n\tx, y := 1, 2\n\tvar w = 3\n'
     "\tfor i, v := range z { | }\n}\n\ntype T struct{}\n",
     {"fmt", "f", "a", "b", "x", "y", "w", "i", "v", "T"}, {"z", "int"}),
    ("x.rs", "use std::fmt;\nfn f(a: i32, (b, c): (i32, i32)) {\n    let (x, y) = z;\n"
     "    for i in k { | }\n}\nstruct S;\n",
     {"fmt", "f", "a", "b", "c", "x", "y", "i", "S"}, {"z", "k", "i32"}),
    ("x.java", "import java.util.List;\nclass A {\n  int field;\n  void f(int a, String b) {\n"
     "    int x = 1, y;\n    for (int i : k) { | }\n  }\n  void g() {}\n}\n",
     {"List", "A", "field", "f", "a", "b", "x", "y", "i", "g"}, {"k", "String"}),
    ("x.c", "#include <stdio.h>\nstatic int counter;\nint f(int a, char *b) {\n"
     "    int x = 1, *y;\n    for (int i = 0;;) { | }\n}\nstruct S { int q; };\n",
     {"counter", "f", "a", "b", "x", "y", "i", "S"}, {"q"}),
]


@pytest.mark.parametrize(("name", "code", "present", "absent"), VISIBLE,
                         ids=[v[0] for v in VISIBLE])
def test_visible_names(name, code, present, absent):
    offset = code.index("|")
    doc = document(code.replace("|", "", 1), name)
    ctx = build_context(doc, offset)
    names = visible_names(doc, ctx.import_names, ctx.hole.scopes)
    assert present <= names, present - names
    assert not (absent & names), absent & names
