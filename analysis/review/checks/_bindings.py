"""Tree-sitter patterns for the places where a name is bound (variables, parameters, functions).

Shared by the naming rules. `binding_query(language, predicate)` returns patterns capturing the
bound identifier as `@name`; `predicate` is appended to every pattern (e.g. an `#any-of?` filter),
so filtering happens inside tree-sitter and only interesting names reach Python.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from tree_sitter import Node

if TYPE_CHECKING:
    from analysis.review.checks._base import Context, Match

_PYTHON = (
    "(assignment left: (identifier) @name)",
    "(assignment left: (pattern_list (identifier) @name))",
    "(assignment left: (tuple_pattern (identifier) @name))",
    "(for_statement left: (identifier) @name)",
    "(for_statement left: (pattern_list (identifier) @name))",
    "(for_in_clause left: (identifier) @name)",
    "(named_expression name: (identifier) @name)",
    "(parameters (identifier) @name)",
    "(lambda_parameters (identifier) @name)",
    "(default_parameter name: (identifier) @name)",
    "(typed_parameter . (identifier) @name)",
    "(typed_default_parameter name: (identifier) @name)",
    "(function_definition name: (identifier) @name)",
    "(class_definition name: (identifier) @name)",
    "(as_pattern alias: (as_pattern_target (identifier) @name))",
)

_JS_COMMON = (
    "(variable_declarator name: (identifier) @name)",
    "(function_declaration name: (identifier) @name)",
    "(assignment_pattern left: (identifier) @name)",
    "(catch_clause parameter: (identifier) @name)",
    "(arrow_function parameter: (identifier) @name)",
    "(array_pattern (identifier) @name)",
    "(shorthand_property_identifier_pattern) @name",
)
_JAVASCRIPT = (*_JS_COMMON, "(formal_parameters (identifier) @name)",
               "(class_declaration name: (identifier) @name)")
_TYPESCRIPT = (*_JS_COMMON, "(required_parameter pattern: (identifier) @name)",
               "(optional_parameter pattern: (identifier) @name)")

_GO = (
    "(short_var_declaration left: (expression_list (identifier) @name))",
    "(var_spec name: (identifier) @name)",
    "(const_spec name: (identifier) @name)",
    "(parameter_declaration name: (identifier) @name)",
    "(variadic_parameter_declaration name: (identifier) @name)",
    "(function_declaration name: (identifier) @name)",
    "(range_clause left: (expression_list (identifier) @name))",
)

PATTERNS: dict[str, tuple[str, ...]] = {
    "python": _PYTHON, "javascript": _JAVASCRIPT, "typescript": _TYPESCRIPT, "tsx": _TYPESCRIPT,
    "go": _GO,
}

# Binding kinds whose names belong to a class body are attributes, not variables.
CLASS_SCOPE = {"python": "class_definition", "javascript": "class_body", "typescript": "class_body",
               "tsx": "class_body", "go": ""}


_SCOPES = frozenset({"function_definition", "class_definition", "lambda", "module",
                     "function_declaration", "function_expression", "arrow_function",
                     "method_definition", "program", "method_declaration", "func_literal",
                     "source_file", "class_body", "statement_block"})


def scope_key(ctx: Context, node: Node) -> int:
    """Id of the scope node a binding belongs to (to report a name once per scope)."""
    scope = next((a for a in ctx.ancestors(node) if a.type in _SCOPES), None)
    return scope.id if scope is not None else -1


def binding_query(language: str, predicate: str = "") -> str:
    """Patterns for every binding in `language`, each ending with `predicate`."""
    return "\n".join(f"({p} {predicate})" for p in PATTERNS[language])


def first_bindings(ctx: Context, matches: list[Match]) -> Iterator[Node]:
    """The `name` node of each match, once per name and scope: its first binding."""
    seen: set[tuple[int, str]] = set()
    for match in sorted(matches, key=lambda m: m["name"][0].start_byte):
        nodes = match.get("name")
        if not nodes:
            continue
        ctx.check()
        node = nodes[0]
        key = (scope_key(ctx, node), ctx.text(node))
        if key not in seen:
            seen.add(key)
            yield node
