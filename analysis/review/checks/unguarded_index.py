"""SC101 unguarded-index: a parameter indexed at a fixed position with no length check."""

from __future__ import annotations

from collections.abc import Iterator

from tree_sitter import Node

from analysis.review.checks._base import (
    Context,
    Match,
    Rule,
    first,
    optional_chained,
    per_language,
)
from analysis.review.checks._functions import Param, enclosing_function, unguarded_param
from analysis.review.checks._lengths import known_length, non_empty_here
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

    Only a function's own callers are in question, so only API boundaries are checked: not
    inline callbacks (`pairs.filter((pair) => pair[1])`, whose caller is right there), nested
    functions, private ones (`_helper`, `#field`, JSDoc `@private`/`@internal`, unexported Go
    functions) or test functions (pytest calls them). And not where the tree says how long the
    value is: a `@pytest.mark.parametrize` whose values are all long enough, a `re.sub`
    replacement function indexing no further than the pattern's groups, a use inside a loop
    over the same sequence (`for _, v := range args { ... args[0] }`), `self`/`cls`.

    ## Fix safety
    No automatic fix: the right guard (raise, return a default) is the author's choice.
    Parameters typed as fixed-length tuples (Python `tuple[int, int]`, TypeScript `[number,
    number]`) and Go arrays and maps are not reported.
    """

    code = "SC101"
    preview = True  # below the precision bar on real code (benchmarks/review_precision.py)
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
            if optional_chained(use):
                continue  # `a?.[0]` is its own guard
            param = unguarded_param(ctx, use, name, length_counts=True)
            if param is None or param.node.id in reported or not _may_be_short(ctx, param):
                continue
            fn = enclosing_function(ctx, use)
            index = _index(ctx, use)
            if fn is None or index is None:
                continue
            length = known_length(ctx, fn, param)
            if length is not None:
                if -length <= index < length:
                    continue  # the file's own values are long enough
            elif not _boundary(ctx, fn, param) or \
                    (index in (0, -1) and non_empty_here(ctx, use, param.name)):
                continue  # not an API boundary, or inside a loop over the sequence
            reported.add(param.node.id)
            yield ctx.finding(self, use, self.message.format(use=ctx.text(use), name=param.name))


_INLINE_PARENTS = frozenset({"arguments", "argument_list"})
_PRIVATE_DOC = ("@private", "@internal", "@api private")


def _index(ctx: Context, use: Node) -> int | None:
    """The constant index of a subscript (`x[2]` -> 2, `x[-1]` -> -1)."""
    index = use.child_by_field_name("index") or use.child_by_field_name("subscript")
    if index is None:
        index = next((c for c in use.named_children[1:]), None)
    try:
        return int(ctx.text(index).replace(" ", "")) if index is not None else None
    except ValueError:
        return None


def _boundary(ctx: Context, fn: Node, param: Param) -> bool:
    """True for a function whose arguments come from callers elsewhere (an API boundary)."""
    if fn.parent is not None and fn.parent.type in _INLINE_PARENTS:
        return False  # an inline callback: the call that feeds it is right there
    if enclosing_function(ctx, fn) is not None:
        return False  # a nested function: its callers are in the enclosing one
    if ctx.language == "python" and param.name in ("self", "cls"):
        return False
    name_node = fn.child_by_field_name("name")
    if name_node is None and fn.parent is not None and fn.parent.type == "variable_declarator":
        name_node = fn.parent.child_by_field_name("name")  # `const f = (x) => ...`
    name = ctx.text(name_node) if name_node is not None else ""
    if ctx.language == "go":
        return name[:1].isupper() or fn.type == "func_literal"
    if name.startswith(("_", "#")) and not name.startswith("__"):
        return False
    if ctx.language == "python" and name.startswith("test"):
        return False  # pytest supplies the arguments (fixtures, parametrize: see _lengths)
    if any(c.type == "accessibility_modifier" and ctx.text(c) != "public"
           for c in fn.children):
        return False  # TypeScript `private`/`protected`
    comment = _doc_comment(fn)
    return comment is None or not any(t in ctx.text(comment) for t in _PRIVATE_DOC)


def _doc_comment(fn: Node) -> Node | None:
    """The comment right before a JavaScript function or method (its JSDoc), if any."""
    node = fn
    while node.parent is not None and node.parent.type in (
            "export_statement", "lexical_declaration", "variable_declarator"):
        node = node.parent
    prev = node.prev_named_sibling
    return prev if prev is not None and prev.type == "comment" else None


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
