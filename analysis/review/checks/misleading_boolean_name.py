"""SC203 misleading-boolean-name: a name that reads as a boolean bound to a non-boolean value."""

from __future__ import annotations

from collections.abc import Iterator

from tree_sitter import Node

from analysis.review.checks._base import Context, Match, Rule, first, per_language
from analysis.review.findings import Applicability, Edit, Finding, Fix

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


# Where a use of a name only asks "is it truthy?" (per language: parent type -> the field that
# holds the tested expression; "" = any child).
_TRUTH_TESTS = {
    "python": {"if_statement": "condition", "elif_clause": "condition",
               "while_statement": "condition", "not_operator": "", "assert_statement": "",
               "parenthesized_expression": ""},
    "javascript": {"if_statement": "condition", "while_statement": "condition",
                   "do_statement": "condition", "parenthesized_expression": ""},
    "go": {"if_statement": "condition", "for_statement": "condition",
           "parenthesized_expression": ""},
}
_TRUTH_TESTS["typescript"] = _TRUTH_TESTS["tsx"] = _TRUTH_TESTS["javascript"]
_BOOLEAN_OPS = {"python": ("boolean_operator", ("and", "or")),
                "javascript": ("binary_expression", ("&&", "||")),
                "go": ("binary_expression", ("&&", "||"))}
_BOOLEAN_OPS["typescript"] = _BOOLEAN_OPS["tsx"] = _BOOLEAN_OPS["javascript"]
_SCOPES = frozenset({"function_definition", "module", "function_declaration",
                     "function_expression", "arrow_function", "method_definition", "program",
                     "method_declaration", "func_literal", "source_file"})
# `len()` always gives a non-negative int, so `n > 0` and `bool(n)` agree; a JavaScript
# `.length`/`.size` may be anything on an arbitrary object.
_EXACT_LENGTH = frozenset({"python", "go"})


class MisleadingBooleanName(Rule):
    """## What it does
    Finds a variable named like a boolean (`is_ready`, `hasItems`, `canRetry`) that is bound to
    a string, a number other than 0/1, or a collection; and one bound to a length (`len(x)`,
    `x.length`) that the code then tests for truth (`if has_items:`), which `> 0` says plainly.

    ## Why is this bad?
    Readers take `if has_items:` as a yes/no question. When `has_items` holds a count or a
    string, comparisons like `has_items == True` silently fail, and the next person assigns
    a real boolean and breaks the code that used the number.

    ## Example
    ```python
    has_items = len(cart)
    if has_items:
        checkout(cart)
    ```
    Use instead:
    ```python
    has_items = len(cart) > 0
    ```

    ## Fix safety
    For a length, the fix appends `> 0`. A length is reported only when every later use of the
    name is a truth test (a length that is also used as a number, like `can_dlc` in
    `struct.pack(..., can_dlc)`, is a number with an unlucky name, not a boolean). Then the fix
    keeps behaviour for Python's `len()` and Go's `len()` (a non-negative integer is truthy
    exactly when it is `> 0`): safe. A JavaScript `.length`/`.size` may be a string or undefined
    on an arbitrary object: unsafe. Other values have no fix: rename the variable instead.
    """

    code = "SC203"
    preview = True  # below the precision bar on real code (benchmarks/review_precision.py)
    name = "misleading-boolean-name"
    summary = "a boolean-sounding name bound to a string, number, collection or length"
    message = "`{name}` reads as a boolean but holds {what}"
    fix_title = "Compare the length with 0"
    fix_applicabilities = frozenset({Applicability.SAFE, Applicability.UNSAFE})
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
                if not _only_truth_tests(ctx, name):
                    continue  # used as a number too (or not at all): not a boolean
                edit = Edit(value.end_byte, value.end_byte, " > 0")
                title = self.fix_title or ""
                fix = Fix.safe(title, edit) if ctx.language in _EXACT_LENGTH \
                    else Fix.unsafe(title, edit)
            yield ctx.finding(self, name, self.message.format(name=ctx.text(name), what=what),
                              fix)


def _only_truth_tests(ctx: Context, binding: Node) -> bool:
    """True when the name bound at `binding` is used at least once afterwards in its scope,
    never rebound there, and every use only tests it for truth."""
    scope = next((a for a in ctx.ancestors(binding) if a.type in _SCOPES), None)
    if scope is None:
        return False
    name = ctx.text(binding)
    uses = 0
    for node in ctx.walk(scope):
        if node.type != "identifier" or node.id == binding.id or ctx.text(node) != name:
            continue
        if node.start_byte < binding.start_byte or not _truth_test(ctx, node):
            return False  # an earlier binding or use, a rebinding, or a use as a value
        uses += 1
    return uses > 0


def _truth_test(ctx: Context, node: Node) -> bool:
    op_type, op_words = _BOOLEAN_OPS[ctx.language]
    tests = _TRUTH_TESTS[ctx.language]
    while True:
        parent = node.parent
        if parent is None:
            return False
        if parent.type == op_type and any(ctx.text(c) in op_words
                                          for c in parent.children if not c.is_named):
            node = parent  # `a and b` yields an operand: it is a test only if it is tested
            continue
        if parent.type == "unary_expression" and ctx.text(parent).startswith("!"):
            return True
        field = tests.get(parent.type)
        if field is None:
            return False
        if parent.type == "parenthesized_expression":
            node = parent  # parentheses change nothing (JavaScript's conditions have them)
            continue
        return field == "" or parent.child_by_field_name(field) == node


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
