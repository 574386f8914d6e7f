"""Safe means behaviour-preserving, proven by execution: every safe fix runs before and after.

Each case is a small program with a safe fix to make and calls to make. The program runs as
written, then `fix_document` (what `review --fix` does) applies every safe fix, and the fixed
program runs again: the calls' results (values or the exception raised) must be equal. Python
runs in-process; JavaScript and TypeScript run under `node` (TypeScript is transpiled with the
`typescript` package from editors/vscode/node_modules, the compiler the extension is built with).
A census test makes sure every rule that declares a safe fix has a case here.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import textwrap
from dataclasses import dataclass
from pathlib import Path

import pytest

from analysis.documents.document import Document
from analysis.review.checks import all_rules, analyze
from analysis.review.findings import Applicability
from analysis.review.fixing import fix_document
from analysis.settings import ReviewSettings

ROOT = Path(__file__).resolve().parents[4]
EVERY_RULE = ReviewSettings(preview=True)  # preview rules' safe fixes are proven too
TYPESCRIPT = ROOT / "editors" / "vscode" / "node_modules" / "typescript"


@dataclass(frozen=True)
class Case:
    """A program, the calls whose results must not change, and the codes it must fix."""

    name: str
    ext: str
    source: str
    calls: tuple[str, ...]
    fixes: frozenset[str]


def _case(name: str, ext: str, source: str, calls: tuple[str, ...], *codes: str) -> Case:
    return Case(name, ext, textwrap.dedent(source).lstrip("\n"), calls, frozenset(codes))


PY_CASES = [
    _case("py-dead-after-return", "py", """
        def classify(x):
            if x > 0:
                return "pos"
                print("never")
            elif x == 0:
                return "zero"
            return "neg"
        """, ("classify(3)", "classify(0)", "classify(-2)"), "SC301"),
    _case("py-dead-after-raise-break-continue", "py", """
        def first_even(xs):
            for x in xs:
                if x % 2:
                    continue
                    print("odd")
                return x
            raise LookupError("none")
            xs.clear()

        def until_negative(xs):
            out = []
            for x in xs:
                if x < 0:
                    break
                    out.append("never")
                out.append(x)
            return out
        """, ("first_even([1, 3, 4])", "first_even([1])", "until_negative([1, 2, -1, 3])"),
        "SC301"),
    _case("py-length-tested-for-truth", "py", """
        def describe(cart):
            has_items = len(cart)
            if not has_items:
                return "empty"
            if has_items and cart[0]:
                return "starts with " + str(cart[0])
            return "starts falsy"
        """, ("describe([])", "describe([5, 6])", "describe([0])", "describe('ab')"), "SC203"),
]

JS_SIGN = """
    function sign(x) {
      if (x >= 0) return 1;
      else return -1;
    }
    function area(r) {
      return Math.PI * r * r;
      console.log("computed");
    }
    function pick(kind) {
      switch (kind) {
        case "a":
          return 1;
          kind = "b";
        default:
          return 2;
      }
    }
    """
TS_SIGN = """
    function sign(x: number): number {
      if (x >= 0) return 1;
      else return -1;
    }
    function area(r: number): number {
      return Math.PI * r * r;
      console.log("computed");
    }
    function clamp(v: number, hi: number): number {
      for (;;) {
        if (v > hi) {
          return hi;
          v = 0;
        }
        break;
        v = -1;
      }
      return v;
    }
    """
JS_CASES = [
    _case("js-sign-else-kept", "js", JS_SIGN,
          ("sign(5)", "sign(-5)", "sign(0)", "area(2)", "pick('a')", "pick('z')"), "SC301"),
    _case("ts-sign-else-kept", "ts", TS_SIGN,
          ("sign(5)", "sign(-5)", "area(1)", "clamp(9, 3)", "clamp(2, 3)"), "SC301"),
]


def _fixed(case: Case) -> str:
    """The program after `review --fix`'s safe fixes; checks that the expected ones applied."""
    doc = Document(f"file:///t/{case.name}.{case.ext}", case.source, path=f"x.{case.ext}")
    findings = analyze(doc, EVERY_RULE)
    safe = {f.code for f in findings if f.fix is not None and f.fix.is_safe}
    assert safe == case.fixes, f"safe fixes offered: {sorted(safe)}"
    outcome = fix_document(doc, findings, lambda d: analyze(d, EVERY_RULE))
    assert outcome.source is not None and outcome.applied >= 1
    return outcome.source.decode("utf-8")


def _run_python(source: str, calls: tuple[str, ...]) -> list[str]:
    namespace: dict = {}
    exec(compile(source, "<case>", "exec"), namespace)
    results = []
    for call in calls:
        try:
            results.append(repr(eval(call, namespace)))
        except Exception as exc:  # the exception is part of the behaviour being compared
            results.append(f"raised {type(exc).__name__}: {exc}")
    return results


@pytest.mark.parametrize("case", PY_CASES, ids=lambda c: c.name)
def test_python_safe_fix_keeps_behaviour(case: Case) -> None:
    fixed = _fixed(case)
    assert fixed != case.source
    assert _run_python(fixed, case.calls) == _run_python(case.source, case.calls)


_NODE_RUNNER = r"""
const vm = require("vm");
const programs = JSON.parse(require("fs").readFileSync(0, "utf8"));
const ts = process.env.TYPESCRIPT ? require(process.env.TYPESCRIPT) : null;
const out = programs.map(({source, ts: isTs, calls}) => {
  let js = source;
  if (isTs) {
    const r = ts.transpileModule(source, {reportDiagnostics: true,
      compilerOptions: {target: ts.ScriptTarget.ES2020, module: ts.ModuleKind.None}});
    if (r.diagnostics.length) return {error: "transpile: " + r.diagnostics[0].messageText};
    js = r.outputText;
  }
  const context = vm.createContext({console: {log() {}}, Math});
  vm.runInContext(js, context);
  return {results: calls.map((call) => {
    try { return JSON.stringify(vm.runInContext(call, context)); }
    catch (e) { return "threw " + e.name + ": " + e.message; }
  })};
});
process.stdout.write(JSON.stringify(out));
"""


def _node() -> str:
    node = shutil.which("node")
    if node is None or not (TYPESCRIPT / "package.json").is_file():
        message = "node and editors/vscode/node_modules/typescript are needed " \
                  "(run `(cd editors/vscode && npm ci)`)"
        if os.environ.get("STAGECODER_REQUIRE_EDITORS"):
            pytest.fail(message)
        pytest.skip(message)
    return node


def _run_node(programs: list[tuple[str, bool, tuple[str, ...]]]) -> list[dict]:
    payload = json.dumps([{"source": s, "ts": t, "calls": list(c)} for s, t, c in programs])
    done = subprocess.run([_node(), "-e", _NODE_RUNNER], input=payload, capture_output=True,
                          text=True, timeout=60, env={**os.environ, "TYPESCRIPT": str(TYPESCRIPT)})
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


@pytest.mark.parametrize("case", JS_CASES, ids=lambda c: c.name)
def test_javascript_and_typescript_safe_fix_keeps_behaviour(case: Case) -> None:
    fixed = _fixed(case)
    assert "else return -1" in fixed  # the reachable `else` survives
    before, after = _run_node([(case.source, case.ext == "ts", case.calls),
                               (fixed, case.ext == "ts", case.calls)])
    assert "error" not in before and "error" not in after, (before, after)
    assert after["results"] == before["results"]
    assert before["results"][1] == "-1"  # sign(-5): the case really exercises the else


def test_the_execution_check_catches_a_fix_that_changes_behaviour() -> None:
    """The comparison itself can fail: deleting the `else` (the old SC301 fix) is caught."""
    source = textwrap.dedent(JS_SIGN)
    broken = source.replace("  else return -1;\n", "")
    before, after = _run_node([(source, False, ("sign(-5)",)), (broken, False, ("sign(-5)",))])
    assert before["results"] == ["-1"] and after["results"] != before["results"]


def test_every_rule_with_a_safe_fix_has_an_execution_case() -> None:
    declared = {r.code for r in all_rules() if Applicability.SAFE in r.fix_applicabilities}
    covered = {code for case in PY_CASES + JS_CASES for code in case.fixes}
    assert declared <= covered, f"safe fixes without an execution test: {declared - covered}"
