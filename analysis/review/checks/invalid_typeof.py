"""SC307 invalid-typeof: `typeof x` compared with a string that typeof never returns."""

from __future__ import annotations

import difflib
from collections.abc import Iterator

from analysis.review.checks._base import Context, Match, Rule, first, per_language
from analysis.review.findings import Applicability, Edit, Finding, Fix, Severity

_OPS = '["==" "===" "!=" "!=="]'
_TYPEOF = '(unary_expression operator: "typeof")'
_JS = f"""
(binary_expression left: {_TYPEOF} operator: {_OPS} right: (string) @name) @cmp
(binary_expression left: (string) @name operator: {_OPS} right: {_TYPEOF}) @cmp
"""
VALID = ("bigint", "boolean", "function", "number", "object", "string", "symbol", "undefined")


class InvalidTypeof(Rule):
    """## What it does
    Finds `typeof x === "strng"`: a `typeof` result compared with a string that is not one of
    "bigint", "boolean", "function", "number", "object", "string", "symbol", "undefined".

    ## Why is this bad?
    `typeof` only ever returns those eight strings, so the comparison is always false (or
    always true with `!==`): usually a typo, or a type that `typeof` does not report
    (`"array"`, `"null"`).

    ## Example
    ```javascript
    if (typeof value === "strng") { ... }
    ```
    Use instead: `typeof value === "string"`.

    ## Fix safety
    When the string is a near miss of a valid name, the fix replaces it. It is unsafe: the
    comparison starts to match, which changes behaviour. `"array"` and `"null"` get no fix
    (use `Array.isArray(x)` / `x === null`).
    """

    code = "SC307"
    name = "invalid-typeof"
    summary = "`typeof x` compared with a string typeof never returns"
    message = "`typeof` never returns \"{value}\": this comparison is always {result}"
    fix_title = "Compare with \"{suggestion}\""
    fix_applicabilities = frozenset({Applicability.UNSAFE})
    severity = Severity.ERROR
    queries = per_language({"javascript": _JS, "typescript": _JS, "tsx": _JS})

    def check(self, ctx: Context, matches: list[Match]) -> Iterator[Finding]:
        """Report invalid typeof strings, with a fix for near misses."""
        for match in matches:
            ctx.check()
            cmp, string = first(match, "cmp"), first(match, "name")
            if cmp is None or string is None or any(c.type == "escape_sequence"
                                                    for c in string.children):
                continue
            value = ctx.text(string)[1:-1]
            if value in VALID:
                continue
            ops = [c for c in cmp.children if not c.is_named]
            result = "true" if ops and ctx.text(ops[0]).startswith("!") else "false"
            fix = None
            close = difflib.get_close_matches(value.lower(), VALID, n=1, cutoff=0.6)
            if close and value.lower() not in ("array", "null"):
                quote = ctx.text(string)[0]
                fix = Fix.unsafe((self.fix_title or "").format(suggestion=close[0]),
                                 Edit(string.start_byte, string.end_byte,
                                      f"{quote}{close[0]}{quote}"))
            yield ctx.finding(self, string, self.message.format(value=value, result=result), fix)


RULE = InvalidTypeof()
