"""SC305 is-literal: `is` / `is not` comparing with a str, bytes, number or tuple literal."""

from __future__ import annotations

from collections.abc import Iterator

from analysis.review.checks._base import Context, Match, Rule, first, per_language
from analysis.review.findings import Applicability, Edit, Finding, Fix

_LIT = "[(string) (concatenated_string) (integer) (float) (tuple) (list) (dictionary) (set)]"
_QUERY = f"""
(comparison_operator . (_) . {_LIT} .) @cmp
(comparison_operator . {_LIT} . (_) .) @cmp
"""


class IsLiteral(Rule):
    """## What it does
    Finds `x is "text"`, `x is 42`, `x is not ()` and the like: identity comparisons with a
    literal.

    ## Why is this bad?
    `is` compares object identity. Whether two equal strings or numbers are the same object
    depends on the interpreter's caching, so the result changes between runs, versions and
    values (`x is 256` may be true where `x is 257` is false). CPython warns about it
    (`SyntaxWarning: "is" with a literal`).

    ## Example
    ```python
    if status is "ok":
        ...
    ```
    Use instead:
    ```python
    if status == "ok":
        ...
    ```

    ## Fix safety
    The fix replaces `is` with `==` and `is not` with `!=`, which is what the comparison almost
    always meant. It is unsafe: it changes what the code does. `[] is not []` is always true
    (two new lists) and `[] != []` is false; `name is "ok"` and `name == "ok"` differ for a
    string built at run time; and `==` calls the left operand's `__eq__`.
    """

    code = "SC305"
    name = "is-literal"
    summary = "`is` / `is not` with a str, bytes, number or tuple literal"
    message = "`{op}` compares identity with a literal; use `{replacement}`"
    fix_title = "Use `{replacement}`"
    fix_applicabilities = frozenset({Applicability.UNSAFE})
    queries = per_language({"python": _QUERY})

    def check(self, ctx: Context, matches: list[Match]) -> Iterator[Finding]:
        """Report identity comparisons with literals; an unsafe fix to equality."""
        seen: set[int] = set()
        for match in matches:
            ctx.check()
            cmp = first(match, "cmp")
            if cmp is None or cmp.id in seen:
                continue
            seen.add(cmp.id)
            ops = [c for c in cmp.children if not c.is_named]
            if len(ops) != 1 or ops[0].type not in ("is", "is not"):
                continue
            op = " ".join(ctx.text(ops[0]).split())
            replacement = "==" if op == "is" else "!="
            fix = Fix.unsafe((self.fix_title or "").format(replacement=replacement),
                           Edit(ops[0].start_byte, ops[0].end_byte, replacement))
            yield ctx.finding(self, cmp, self.message.format(op=op, replacement=replacement), fix)


RULE = IsLiteral()
