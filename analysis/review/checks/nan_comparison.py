"""SC306 nan-comparison: comparing with NaN, which is never equal to anything."""

from __future__ import annotations

import re
from collections.abc import Iterator

from tree_sitter import Node

from analysis.review.checks._base import Context, Match, Rule, first, per_language
from analysis.review.findings import Applicability, Edit, Finding, Fix, Severity

_JS_OPS = '["==" "===" "!=" "!==" "<" ">" "<=" ">="]'
_GO_OPS = '["==" "!=" "<" ">" "<=" ">="]'

# Each NaN spelling: (node pattern capturing @nan, predicates). Predicates hold for a whole
# pattern, so every spelling becomes its own pattern (not an alternation).
_NANS = {
    "js": [("(identifier) @nan", '(#eq? @nan "NaN")'),
           ("(member_expression) @nan", '(#eq? @nan "Number.NaN")')],
    "python": [("(attribute) @nan", '(#match? @nan "^(math|numpy|np)[.]nan$")'),
               ("(call function: (identifier) @_f arguments: (argument_list . (string) @_s .))"
                " @nan", '(#eq? @_f "float") (#match? @_s "^.[nN][aA][nN].$")')],
    "go": [("(call_expression function: (selector_expression) @_sel) @nan",
            '(#eq? @_sel "math.NaN")')],
}


def _binary(kind: str, ops: str) -> str:
    out = []
    for nan, predicate in _NANS[kind]:
        out.append(f"((binary_expression left: (_) @other operator: {ops} right: {nan}) @cmp"
                   f" {predicate})")
        out.append(f"((binary_expression left: {nan} operator: {ops} right: (_) @other) @cmp"
                   f" {predicate})")
    return "\n".join(out)


def _comparison() -> str:
    out = []
    for nan, predicate in _NANS["python"]:
        out.append(f"((comparison_operator . (_) @other . {nan} .) @cmp {predicate})")
        out.append(f"((comparison_operator . {nan} . (_) @other .) @cmp {predicate})")
    return "\n".join(out)


_JS = _binary("js", _JS_OPS)
_PY = _comparison()
_GO = _binary("go", _GO_OPS)
_COMPARISONS = frozenset({"==", "===", "!=", "!==", "<", ">", "<=", ">="})
_IS_NAN = {"python": "math.isnan({x})", "go": "math.IsNaN({x})"}
_IMPORTS_MATH = {"python": re.compile(rb"^\s*import\s+math\b", re.M),
                 "go": re.compile(rb"\"math\"")}


class NanComparison(Rule):
    """## What it does
    Finds comparisons with NaN: `x === NaN` (JavaScript), `x == float("nan")` or
    `x == math.nan` (Python), `x == math.NaN()` (Go).

    ## Why is this bad?
    NaN is not equal to anything, itself included: `==`, `<` and friends are always false
    with NaN, `!=` always true. The check never detects a NaN.

    ## Example
    ```javascript
    if (ratio === NaN) { ratio = 0; }
    ```
    Use instead:
    ```javascript
    if (Number.isNaN(ratio)) { ratio = 0; }
    ```

    ## Fix safety
    For `==`/`===`/`!=`/`!==`, the fix calls `Number.isNaN` (JavaScript), `math.isnan` (Python,
    offered only when the file imports `math`) or `math.IsNaN` (Go). It is unsafe: it changes
    what the code does (from "never" to "when NaN"), which is the point, but deserves a look.
    """

    code = "SC306"
    name = "nan-comparison"
    summary = "a comparison with NaN (always false; `!=` always true)"
    message = "`{text}` is always {value}: NaN is not equal to anything"
    fix_title = "Test with {call}"
    fix_applicabilities = frozenset({Applicability.UNSAFE})
    severity = Severity.ERROR
    queries = per_language({"python": _PY, "javascript": _JS, "typescript": _JS, "tsx": _JS,
                            "go": _GO})

    def check(self, ctx: Context, matches: list[Match]) -> Iterator[Finding]:
        """Report NaN comparisons, with an is-NaN fix for equality operators."""
        for match in matches:
            ctx.check()
            cmp, other, nan = first(match, "cmp"), first(match, "other"), first(match, "nan")
            if cmp is None or other is None or nan is None:
                continue
            ops = [c for c in cmp.children if not c.is_named]
            if len(ops) != 1:
                continue
            op = ctx.text(ops[0])
            if op not in _COMPARISONS:
                continue  # `x is math.nan` is an identity test and can be true
            negated = op in ("!=", "!==")
            py_false, py_true = ("False", "True") if ctx.language == "python" else \
                ("false", "true")
            value = py_true if negated else py_false
            yield ctx.finding(self, cmp, self.message.format(text=ctx.text(cmp), value=value),
                              self._fix(ctx, cmp, other, op, negated))

    def _fix(self, ctx: Context, cmp: Node, other: Node, op: str, negated: bool) -> Fix | None:
        if op not in ("==", "===", "!=", "!=="):
            return None
        if ctx.language in _IMPORTS_MATH:
            if not _IMPORTS_MATH[ctx.language].search(ctx.source):
                return None
            call = _IS_NAN[ctx.language]
        else:
            call = "Number.isNaN({x})"
        text = call.format(x=ctx.text(other))
        if negated:
            text = ("not " if ctx.language == "python" else "!") + text
        title = (self.fix_title or "").format(call=call.split("(")[0])
        return Fix.unsafe(title, Edit(cmp.start_byte, cmp.end_byte, text))


RULE = NanComparison()
