"""SC303 mutable-default: a list, dict or set literal (or constructor) as a default argument."""

from __future__ import annotations

from collections.abc import Iterator

from tree_sitter import Node

from analysis.review.checks._base import Context, Match, Rule, first, per_language
from analysis.review.findings import Edit, Finding, Fix

_MUTABLE = "[(list) (dictionary) (set) (list_comprehension) (dictionary_comprehension)" \
           " (set_comprehension)]"
_CTORS = '"list" "dict" "set" "bytearray" "defaultdict" "OrderedDict" "deque" "Counter"'
_QUERY = f"""
(default_parameter name: (identifier) @name value: {_MUTABLE} @value) @param
(typed_default_parameter name: (identifier) @name value: {_MUTABLE} @value) @param
((default_parameter name: (identifier) @name value: (call function: (identifier) @_f) @value)
  @param (#any-of? @_f {_CTORS}))
((typed_default_parameter name: (identifier) @name value: (call function: (identifier) @_f)
  @value) @param (#any-of? @_f {_CTORS}))
"""


class MutableDefault(Rule):
    """## What it does
    Finds parameters whose default is a mutable value: a list, dict or set literal or
    comprehension, or a call such as `list()`, `dict()`, `defaultdict(...)`.

    ## Why is this bad?
    Python evaluates a default once, when the `def` runs. Every call that omits the argument
    shares the same object, so a mutation in one call shows up in the next.

    ## Example
    ```python
    def add_tag(tag, tags=[]):
        tags.append(tag)
        return tags
    ```
    Use instead:
    ```python
    def add_tag(tag, tags=None):
        if tags is None:
            tags = []
        tags.append(tag)
        return tags
    ```

    ## Fix safety
    The fix makes the default `None` (annotation `T` becomes `T | None`) and creates the value
    at the top of the body. It is unsafe: callers that pass `None` explicitly, or code that
    relied on the shared object (a deliberate cache), behave differently. No fix is offered for
    lambdas or one-line functions.
    """

    code = "SC303"
    name = "mutable-default"
    summary = "a mutable default argument (shared between calls)"
    message = "default value `{value}` of `{name}` is created once and shared between calls"
    fix_title = "Default to None and create the value in the body"
    fix_safety = "unsafe"
    queries = per_language({"python": _QUERY})

    def check(self, ctx: Context, matches: list[Match]) -> Iterator[Finding]:
        """Report mutable defaults, with an unsafe fix where the body allows one."""
        for match in matches:
            ctx.check()
            param, name, value = first(match, "param"), first(match, "name"), first(match, "value")
            if param is None or name is None or value is None:
                continue
            text = ctx.text(value)
            short = text if len(text) <= 30 else text[:27] + "..."
            yield ctx.finding(self, value, self.message.format(value=short, name=ctx.text(name)),
                              _fix(ctx, param, ctx.text(name), value, self.fix_title or ""))


def _fix(ctx: Context, param: Node, name: str, value: Node, title: str) -> Fix | None:
    fn = param.parent.parent if param.parent is not None else None
    if fn is None or fn.type != "function_definition":
        return None  # lambda
    body = fn.child_by_field_name("body")
    statements = [c for c in body.named_children if c.type != "comment"] if body else []
    if not statements or statements[0].start_point.row == fn.start_point.row:
        return None  # `def f(x=[]): return x`
    indent = ctx.indent_of(statements[0])
    if not indent or "\n" in ctx.text(value):
        return None
    unit = indent[len(ctx.indent_of(fn)):] or "    "
    assign = f"if {name} is None:\n{indent}{unit}{name} = {ctx.text(value)}\n"
    edits = [Edit(value.start_byte, value.end_byte, "None")]
    type_node = param.child_by_field_name("type")
    if type_node is not None and "None" not in ctx.text(type_node):
        edits.append(Edit(type_node.end_byte, type_node.end_byte, " | None"))
    first_stmt = statements[0]
    if _is_docstring(first_stmt):
        if len(statements) > 1:
            edits.append(Edit(statements[1].start_byte, statements[1].start_byte,
                              assign + indent))
        else:
            edits.append(Edit(first_stmt.end_byte, first_stmt.end_byte,
                              "\n" + indent + assign.rstrip("\n")))
    else:
        edits.append(Edit(first_stmt.start_byte, first_stmt.start_byte, assign + indent))
    return Fix.unsafe(title, *edits)


def _is_docstring(stmt: Node) -> bool:
    return stmt.type == "expression_statement" and stmt.named_child_count == 1 and \
        stmt.named_children[0].type in ("string", "concatenated_string")


RULE = MutableDefault()
