"""SC203 misleading-boolean-name: a name that reads as a boolean bound to a non-boolean value."""

from __future__ import annotations

from collections.abc import Iterator

from tree_sitter import Node

from analysis.review.checks._base import Context, Match, Rule, first, per_language
from analysis.review.findings import Edit, Finding, Fix

_PRED = '(#match? @name "^_*(is|has|can|should|was|were|did|needs)(_[a-z0-9]|[A-Z0-9])")'
_PY = f"""
((assignment left: (identifier) @name right: (_) @value) {_PRED})
"""
_JS = f"""
((variable_declarator name: (identifier) @name value: (_) @value) {_PRED})
((assignment_expression left: (identifier) @name right: (_) @value) {_PRED})
"""
_GO = f"""
((short_var_declaration left: (expression_list . (identifier) @name .)
  right: (expression_list . (_) @value .)) {_PRED})
((var_spec . name: (identifier) @name . value: (expression_list . (_) @value .)) {_PRED})
"""

_KINDS = {
    "a string": {"string", "concatenated_string", "template_string",
                 "interpreted_string_literal", "raw_string_literal"},
    "a number": {"integer", "float", "number", "int_literal", "float_literal"},
    "a collection": {"list", "dictionary", "set", "tuple", "array", "object",
                     "composite_literal"},
}
_FLAG_NUMBERS = frozenset({"0", "1"})  # C-style flags: a stretch, but not misleading


class MisleadingBooleanName(Rule):
    """## What it does
    Finds a variable named like a boolean (`is_ready`, `hasItems`, `canRetry`) that is bound to
    a string, a number other than 0/1, a collection, or a length (`len(x)`, `x.length`).

    ## Why is this bad?
    Readers take `if has_items:` as a yes/no question. When `has_items` holds a count or a
    string, comparisons like `has_items == True` silently fail, and the next person assigns
    a real boolean and breaks the code that used the number.

    ## Example
    ```python
    has_items = len(cart)
    ```
    Use instead:
    ```python
    has_items = len(cart) > 0
    ```

    ## Fix safety
    For a length, the fix appends `> 0`. It is unsafe: code that used the number (`has_items
    + 1`) changes meaning. Other values have no fix: rename the variable instead.
    """

    code = "SC203"
    name = "misleading-boolean-name"
    summary = "a boolean-sounding name bound to a string, number, collection or length"
    message = "`{name}` reads as a boolean but holds {what}"
    fix_title = "Compare the length with 0"
    fix_safety = "unsafe"
    queries = per_language({"python": _PY, "javascript": _JS, "typescript": _JS, "tsx": _JS,
                            "go": _GO})

    def check(self, ctx: Context, matches: list[Match]) -> Iterator[Finding]:
        """Report boolean-named bindings of non-boolean values."""
        for match in matches:
            ctx.check()
            name, value = first(match, "name"), first(match, "value")
            if name is None or value is None:
                continue
            what = _what(ctx, value)
            if what is None:
                continue
            fix = None
            if what == "a length":
                fix = Fix.unsafe(self.fix_title or "", Edit(value.end_byte, value.end_byte, " > 0"))
            yield ctx.finding(self, name, self.message.format(name=ctx.text(name), what=what),
                              fix)


def _what(ctx: Context, value: Node) -> str | None:
    """A description of a non-boolean value, or None when it may be a boolean."""
    for what, types in _KINDS.items():
        if value.type in types:
            if what == "a number" and ctx.text(value) in _FLAG_NUMBERS:
                return None
            return what
    if value.type in ("call", "call_expression"):
        fn = value.child_by_field_name("function")
        if fn is not None and ctx.text(fn) == "len":
            return "a length"
    if value.type == "member_expression":
        prop = value.child_by_field_name("property")
        if prop is not None and ctx.text(prop) in ("length", "size"):
            return "a length"
    return None


RULE = MisleadingBooleanName()
