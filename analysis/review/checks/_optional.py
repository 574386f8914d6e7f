"""Parameters that may be None/null/undefined, and their unguarded uses: for SC103 and SC104.

A rule's query captures the optional parameter (`@param`); `unguarded_uses` then runs one small
query over that function's body (in C) for dereferences and iterations of its optional names.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Literal

from tree_sitter import Node, Query

from analysis.review.checks._base import Context, Match, bounded_cursor, first, optional_chained
from analysis.review.checks._functions import enclosing_function, guards_of, params_of

Kind = Literal["deref", "iter"]

PARAM_QUERIES = {
    "python": """
(default_parameter value: (none)) @param
(typed_default_parameter value: (none)) @param
((typed_parameter type: (type) @type) @param (#match? @type "None|Optional"))
""",
    "javascript": "(assignment_pattern left: (identifier) right: [(null) (undefined)]) @param",
    "typescript": """
(optional_parameter pattern: (identifier)) @param
((required_parameter pattern: (identifier) type: (type_annotation) @type) @param
  (#match? @type "null|undefined"))
""",
}
PARAM_QUERIES["tsx"] = PARAM_QUERIES["typescript"]

_USES_PY = """
(attribute object: (identifier) @deref)
(subscript value: (identifier) @deref)
(call function: (identifier) @deref)
(for_statement right: (identifier) @iter)
(for_in_clause right: (identifier) @iter)
"""
_USES_JS = """
(member_expression object: (identifier) @deref)
(subscript_expression object: (identifier) @deref)
(call_expression function: (identifier) @deref)
(for_in_statement operator: "of" right: (identifier) @iter)
(array (spread_element (identifier) @iter))
(arguments (spread_element (identifier) @iter))
"""
_USES = {"python": _USES_PY, "javascript": _USES_JS, "typescript": _USES_JS, "tsx": _USES_JS}
_COMPILED: dict[str, Query] = {}


def functions_with_optional_params(ctx: Context, matches: list[Match]) -> Iterator[Node]:
    """Each function that has an optional parameter, once."""
    seen: set[int] = set()
    for match in matches:
        ctx.check()
        param = first(match, "param")
        fn = enclosing_function(ctx, param) if param is not None else None
        if fn is not None and fn.id not in seen:
            seen.add(fn.id)
            yield fn


def unguarded_uses(ctx: Context, fn: Node, kind: Kind) -> Iterator[tuple[str, Node]]:
    """(parameter name, use node) for the first unguarded use of each optional parameter."""
    optional = {name for name, p in params_of(ctx, fn).items() if p.optional}
    if not optional:
        return
    query = _COMPILED.get(ctx.language)
    if query is None:
        spec = ctx.document.spec
        assert spec is not None
        query = _COMPILED[ctx.language] = Query(spec.language, _USES[ctx.language])
    body = fn.child_by_field_name("body")
    if body is None:
        return
    guards = guards_of(ctx, fn)
    reported: set[str] = set()
    key = ("uses", fn.id)
    captures = ctx.cache.get(key)
    if captures is None:  # shared by SC103 and SC104
        captures = ctx.cache[key] = bounded_cursor(query).captures(body)
    nodes = sorted(captures.get(kind, ()), key=lambda n: n.start_byte)
    for ident in nodes:
        ctx.check()
        name = ctx.text(ident)
        if name not in optional or name in reported:
            continue
        use = ident.parent if kind == "deref" and ident.parent is not None else ident
        if optional_chained(use):
            continue
        if enclosing_function(ctx, ident) != fn or guards.covers(name, use):
            continue
        reported.add(name)
        yield name, use
