"""SC303 mutable-default: a list, dict or set literal (or constructor) as a default argument."""

from __future__ import annotations

from collections.abc import Iterator

from tree_sitter import Node

from analysis.documents.node_types import PYTHON, indent_unit, is_docstring
from analysis.review.checks._base import Context, Match, Rule, first, per_language
from analysis.review.findings import Applicability, Edit, Finding, Fix

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
    comprehension, or a call such as `list()`, `dict()`, `defaultdict(...)`, when the function
    changes it in place (`tags.append(tag)`, `cache[key] = value`, `acc += [x]`) or lets it
    outlive the call (`self.items = items`, `return items`). A default that is only read is
    shared harmlessly and not reported (ruff's B006 reports every one).

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
    fix_applicabilities = frozenset({Applicability.UNSAFE})
    queries = per_language({"python": _QUERY})

    def check(self, ctx: Context, matches: list[Match]) -> Iterator[Finding]:
        """Report mutable defaults, with an unsafe fix where the body allows one."""
        for match in matches:
            ctx.check()
            param, name, value = first(match, "param"), first(match, "name"), first(match, "value")
            if param is None or name is None or value is None:
                continue
            fn = param.parent.parent if param.parent is not None else None
            if fn is None or fn.type != "function_definition" or \
                    not _mutated_or_kept(ctx, fn, ctx.text(name)):
                continue  # only read (or a lambda): the shared object never changes
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
    unit = indent_unit(ctx.document.text, PYTHON)
    nl = ctx.newline  # the file's own line ending: a CRLF file stays CRLF
    assign = f"if {name} is None:{nl}{indent}{unit}{name} = {ctx.text(value)}{nl}"
    edits = [Edit(value.start_byte, value.end_byte, "None")]
    type_node = param.child_by_field_name("type")
    if type_node is not None and "None" not in ctx.text(type_node):
        edits.append(Edit(type_node.end_byte, type_node.end_byte, " | None"))
    first_stmt = statements[0]
    if is_docstring(first_stmt):
        if len(statements) > 1:
            edits.append(Edit(statements[1].start_byte, statements[1].start_byte,
                              assign + indent))
        else:
            edits.append(Edit(first_stmt.end_byte, first_stmt.end_byte,
                              nl + indent + assign.removesuffix(nl)))
    else:
        edits.append(Edit(first_stmt.start_byte, first_stmt.start_byte, assign + indent))
    return Fix.unsafe(title, *edits)


_MUTATORS = frozenset({"append", "extend", "insert", "update", "add", "setdefault", "pop",
                       "popitem", "clear", "remove", "discard", "sort", "reverse",
                       "appendleft", "extendleft", "popleft", "__setitem__"})


def _mutated_or_kept(ctx: Context, fn: Node, name: str) -> bool:
    """True when the function changes the default in place (`tags.append(x)`, `seen[k] = v`,
    `acc += [x]`) or lets it outlive the call (`self.items = items`, `return items`), and
    never rebinds the name (then the default may be replaced before any of that)."""
    body = fn.child_by_field_name("body")
    if body is None:
        return False
    found = False
    for node in ctx.walk(body):
        if node.type != "identifier" or ctx.text(node) != name:
            continue
        parent = node.parent
        if parent is None:
            continue
        kind = parent.type
        if kind in ("assignment", "augmented_assignment") and \
                parent.child_by_field_name("left") == node:
            if kind == "assignment":
                return False  # rebound: what follows may not be the default at all
            found = True  # `acc += [x]` extends the shared list
        elif kind == "attribute" and parent.child_by_field_name("object") == node:
            call = parent.parent
            attribute = parent.child_by_field_name("attribute")
            found |= call is not None and call.type == "call" and attribute is not None \
                and ctx.text(attribute) in _MUTATORS
        elif kind == "subscript" and parent.child_by_field_name("value") == node:
            holder = parent.parent
            found |= holder is not None and (
                holder.type == "delete_statement" or
                (holder.type in ("assignment", "augmented_assignment") and
                 holder.child_by_field_name("left") == parent))
        elif kind == "assignment" and parent.child_by_field_name("right") == node:
            left = parent.child_by_field_name("left")
            found |= left is not None and left.type in ("attribute", "subscript")
        elif kind in ("return_statement", "yield"):
            found = True
    return found


RULE = MutableDefault()
