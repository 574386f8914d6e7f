"""SC102 unguarded-division: dividing by a parameter that is never checked against zero."""

from __future__ import annotations

import re
from collections.abc import Iterator

from tree_sitter import Node

from analysis.review.checks._base import Context, Match, Rule, first, per_language
from analysis.review.checks._functions import Param, unguarded_param
from analysis.review.findings import Finding

_JS = """
(binary_expression operator: ["/" "%"] right: (identifier) @name) @use
(augmented_assignment_expression operator: ["/=" "%="] right: (identifier) @name) @use
"""

_PY_NUMERIC = re.compile(r"^(int|float|complex|Decimal|Fraction|Number)(\|None|None\|)?$|"
                         r"^Optional\[(int|float)\]$")
# `/` joins paths in Python: operands named like paths are not divisions.
_PATHISH = re.compile(r"path|dir|root|folder|name|file|part|home|base|url|prefix", re.I)
_GO_INTEGERS = frozenset({"int", "int8", "int16", "int32", "int64", "uint", "uint8", "uint16",
                          "uint32", "uint64", "uintptr", "byte", "rune"})


class UnguardedDivision(Rule):
    """## What it does
    Finds a division or remainder whose divisor is a function parameter that the function never
    checks: no comparison, no condition naming it, no `try` around the division.

    ## Why is this bad?
    A zero divisor raises `ZeroDivisionError` in Python, panics in Go (integers), and silently
    yields `Infinity` or `NaN` in JavaScript.

    ## Example
    ```python
    def average(total, count):
        return total / count
    ```
    Use instead:
    ```python
    def average(total, count):
        if count == 0:
            raise ValueError("count must not be zero")
        return total / count
    ```

    ## Fix safety
    No automatic fix. In Python, `/` also joins paths: a divisor annotated with a non-numeric
    type, or operands named like paths (`root / name`), are not reported; `%` is reported only
    for divisors annotated as numbers (it also formats strings). In Go only integer divisors are
    reported (float division by zero does not panic).
    """

    code = "SC102"
    preview = True  # below the precision bar on real code (benchmarks/review_precision.py)
    name = "unguarded-division"
    summary = "division by a parameter that is never checked against zero"
    message = "`{use}` divides by parameter `{name}`, which may be zero"
    queries = per_language({
        "python": """
(binary_operator operator: ["/" "//" "%"] right: (identifier) @name) @use
(augmented_assignment operator: ["/=" "//=" "%="] right: (identifier) @name) @use
""",
        "javascript": _JS, "typescript": _JS, "tsx": _JS,
        "go": """
(binary_expression operator: ["/" "%"] right: (identifier) @name) @use
(assignment_statement operator: ["/=" "%="] right: (expression_list . (identifier) @name .)) @use
""",
    })

    def check(self, ctx: Context, matches: list[Match]) -> Iterator[Finding]:
        """Report divisions by unchecked parameters."""
        for match in matches:
            ctx.check()
            use, name = first(match, "use"), first(match, "name")
            if use is None or name is None:
                continue
            param = unguarded_param(ctx, use, name)
            if param is None or not _numeric_divisor(ctx, use, param):
                continue
            yield ctx.finding(self, use, self.message.format(use=ctx.text(use), name=param.name))


def _numeric_divisor(ctx: Context, use: Node, param: Param) -> bool:
    type_text = ctx.text(param.type_node).replace(" ", "") if param.type_node else ""
    if ctx.language == "go":
        return type_text in _GO_INTEGERS
    if ctx.language == "python":
        return _python_numeric(ctx, use, param, type_text)
    if param.type_node is None:
        return True
    return any(t in type_text for t in ("number", "bigint", "any"))


def _python_numeric(ctx: Context, use: Node, param: Param, type_text: str) -> bool:
    operator = use.child_by_field_name("operator")
    is_remainder = operator is not None and ctx.text(operator) in ("%", "%=")
    if type_text:
        return bool(_PY_NUMERIC.match(type_text))
    if is_remainder:
        return False  # `fmt % args` formats a string
    left = use.child_by_field_name("left")
    if left is not None and left.type in ("string", "concatenated_string"):
        return False
    operands = ctx.text(left) if left is not None else ""
    return not (_PATHISH.search(param.name) or _PATHISH.search(operands))


RULE = UnguardedDivision()
