"""SC304 constant-comparison: comparisons whose result never changes (constants, or x vs x)."""

from __future__ import annotations

import ast
import operator
from collections.abc import Callable, Iterator
from typing import Any

from tree_sitter import Node

from analysis.review.checks._base import Context, Match, Rule, first, per_language
from analysis.review.findings import Finding

_PY_LIT = "[(integer) (float) (string) (true) (false) (none)]"
_PY = f"""
(comparison_operator . {_PY_LIT} @a . {_PY_LIT} @b .) @cmp
((comparison_operator . (identifier) @a . (identifier) @b .) @cmp (#eq? @a @b))
((comparison_operator . (attribute) @a . (attribute) @b .) @cmp (#eq? @a @b))
"""
_JS_LIT = "[(number) (string) (true) (false) (null) (undefined)]"
_JS_OPS = '["==" "===" "!=" "!==" "<" ">" "<=" ">="]'
_JS = f"""
(binary_expression left: {_JS_LIT} @a operator: {_JS_OPS} right: {_JS_LIT} @b) @cmp
((binary_expression left: (identifier) @a operator: {_JS_OPS} right: (identifier) @b) @cmp
  (#eq? @a @b))
((binary_expression left: (member_expression) @a operator: {_JS_OPS}
  right: (member_expression) @b) @cmp (#eq? @a @b))
"""
_GO_LIT = "[(int_literal) (float_literal) (interpreted_string_literal) (raw_string_literal)" \
          " (true) (false)]"
_GO_OPS = '["==" "!=" "<" ">" "<=" ">="]'
_GO = f"""
(binary_expression left: {_GO_LIT} @a operator: {_GO_OPS} right: {_GO_LIT} @b) @cmp
((binary_expression left: (identifier) @a operator: {_GO_OPS} right: (identifier) @b) @cmp
  (#eq? @a @b))
((binary_expression left: (selector_expression) @a operator: {_GO_OPS}
  right: (selector_expression) @b) @cmp (#eq? @a @b))
"""

_OPS: dict[str, Callable[[Any, Any], bool]] = {
    "==": operator.eq, "===": operator.eq, "!=": operator.ne, "!==": operator.ne,
    "<": operator.lt, ">": operator.gt, "<=": operator.le, ">=": operator.ge,
    "in": lambda a, b: a in b, "not in": lambda a, b: a not in b,
}
# x OP x, for an x that is not NaN.
_SELF = {"==": True, "===": True, "<=": True, ">=": True, "<": False, ">": False,
         "is": True, "is not": False}


class ConstantComparison(Rule):
    """## What it does
    Finds comparisons whose result is fixed: two literals (`1 == 2`, `"a" < "b"`), or an
    expression compared with itself (`x == x`, `self.a < self.a`).

    ## Why is this bad?
    The branch it guards always or never runs. It is usually a typo (`x == x` for `x == y`)
    or a debugging leftover (`if 1 == 1:`).

    ## Example
    ```python
    if width == width:
        scale = 1.0
    ```
    Use instead: `if width == height:`.

    ## Fix safety
    No automatic fix: which side is wrong is for the author to decide. `x != x` (and `!==`)
    is not reported: it is the idiom for "x is NaN". `x == x` is reported; in JavaScript and Go
    it differs from `true` only for NaN, which `Number.isNaN` / `math.IsNaN` say clearly. In
    Python a class may define `__eq__` and the ordering methods, so the message says "unless
    its type overrides" it, and self-comparisons in `assert`s and `test...` functions (tests of
    those methods) and `x is x` are not reported.
    """

    code = "SC304"
    preview = True  # below the precision bar on real code (benchmarks/review_precision.py)
    name = "constant-comparison"
    summary = "a comparison that is always true or always false"
    message = "`{text}` is always {value}"
    queries = per_language({"python": _PY, "javascript": _JS, "typescript": _JS, "tsx": _JS,
                            "go": _GO})

    def check(self, ctx: Context, matches: list[Match]) -> Iterator[Finding]:
        """Report constant comparisons, with their value when it is certain."""
        for match in matches:
            ctx.check()
            cmp, a, b = first(match, "cmp"), first(match, "a"), first(match, "b")
            if cmp is None or a is None or b is None:
                continue
            op = _operator(ctx, cmp, a, b)
            if op is None:
                continue
            shown: str | None = None
            if ctx.text(a) == ctx.text(b) and a.type not in _LITERALS:
                if op not in _SELF:
                    continue  # `x != x` is the NaN test; `x in x` is not constant
                value: bool | None = _SELF[op]
                if ctx.language == "python":
                    if op in ("is", "is not") or _in_test(ctx, cmp):
                        continue  # a test of `__eq__`/identity, on purpose
                    shown = f"{_render(ctx, bool(value))} unless its type overrides `{op}`"
            else:
                if _has_interpolation(a) or _has_interpolation(b) or op in ("is", "is not"):
                    continue  # f-strings vary; `is` with literals is SC305's business
                value = _evaluate(ctx, a, op, b)
            text = ctx.text(cmp)
            if len(text) > 50:
                text = text[:47] + "..."
            if shown is None:
                shown = "the same" if value is None else _render(ctx, value)
            yield ctx.finding(self, cmp, self.message.format(text=text, value=shown))


def _in_test(ctx: Context, node: Node) -> bool:
    """True inside an `assert` or a function named `test...` (tests compare on purpose)."""
    for parent in ctx.ancestors(node):
        if parent.type == "assert_statement":
            return True
        if parent.type == "function_definition":
            name = parent.child_by_field_name("name")
            return name is not None and ctx.text(name).startswith("test")
    return False


_LITERALS = frozenset({"integer", "float", "string", "true", "false", "none", "number", "null",
                       "undefined", "int_literal", "float_literal", "interpreted_string_literal",
                       "raw_string_literal"})


def _operator(ctx: Context, cmp: Node, a: Node, b: Node) -> str | None:
    between = [c for c in cmp.children if a.end_byte <= c.start_byte and c.end_byte <= b.start_byte
               and not c.is_named]
    if len(between) != 1:
        return None
    return " ".join(ctx.text(between[0]).split())


def _has_interpolation(node: Node) -> bool:
    return any(c.type in ("interpolation", "template_substitution", "escape_sequence")
               for c in node.children)


def _evaluate(ctx: Context, a: Node, op: str, b: Node) -> bool | None:
    """The comparison's value when both sides are literals of one kind, else None."""
    left, right = _literal(ctx, a), _literal(ctx, b)
    if left is _UNKNOWN or right is _UNKNOWN or op not in _OPS:
        return None
    if ctx.language != "python" and type(left) is not type(right):
        return None  # JavaScript coercion / Go typing: do not guess
    try:
        return bool(_OPS[op](left, right))
    except TypeError:
        return None


_UNKNOWN = object()


def _literal(ctx: Context, node: Node) -> Any:
    text = ctx.text(node)
    if ctx.language == "python":
        try:
            return ast.literal_eval(text)
        except (ValueError, SyntaxError):
            return _UNKNOWN
    if node.type in ("true", "false"):
        return node.type == "true"
    if node.type in ("number", "int_literal", "float_literal"):
        try:
            return float(text.replace("_", "")) if not text.startswith("0x") else int(text, 16)
        except ValueError:
            return _UNKNOWN
    if node.type in ("string", "interpreted_string_literal", "raw_string_literal"):
        return text[1:-1]
    return _UNKNOWN


def _render(ctx: Context, value: bool) -> str:
    if ctx.language == "python":
        return str(value)
    return "true" if value else "false"


RULE = ConstantComparison()
