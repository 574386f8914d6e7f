"""Is this identifier a binding? One answer for every grammar, read from where it hangs.

An identifier binds a name when, possibly through pattern wrappers (tuples, destructuring,
pointers, `*args`), it sits under a defining field of its parent (`name`, `pattern`,
`declarator`, `alias`, `parameter`; `left` only of an assignment-like node), in a parameter
list, or in an import or `global` statement. It is a use under a call, an attribute, a keyword
argument or a qualified name. The naming stage (which names a completion defines) and the
visible-names reader (which names the cursor sees) both ask `is_binding`, so they agree.

Callers walk the tree with a TreeCursor and pass the way up as (parent type, field of the child
in that parent) steps, nearest first: no `Node.parent` calls (each costs the node's depth).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from itertools import islice

from tree_sitter import Node

from analysis.documents.tree_walks import ancestors

Step = tuple[str, str | None]  # (parent's node type, the field the child has in that parent)

# Wrappers a bound name may sit in, with the child fields that keep it a binding position:
# `x, y = ...`, `[a, b] = ...`, `*p`, `(a, b): (i32, i32)`, `int *p = q` (not q), `{k: v}` (v).
WRAPPERS: dict[str, frozenset[str | None]] = {
    **dict.fromkeys(("pattern_list", "tuple_pattern", "list_pattern", "array_pattern",
                     "object_pattern", "list_splat_pattern", "dictionary_splat_pattern",
                     "rest_pattern", "as_pattern_target", "expression_list", "identifier_list",
                     "mut_pattern", "reference_pattern", "tuple_struct_pattern",
                     "parenthesized_declarator", "typed_parameter", "dotted_name"),
                    frozenset({None})),
    **dict.fromkeys(("pointer_declarator", "reference_declarator", "array_declarator",
                     "init_declarator"), frozenset({None, "declarator"})),
    "pair_pattern": frozenset({"value"}),
    "object_assignment_pattern": frozenset({"left"}),
}
# Parents under which a name is looked up, never bound (`f(k=v)`'s k, `a.b`, `ns::x`, `o.m()`).
NOT_BINDING = frozenset({
    "keyword_argument", "call", "call_expression", "attribute", "augmented_assignment",
    "member_expression", "qualified_identifier", "scoped_identifier", "field_expression",
    "selector_expression", "named_argument", "field_initializer", "shorthand_field_initializer",
    "method_invocation", "field_access",
})
# Parents whose `left` is a target (elsewhere `left` is an operand: `a + b`).
ASSIGNING = frozenset({
    "assignment", "for_statement", "for_in_clause", "assignment_expression",
    "short_var_declaration", "range_clause", "for_in_statement", "assignment_statement",
    "assignment_pattern",
})
# Parents every identifier child of which is bound: imports, `global`/`nonlocal`.
BINDING_PARENTS = frozenset({
    "import_statement", "import_from_statement", "future_import_statement", "aliased_import",
    "import_clause", "namespace_import", "global_statement", "nonlocal_statement",
})
BINDING_FIELDS = frozenset({"name", "pattern", "declarator", "alias", "parameter", "receiver"})
PARAMETER_FIELDS = frozenset({None, "name", "pattern", "declarator", "left"})


def is_binding(steps: Iterable[Step]) -> bool:
    """True when the identifier at the bottom of `steps` (its way up, nearest first) binds."""
    for parent, field in steps:
        allowed = WRAPPERS.get(parent)
        if allowed is not None:
            if field in allowed:
                continue  # the wrapper passes the question on to its own parent
            return False
        if parent in NOT_BINDING:
            return False
        if "parameter" in parent and "type" not in parent:  # not a type parameter list
            return field in PARAMETER_FIELDS
        if parent in BINDING_PARENTS:
            return True
        if field == "left":
            return parent in ASSIGNING
        return field in BINDING_FIELDS
    return False


def steps_up(stack: Sequence[Step], field: str | None, above: Iterable[Step] = ()
             ) -> Iterator[Step]:
    """The way up from a cursor walk: `stack` holds (type, field in its parent) of the node's
    ancestors inside the walk (outermost first), `field` is the node's own field, `above` the
    steps beyond the walk's first node (a `StepsAbove`)."""
    for kind, parent_field in reversed(stack):
        yield kind, field
        field = parent_field
    yield from above


class StepsAbove:
    """The steps from `node` up to `root` (at most `limit`), computed on first use: most
    identifiers are decided inside the walk."""

    __slots__ = ("_node", "_root", "_steps", "limit")

    def __init__(self, node: Node, root: Node, limit: int = 8) -> None:
        self._node, self._root, self.limit = node, root, limit
        self._steps: list[Step] | None = None

    def __iter__(self) -> Iterator[Step]:
        if self._steps is None:
            self._steps = []
            child = self._node
            for parent in islice(ancestors(self._node, self._root), self.limit):
                self._steps.append((parent.type, field_in(parent, child)))
                child = parent
        return iter(self._steps)


def field_in(parent: Node, child: Node) -> str | None:
    """The field under which `child` hangs in `parent` (None for an unnamed position)."""
    cursor = parent.walk()
    if not cursor.goto_first_child_for_byte(child.start_byte):
        return None
    while True:  # zero-width children may share the start byte
        node = cursor.node
        if node is not None and node.id == child.id:
            return cursor.field_name
        if node is None or node.start_byte > child.start_byte or not cursor.goto_next_sibling():
            return None
