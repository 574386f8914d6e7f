"""`analyze_report` within its time budget, and deep documents without recursion or quadratic work.

A stopped analysis keeps what it found and says why; pathological nesting (100,000 levels in
Python and JavaScript) is analyzed within the budget, with one reason naming the depth. The deep
parses run in a subprocess: a regression to tree-sitter's recursive `str(node)` or to an
unguarded query would segfault or hang there, not kill pytest. The tree walks of
`analysis.documents.tree_walks` are checked against tree-sitter's own answers.
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
import time
from pathlib import Path

import pytest

import analysis.review.checks as registry
from analysis.budget import Budget
from analysis.documents.document import Document
from analysis.documents.tree_walks import ancestors, deeper_than, depth_over, sexp
from analysis.review.checks import analyze, analyze_report
from analysis.settings import ReviewSettings

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures" / "checks"
DEPTH = 100_000

# (language id, source) of the pathological inputs from the issues, 100,000 levels each.
DEEP = {
    "python-terms": ("python", "x = " + " + ".join(["1"] * DEPTH) + "\n"),
    "python-lists": ("python", "x = " + "[" * DEPTH + "]" * DEPTH + "\n"),
    "python-divisions": ("python", "def f(a):\n    return " + " / ".join(["a"] * DEPTH) + "\n"),
    "js-arrows": ("javascript", "const f = () => {\n" + "const g = () => {\n" * DEPTH
                  + "};\n" * DEPTH + "};\n"),
    "js-returns": ("javascript", "const f = " + "() => { return " * DEPTH + "1" + "; }" * DEPTH
                   + ";\n"),
    "js-terms": ("javascript", "x = " + " + ".join(["1"] * DEPTH) + ";\n"),
}
NESTING = "nesting deeper than 1,000 levels; code below that depth was not checked"


class CheckLimit(Budget):
    """A budget that runs out after a number of clock reads (a deterministic deadline)."""

    def __init__(self, reads: int) -> None:
        super().__init__(60.0)
        self.reads = reads

    def expired(self) -> bool:
        self.reads -= 1
        return self.stopped or self.reads < 0


def _fixture_mix(copies: int) -> Document:
    """Every positive Python fixture, `copies` times over: many findings, many chunks."""
    parts = [p.read_text("utf-8") for p in sorted(FIXTURES.glob("SC*/positive.py"))]
    return Document("file:///mix.py", "\n\n".join(parts * copies) + "\n", "python")


def test_a_stopped_analysis_keeps_what_it_found_and_says_why() -> None:
    doc = _fixture_mix(1)
    full = analyze_report(doc, budget=Budget(None))
    assert full.truncated is None and len(full.findings) > 20
    cut = analyze_report(doc, budget=CheckLimit(reads=3))
    assert cut.truncated == ("analysis stopped at its time budget of 60 s (review.timeBudget); "
                             "findings after that point are missing")
    assert 0 < len(cut.findings) < len(full.findings)
    assert set(cut.findings) <= set(full.findings)
    assert cut.findings == sorted(cut.findings, key=lambda f: (f.range.start, f.code,
                                                                 f.range.end))
    assert analyze(doc) == full.findings  # the compatible entry point, within its budget


def test_the_budget_setting_bounds_the_time_of_a_slow_file() -> None:
    # Wide and shallow: 3,000 lines of 400 terms; unbounded it takes several seconds.
    doc = Document("file:///wide.py", ("x = " + " + ".join(["1"] * 400) + "\n") * 3000)
    started = time.monotonic()
    report = analyze_report(doc, ReviewSettings(time_budget=0.3))
    elapsed = time.monotonic() - started
    assert report.truncated is not None
    assert report.truncated.startswith("analysis stopped at its time budget of 0.3 s")
    assert elapsed < 1.5, elapsed  # the budget plus one chunk of the query, generously


def test_a_stop_from_outside_ends_the_analysis() -> None:
    budget = Budget(60)
    budget.stop()
    report = analyze_report(_fixture_mix(1), budget=budget)
    assert report.findings == []
    assert report.truncated == "analysis stopped: the result was no longer needed"


@pytest.mark.parametrize("wrapped", [False, True], ids=["top-level", "in-one-class"])
def test_chunked_queries_find_what_one_pass_finds(monkeypatch: pytest.MonkeyPatch,
                                                  wrapped: bool) -> None:
    doc = _fixture_mix(10)
    if wrapped:  # one node holds everything: the cuts fall inside it
        body = "".join(f"    {line}" for line in doc.text.splitlines(keepends=True))
        doc = Document("file:///wrapped.py", "class Outer:\n" + body, "python")
    assert not doc.has_errors()
    monkeypatch.setattr(registry, "CHUNK_BYTES", 2_000)
    assert len(registry._spans(doc.tree.root_node, 0, len(doc.source))) > 10
    chunked = analyze(doc, budget=Budget(None))
    monkeypatch.setattr(registry, "CHUNK_BYTES", 10**9)
    assert len(registry._spans(doc.tree.root_node, 0, len(doc.source))) == 1
    whole = analyze(doc, budget=Budget(None))
    assert len(whole) > 100 and chunked == whole


_DEEP_SCRIPT = """
import json, sys, time
from analysis.review.checks import analyze_report
from analysis.documents.document import Document
from analysis.documents.tree_walks import sexp
language, source = json.load(sys.stdin)
started = time.monotonic()
doc = Document("file:///deep", source, language)
report = analyze_report(doc)
tree, cut = sexp(doc.tree.root_node, 10_000)
print(json.dumps({"seconds": time.monotonic() - started, "truncated": report.truncated,
                  "findings": [f.code for f in report.findings], "sexp": len(tree), "cut": cut}))
"""


@pytest.mark.parametrize("name", sorted(DEEP))
def test_deep_nesting_is_analyzed_within_the_budget(name: str) -> None:
    language, source = DEEP[name]
    run = subprocess.run([sys.executable, "-c", _DEEP_SCRIPT], input=json.dumps([language, source]),
                         capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert run.returncode == 0, run.stderr[-2000:]  # no RecursionError, no segfault
    got = json.loads(run.stdout)
    assert got["seconds"] < 5.0, got  # parse + rules; the budget alone is 2 s
    assert got["truncated"] is not None and got["truncated"].startswith(NESTING)
    assert got["cut"] is True and got["sexp"] == 10_000


def test_findings_above_the_nesting_limit_are_still_reported() -> None:
    # An unreachable statement at the top, then 100,000 levels of nesting below it.
    source = ("function f() {\n  return 1;\n  g();\n}\n"
              "const x = " + "[" * DEPTH + "]" * DEPTH + ";\n")
    report = analyze_report(Document("file:///deep.js", source, "javascript"))
    assert [(f.code, f.location.line) for f in report.findings] == [("SC301", 3)]
    assert report.truncated == NESTING


def test_sexp_is_tree_sitters_string_for_ordinary_files() -> None:
    for path in sorted(FIXTURES.glob("SC*/*.*")):
        doc = Document(path.as_uri(), path.read_text("utf-8"), path=str(path))
        if doc.spec is None:
            continue  # the rules' snapshots (.snap) and SC202's go.mod are not code
        assert doc.tree is not None
        assert sexp(doc.tree.root_node, 10**9) == (str(doc.tree.root_node), False), path


def test_sexp_is_cut_at_its_bound() -> None:
    doc = Document("file:///t.py", "x = [1, 2, 3]\n" * 1000)
    whole = str(doc.tree.root_node)
    text, cut = sexp(doc.tree.root_node, 500)
    assert cut is True and text == whole[:500]


def test_ancestors_and_depth_agree_with_tree_sitter() -> None:
    doc = _fixture_mix(1)
    root = doc.tree.root_node
    rng = random.Random(7)
    for _ in range(200):
        offset = rng.randrange(len(doc.source))
        node = root.descendant_for_byte_range(offset, offset + 1)
        expected = []
        parent = node.parent
        while parent is not None:
            expected.append(parent.id)
            parent = parent.parent
        assert [a.id for a in ancestors(node, root)] == expected
        assert depth_over(root, node, len(expected)) is False
        assert depth_over(root, node, len(expected) - 1) is bool(expected)
    deepest = _max_depth(root)
    assert deeper_than(root, deepest - 1) is True
    assert deeper_than(root, deepest) is False


def _max_depth(root) -> int:
    """The tree's depth by a full TreeCursor walk (the reference for `deeper_than`)."""
    cursor, depth, best = root.walk(), 0, 0
    while True:
        if cursor.goto_first_child():
            depth += 1
            best = max(best, depth)
            continue
        while not cursor.goto_next_sibling():
            if not cursor.goto_parent():
                return best
            depth -= 1


def test_deep_scopes_and_names_need_no_recursion() -> None:
    from analysis.refactor.extract_function import Refusal, extract_function
    from analysis.scope.names import names_in_span
    from analysis.scope.python_scope import scope_uses

    source = "y = 1\nf = " + "lambda: " * 5000 + "y\nprint(f)\n"
    doc = Document("file:///lambdas.py", source, "python")
    uses = scope_uses(doc.tree.root_node.named_children)
    assert [(u.name, u.kind) for u in uses] == [("y", "store"), ("f", "store"), ("y", "load"),
                                                ("print", "load"), ("f", "load")]
    inner = source.index("y\n", 10)
    assert [(u.name, u.defines) for u in names_in_span(doc.tree.root_node, inner, inner + 1)] \
        == [("y", False)]
    start = source.index("f = ")
    result = extract_function(doc, start, source.index("\nprint"))
    assert not isinstance(result, Refusal), result
    assert (result.params, result.returns) == ((), ("f",))  # `y` is a module global


def test_deeply_nested_rust_use_lists_need_no_recursion() -> None:
    from analysis.scope.imports import extract_imports

    flat = Document("file:///a.rs", "use t::{u as v, w::{x, y as yy}};\n", "rust")
    assert [(r.names, r.aliases) for r in extract_imports(flat)] == [
        (("u", "x", "y"), ("v", "x", "yy"))]
    deep = "use x::" + "{y::" * 5000 + "z" + "}" * 5000 + ";\n"
    refs = extract_imports(Document("file:///b.rs", deep, "rust"))
    assert [r.names for r in refs] == [("z",)]
