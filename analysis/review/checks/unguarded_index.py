"""SC101 unguarded-index: a parameter indexed at a fixed position with no length check."""

from __future__ import annotations

from collections.abc import Iterator

from analysis.review.checks._base import Context, Match, Rule, first, per_language
from analysis.review.checks._functions import Param, unguarded_param
from analysis.review.findings import Finding

_GO_INDEXABLE = frozenset({"slice_type", "variadic_parameter_declaration"})


class UnguardedIndex(Rule):
    """## What it does
    Finds a function parameter indexed at a constant position (`items[0]`, `args[-1]`) when the
    function never checks the parameter: no length check, no condition or comparison naming it,
    no `try` around the access.

    ## Why is this bad?
    The function trusts its caller to pass a long enough sequence. An empty list raises
    `IndexError` in Python, panics in Go, and yields `undefined` in JavaScript, which then fails
    somewhere far from the cause.

    ## Example
    ```python
    def first_word(words):
        return words[0]
    ```
    Use instead:
    ```python
    def first_word(words):
        if not words:
            raise ValueError("words is empty")
        return words[0]
    ```

    ## Fix safety
    No automatic fix: the right guard (raise, return a default) is the author's choice.
    Parameters typed as fixed-length tuples (Python `tuple[int, int]`, TypeScript `[number,
    number]`) and Go arrays and maps are not reported.
    """

    code = "SC101"
    name = "unguarded-index"
    summary = "a parameter indexed at a fixed position without a length check"
    message = "`{use}` indexes parameter `{name}` without checking its length"
    queries = per_language({
        "python": "(subscript value: (identifier) @name"
                  " subscript: [(integer) (unary_operator argument: (integer))]) @use",
        "javascript": "(subscript_expression object: (identifier) @name index: (number)) @use",
        "typescript": "(subscript_expression object: (identifier) @name index: (number)) @use",
        "tsx": "(subscript_expression object: (identifier) @name index: (number)) @use",
        "go": "(index_expression operand: (identifier) @name index: (int_literal)) @use",
    })

    def check(self, ctx: Context, matches: list[Match]) -> Iterator[Finding]:
        """Report the first unguarded fixed-position index of each parameter."""
        reported: set[int] = set()
        for match in sorted(matches, key=lambda m: m["use"][0].start_byte):
            ctx.check()
            use, name = first(match, "use"), first(match, "name")
            if use is None or name is None:
                continue
            if any(c.type == "optional_chain" for c in use.children):
                continue  # `a?.[0]` is its own guard
            param = unguarded_param(ctx, use, name, length_counts=True)
            if param is None or param.node.id in reported or not _may_be_short(ctx, param):
                continue
            reported.add(param.node.id)
            yield ctx.finding(self, use, self.message.format(use=ctx.text(use), name=param.name))


def _may_be_short(ctx: Context, param: Param) -> bool:
    """False for parameters whose type fixes the length (tuples, arrays, maps)."""
    type_node = param.type_node
    if ctx.language == "go":
        if type_node is None:
            return False
        return type_node.type in _GO_INDEXABLE or ctx.text(type_node) == "string"
    if type_node is None:
        return True
    text = ctx.text(type_node).replace(" ", "")
    if ctx.language == "python":
        fixed_tuple = text.lower().startswith("tuple[") and "..." not in text
        return not fixed_tuple
    return "tuple_type" not in {n.type for n in type_node.named_children}


RULE = UnguardedIndex()
