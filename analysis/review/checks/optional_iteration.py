"""SC104 optional-iteration: iterating over a parameter that may be None/null, unchecked."""

from __future__ import annotations

from collections.abc import Iterator

from analysis.review.checks._base import Context, Match, Rule
from analysis.review.checks._optional import (
    PARAM_QUERIES,
    functions_with_optional_params,
    unguarded_uses,
)
from analysis.review.findings import Finding


class OptionalIteration(Rule):
    """## What it does
    Finds a loop, comprehension or spread over a parameter that may be `None` (Python) or
    `null`/`undefined` (JavaScript, TypeScript), with no check of that parameter in the function.

    ## Why is this bad?
    The default value makes the call without the argument legal, and then the loop fails:
    `TypeError: 'NoneType' object is not iterable`, or `TypeError: p is not iterable`.

    ## Example
    ```python
    def total(prices=None):
        return sum(p for p in prices)
    ```
    Use instead:
    ```python
    def total(prices=None):
        if prices is None:
            return 0
        return sum(p for p in prices)
    ```

    ## Fix safety
    No automatic fix. `for...in` over `null` in JavaScript is a no-op and is not reported; so
    is an object spread (`{...options}` of `undefined` is an empty object). Array and argument
    spreads (`[...xs]`, `f(...xs)`) iterate and are reported.
    """

    code = "SC104"
    name = "optional-iteration"
    summary = "iteration over a parameter that may be None/null, without a check"
    message = "iterates over parameter `{name}`, which may be {none} (it is optional)"
    queries = PARAM_QUERIES

    def check(self, ctx: Context, matches: list[Match]) -> Iterator[Finding]:
        """Report the first unguarded iteration of each optional parameter."""
        none = "None" if ctx.language == "python" else "null or undefined"
        for fn in functions_with_optional_params(ctx, matches):
            for name, use in unguarded_uses(ctx, fn, "iter"):
                yield ctx.finding(self, use, self.message.format(name=name, none=none))


RULE = OptionalIteration()
