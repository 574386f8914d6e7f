"""SC105 dereference-after-null-check: using a value inside the branch that found it None/nil."""

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
from analysis.review.checks._functions import FUNCTION_TYPES
from analysis.review.findings import Finding, Severity

_JS = """
(if_statement
  condition: (parenthesized_expression
    (binary_expression left: (identifier) @name operator: ["==" "==="] right: [(null) (undefined)]))
  consequence: (_) @body)
"""

# Per language: node types that rebind a name (scan stops there) and dereference shapes.
_REBIND = {
    "python": {"assignment": "left", "named_expression": "name", "augmented_assignment": "left",
               "for_statement": "left", "function_definition": "name",
               "class_definition": "name", "as_pattern": "alias", "import_statement": "",
               "import_from_statement": ""},
    "javascript": {"assignment_expression": "left", "variable_declarator": "name",
                   "for_in_statement": "left", "function_declaration": "name",
                   "class_declaration": "name"},
    "go": {"assignment_statement": "left", "short_var_declaration": "left",
           "range_clause": "left", "var_spec": "name"},
}
# Scopes whose own variables may reuse the name: not searched when they bind it.
_COMPREHENSIONS = frozenset({"list_comprehension", "set_comprehension", "generator_expression",
                             "dictionary_comprehension"})
_REBIND["typescript"] = _REBIND["tsx"] = _REBIND["javascript"]
_DEREF = {
    "python": {"attribute": "object", "subscript": "value", "call": "function"},
    "javascript": {"member_expression": "object", "subscript_expression": "object",
                   "call_expression": "function"},
    "go": {"selector_expression": "operand", "unary_expression": "operand"},
}
_DEREF["typescript"] = _DEREF["tsx"] = _DEREF["javascript"]


class DereferenceAfterNullCheck(Rule):
    """## What it does
    Finds a value that is dereferenced inside the very branch that established it is `None`
    (`if x is None:`), `null`/`undefined` (`if (x === null)`) or `nil` (`if p == nil {`), before
    anything assigns it.

    ## Why is this bad?
    The dereference is certain to fail: `AttributeError`, `TypeError`, or a nil pointer panic.
    Usually the condition is inverted (`is None` meant `is not None`) or the branch forgot to
    assign a default first.

    ## Example
    ```go
    if cfg == nil {
        log.Printf("using %s", cfg.Name)
    }
    ```
    Use instead:
    ```go
    if cfg == nil {
        cfg = defaultConfig()
    }
    log.Printf("using %s", cfg.Name)
    ```

    ## Fix safety
    No automatic fix: either the condition or the branch is wrong, and only the author knows
    which. Go method calls (`p.Close()`) are not reported: methods may accept a nil receiver.
    """

    code = "SC105"
    name = "dereference-after-null-check"
    summary = "a value dereferenced inside the branch that found it None/null/nil"
    message = "`{use}` dereferences `{name}` in the branch where it is {none}"
    severity = Severity.ERROR
    queries = per_language({
        "python": "(if_statement condition: (comparison_operator . (identifier) @name . (none) .)"
                  " @cond consequence: (block) @body)",
        "javascript": _JS, "typescript": _JS, "tsx": _JS,
        "go": "(if_statement condition: (binary_expression left: (identifier) @name"
              " operator: \"==\" right: (nil)) consequence: (block) @body)",
    })

    def check(self, ctx: Context, matches: list[Match]) -> Iterator[Finding]:
        """Report the first dereference in each null branch."""
        none = {"python": "None", "go": "nil"}.get(ctx.language, "null or undefined")
        reported: set[int] = set()  # nested checks of one value reach the same use: once
        for match in matches:
            ctx.check()
            name_node, body = first(match, "name"), first(match, "body")
            if name_node is None or body is None:
                continue
            cond = first(match, "cond")
            if cond is not None and not any(c.type in ("is", "==") for c in cond.children):
                continue  # `x is not None`, `x != None`
            name = ctx.text(name_node)
            use = _first_deref(ctx, body, name)
            if use is not None and use.id not in reported:
                reported.add(use.id)
                yield ctx.finding(self, use, self.message.format(
                    use=ctx.text(use), name=name, none=none))


def _binds(ctx: Context, node: Node, name: str) -> bool:
    """True when `node` (re)binds `name` (assignment, loop target, def, import, ...)."""
    field = _REBIND[ctx.language].get(node.type)
    if field is None:
        return False
    target = node.child_by_field_name(field) if field else node
    if target is None:
        return False
    return name in ctx.text(target).replace(",", " ").replace("(", " ").replace(")", " ").split()


def _first_deref(ctx: Context, body: Node, name: str) -> Node | None:
    """The first dereference of `name` in `body` before anything rebinds it (None: none).

    Functions are not entered. A comprehension whose own variable is `name` is skipped; a
    rebinding inside a comprehension ends the search of that comprehension only.
    """
    deref = _DEREF[ctx.language]
    functions = FUNCTION_TYPES[ctx.language]
    # (node, how many comprehensions it sits in below `body`), in pre-order.
    stack = [(child, 0) for child in reversed(body.named_children)]
    while stack:
        ctx.check()
        node, level = stack.pop()
        if _binds(ctx, node, name):
            if level == 0:
                return None
            while stack and stack[-1][1] >= level:  # the rest of that comprehension
                stack.pop()
            continue
        if node.type in _COMPREHENSIONS:
            clauses = [c for c in node.named_children if c.type == "for_in_clause"]
            if not any(_binds_target(ctx, c, name) for c in clauses):  # else: its own variable
                stack.extend((c, level + 1) for c in reversed(node.named_children))
            continue
        if node.type not in functions:
            stack.extend((c, level) for c in reversed(node.named_children))
        field = deref.get(node.type)
        if field is None:
            continue
        target = node.child_by_field_name(field)
        if target is None or target.type != "identifier" or ctx.text(target) != name:
            continue
        if _harmless(ctx, node):
            continue
        return node
    return None


def _binds_target(ctx: Context, clause: Node, name: str) -> bool:
    target = clause.child_by_field_name("left")
    return target is not None and name in ctx.text(target).replace(",", " ").split()


def _harmless(ctx: Context, node: Node) -> bool:
    """Dereference shapes that do not fail on a null value."""
    if optional_chained(node):
        return True
    if ctx.language != "go":
        return False
    if node.type == "unary_expression":
        operator = node.child_by_field_name("operator")
        return operator is None or ctx.text(operator) != "*"
    parent = node.parent  # a method call may accept a nil receiver
    return parent is not None and parent.type == "call_expression" and \
        parent.child_by_field_name("function") == node


RULE = DereferenceAfterNullCheck()
