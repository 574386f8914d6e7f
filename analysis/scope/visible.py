"""Names visible at the cursor: locals and parameters of the enclosing functions, members of the
enclosing classes, the file's top-level definitions and its imports.

For the naming stage ("is every name the completion uses defined?"). Read from the tree with one
rule for all nine grammars: an identifier is a definition when it hangs, possibly through pattern
wrappers (tuples, destructuring, pointers), off a parent under a defining field (`name`, `left`,
`pattern`, `declarator`, `alias`, ...) or sits in a parameter list. Nested functions contribute
their name, not their locals. Bounded work: at most MAX_NODES nodes per call.
"""

from __future__ import annotations

from tree_sitter import Node

from analysis.context.hole import scope_chain
from analysis.documents.document import Document
from analysis.documents.node_types import SyntaxTable, table_for
from analysis.scope.imports import extract_imports

MAX_NODES = 60_000
_BARE_MEMBERS = frozenset({"java", "cpp"})  # languages where a method sees members by bare name

_NAME_TYPES = frozenset({"identifier", "type_identifier", "field_identifier",
                         "shorthand_property_identifier_pattern", "package_identifier"})
_DEFINING_FIELDS = frozenset({"name", "left", "pattern", "declarator", "alias", "parameter",
                              "receiver"})
# Wrappers a defined name may sit in: `x, y = ...`, `[a, b] = ...`, `*p`, `(a, b): (i32, i32)`.
_WRAPPERS = frozenset({
    "pattern_list", "tuple_pattern", "list_pattern", "array_pattern", "object_pattern",
    "list_splat_pattern", "dictionary_splat_pattern", "rest_pattern", "as_pattern_target",
    "expression_list", "pointer_declarator", "reference_declarator", "array_declarator",
    "init_declarator", "parenthesized_declarator", "typed_parameter", "mut_pattern",
    "reference_pattern", "tuple_struct_pattern", "pair_pattern", "identifier_list",
})
# Parents whose `name` is a use, not a definition (keyword arguments, qualified names).
_NOT_DEFINING = frozenset({"keyword_argument", "qualified_identifier", "scoped_identifier",
                           "attribute", "member_expression", "field_expression",
                           "selector_expression", "call", "call_expression", "named_argument",
                           "field_initializer", "shorthand_field_initializer"})


def visible_names(doc: Document, offset: int) -> frozenset[str]:
    """Names a completion at `offset` may use without defining them (builtins not included)."""
    return module_names(doc) | scope_names(doc, offset)


def module_names(doc: Document) -> frozenset[str]:
    """The file's imports and top-level definitions (visible everywhere in it)."""
    if doc.tree is None:
        return frozenset()
    table = table_for(doc.language)
    names: set[str] = set()
    budget = [MAX_NODES]
    for ref in extract_imports(doc):
        names.update(alias for alias in ref.aliases if alias and alias != "*")
    for child in doc.tree.root_node.named_children:
        if child.type not in table.imports:
            _collect(child, doc.source, table, names, budget, top=False)
    return frozenset(names)


def scope_names(doc: Document, offset: int) -> frozenset[str]:
    """Locals, parameters and (bare-member languages) members of the scopes around `offset`:
    the part of `visible_names` that changes from one function to the next."""
    if doc.tree is None:
        return frozenset()
    table = table_for(doc.language)
    names: set[str] = set()
    budget = [MAX_NODES]
    for scope in scope_chain(doc, offset, table):
        if scope.kind in ("function", "method"):
            _collect(scope.node, doc.source, table, names, budget, top=True)
        elif doc.language in _BARE_MEMBERS:  # members used without `this.`: their names
            body = scope.node.child_by_field_name("body") or scope.node
            for member in body.named_children:
                _collect(member, doc.source, table, names, budget, top=False)
        if scope.name and scope.name != "(anonymous)":
            names.add(scope.name)
    return frozenset(names)


def _collect(node: Node, src: bytes, table: SyntaxTable, out: set[str], budget: list[int],
             top: bool) -> None:
    """Definitions under `node`; function-like nodes below give only their own name (and, for
    `top`, the node itself is the scope being read, so its body is walked)."""
    cursor = node.walk()
    stack: list[tuple[str, str | None]] = []  # (type, field under its parent) of the ancestors
    field: str | None = None
    while budget[0] > 0:
        budget[0] -= 1
        current = cursor.node
        if current is None:
            break
        kind = current.type
        if kind in _NAME_TYPES:
            if _is_definition(kind, field, stack):
                out.add(src[current.start_byte:current.end_byte].decode("utf-8", "replace"))
            descend = False
        else:
            nested = kind in table.scopes and not (top and current.id == node.id)
            descend = not nested
            if nested:  # another function, class or namespace: its name, not its insides
                name = current.child_by_field_name("name")
                if name is not None and name.type in _NAME_TYPES:
                    out.add(src[name.start_byte:name.end_byte].decode("utf-8", "replace"))
        if descend and cursor.goto_first_child():
            stack.append((kind, field))
            field = cursor.field_name
            continue
        while not cursor.goto_next_sibling():
            if not stack or not cursor.goto_parent():
                return
            _, field = stack.pop()
        field = cursor.field_name


def _is_definition(kind: str, field: str | None, stack: list[tuple[str, str | None]]) -> bool:
    """Decide from the ancestors: through wrappers up to the parent that holds the name."""
    i = len(stack) - 1
    while i >= 0 and stack[i][0] in _WRAPPERS:
        field = stack[i][1]
        i -= 1
    if i < 0:
        return False
    parent = stack[i][0]
    if parent in _NOT_DEFINING:
        return False
    if "parameter" in parent and "type" not in parent:
        return field in (None, "name", "pattern", "declarator", "left")
    return field in _DEFINING_FIELDS
