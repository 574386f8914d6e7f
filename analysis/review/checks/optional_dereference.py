"""SC103 optional-dereference: a parameter that may be None/null is used without a check."""

from __future__ import annotations

from collections.abc import Iterator

from analysis.review.checks._base import Context, Match, Rule
from analysis.review.checks._optional import (
    PARAM_QUERIES,
    functions_with_optional_params,
    unguarded_uses,
)
from analysis.review.findings import Finding


class OptionalDereference(Rule):
    """## What it does
    Finds a parameter that may be `None` (Python: default `None`, `Optional[...]`, `X | None`)
    or `null`/`undefined` (JavaScript: default `null`; TypeScript: `p?: T`, `T | null`) whose
    attribute is read, which is indexed, or which is called, with no check anywhere in the
    function.

    ## Why is this bad?
    The signature says "you may leave this out", the body says "this is always there". A caller
    that believes the signature gets `AttributeError`/`TypeError` in Python or `TypeError:
    Cannot read properties of null` in JavaScript.

    ## Example
    ```python
    def greet(user=None):
        return "hello " + user.name
    ```
    Use instead:
    ```python
    def greet(user=None):
        if user is None:
            return "hello"
        return "hello " + user.name
    ```

    ## Fix safety
    No automatic fix: what to do without the value is the author's choice. Optional chaining
    (`user?.name`) and any condition naming the parameter count as checks.
    """

    code = "SC103"
    name = "optional-dereference"
    summary = "a parameter that may be None/null dereferenced without a check"
    message = "`{use}` dereferences `{name}`, which may be {none} (it is optional)"
    queries = PARAM_QUERIES

    def check(self, ctx: Context, matches: list[Match]) -> Iterator[Finding]:
        """Report the first unguarded dereference of each optional parameter."""
        none = "None" if ctx.language == "python" else "null or undefined"
        for fn in functions_with_optional_params(ctx, matches):
            for name, use in unguarded_uses(ctx, fn, "deref"):
                text = ctx.text(use)
                if len(text) > 40:
                    text = text[:37] + "..."
                yield ctx.finding(self, use, self.message.format(use=text, name=name, none=none))


RULE = OptionalDereference()
