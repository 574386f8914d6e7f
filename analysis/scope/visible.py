"""Names visible at the cursor: locals and parameters of the enclosing functions, members of the
enclosing classes, the file's top-level definitions and its imports.

For the naming stage ("is every name the completion uses defined?"). Read from the tree with one
rule for all nine grammars (analysis/scope/bindings.py). The scopes come from the cursor's `Hole`
and the imports' names from its context: both are worked out once per position, not here. Nested
functions contribute their name, not their locals. Bounded work: at most MAX_NODES nodes per call.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence

from tree_sitter import Node, Range

from analysis.context.hole import Scope
from analysis.documents.document import Document
from analysis.documents.node_types import SyntaxTable, table_for
from analysis.documents.trial import point_of, unit_span
from analysis.scope.bindings import Step, is_binding, steps_up

MAX_NODES = 60_000
_BARE_MEMBERS = frozenset({"java", "cpp"})  # languages where a method sees members by bare name

_NAME_TYPES = frozenset({"identifier", "type_identifier", "field_identifier",
                         "shorthand_property_identifier_pattern", "package_identifier"})


def visible_names(doc: Document, import_names: Iterable[str], scopes: Sequence[Scope]
                  ) -> frozenset[str]:
    """Names a completion may use without defining them (builtins not included): the imports'
    names and top-level definitions, and the names of the scopes around the cursor (a hole's
    `scopes`)."""
    return module_names(doc, import_names) | scope_names(doc, scopes)


def module_names(doc: Document, import_names: Iterable[str]) -> frozenset[str]:
    """The names the file's imports bind (read once, by the context builder) and its top-level
    definitions: visible everywhere in it. In a broken file (tree-sitter may fold everything
    after an unclosed bracket into one error), each top-level unit of the text is parsed on its
    own, so the definitions and imports after the breakage still count."""
    if doc.tree is None:
        return frozenset()
    table = table_for(doc.language)
    names = set(import_names)
    budget = [MAX_NODES]
    if doc.tree.root_node.has_error and doc.spec is not None:
        for root in _unit_roots(doc):
            for child in root.named_children:
                _collect(child, doc.source, table, names, budget, top=False)
        return frozenset(names)
    for child in doc.tree.root_node.named_children:
        if child.type not in table.imports:
            _collect(child, doc.source, table, names, budget, top=False)
    return frozenset(names)


MAX_UNITS = 2_000


def _unit_roots(doc: Document) -> Iterator[Node]:
    """The roots of the file's top-level units (analysis/documents/trial.py), each parsed on
    its own."""
    assert doc.spec is not None
    parser = doc.spec.parser()
    src = doc.source
    python = doc.spec.name == "python"
    pos = 0
    for _ in range(MAX_UNITS):
        if pos >= len(src):
            return
        start, end = unit_span(src, pos, pos, python, doc.tree)
        end = max(end, src.find(b"\n", pos) + 1 or len(src))
        parser.included_ranges = [Range(point_of(src, start), point_of(src, end), start, end)]
        yield parser.parse(src).root_node
        pos = end


def scope_names(doc: Document, scopes: Sequence[Scope]) -> frozenset[str]:
    """Locals, parameters and (bare-member languages) members of the given enclosing scopes:
    the part of `visible_names` that changes from one function to the next."""
    if doc.tree is None:
        return frozenset()
    table = table_for(doc.language)
    names: set[str] = set()
    budget = [MAX_NODES]
    root = doc.tree.root_node
    for scope in scopes:
        node = _node_of(root, scope, table)
        if node is None:
            continue
        if scope.kind in ("function", "method"):
            _collect(node, doc.source, table, names, budget, top=True)
        elif doc.language in _BARE_MEMBERS:  # members used without `this.`: their names
            body = node.child_by_field_name("body") or node
            for member in body.named_children:
                _collect(member, doc.source, table, names, budget, top=False)
        if scope.name and scope.name != "(anonymous)":
            names.add(scope.name)
    return frozenset(names)


def _node_of(root: Node, scope: Scope, table: SyntaxTable) -> Node | None:
    """The scope's node in this tree: the scope-type node spanning exactly its bytes."""
    node = root.descendant_for_byte_range(scope.start, scope.end)
    for _ in range(8):  # a node of the same span may sit above the smallest one
        if node is None or (node.start_byte, node.end_byte) != (scope.start, scope.end):
            return None
        if node.type in table.scopes:
            return node
        node = node.parent
    return None


def _collect(node: Node, src: bytes, table: SyntaxTable, out: set[str], budget: list[int],
             top: bool) -> None:
    """Definitions under `node`; function-like nodes below give only their own name (and, for
    `top`, the node itself is the scope being read, so its body is walked)."""
    cursor = node.walk()
    stack: list[Step] = []  # (type, field under its parent) of the ancestors
    field: str | None = None
    while budget[0] > 0:
        budget[0] -= 1
        current = cursor.node
        if current is None:
            break
        kind = current.type
        if kind in _NAME_TYPES:
            if is_binding(steps_up(stack, field)):
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
