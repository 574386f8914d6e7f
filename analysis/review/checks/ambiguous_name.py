"""SC204 ambiguous-name: a variable, parameter or function named `l`, `O` or `I`."""

from __future__ import annotations

from collections.abc import Iterator

from analysis.review.checks._base import Context, Match, Rule, per_language
from analysis.review.checks._bindings import binding_query, first_bindings
from analysis.review.findings import Finding, Severity

_PRED = '(#any-of? @name "l" "O" "I")'
_LOOKALIKE = {"l": "the digit 1 or capital I", "O": "the digit 0",
              "I": "lowercase l or the digit 1"}


class AmbiguousName(Rule):
    """## What it does
    Finds bindings named `l` (lowercase L), `O` (capital o) or `I` (capital i).

    ## Why is this bad?
    In many fonts these are indistinguishable from `1`, `0` and each other: `l[1] = I + O`
    is a puzzle, and a misread name is a misread program.

    ## Example
    ```python
    l = [line.strip() for line in lines]
    ```
    Use instead: `stripped = [...]`.

    ## Fix safety
    No automatic fix: the new name is the author's choice.
    """

    code = "SC204"
    preview = True  # below the precision bar on real code (benchmarks/review_precision.py)
    name = "ambiguous-name"
    summary = "a name that looks like a digit (`l`, `O`, `I`)"
    message = "`{name}` is easily confused with {lookalike}; use a descriptive name"
    severity = Severity.INFO
    queries = per_language({lang: binding_query(lang, _PRED)
               for lang in ("python", "javascript", "typescript", "tsx", "go")})

    def check(self, ctx: Context, matches: list[Match]) -> Iterator[Finding]:
        """Report each ambiguous binding."""
        for node in first_bindings(ctx, matches):  # one finding per name and scope
            name = ctx.text(node)
            yield ctx.finding(self, node, self.message.format(
                name=name, lookalike=_LOOKALIKE[name]))


RULE = AmbiguousName()
