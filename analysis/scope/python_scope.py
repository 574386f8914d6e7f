"""Python name uses of one scope: which identifiers a piece of code reads, binds or declares.

Nested scopes (functions, lambdas, classes, comprehensions) are folded in: their own bindings
stay inside, their free reads count as reads of the enclosing scope, and a nested `def`/`class`
binds its name in the enclosing scope. Used by the extract-function refactor.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

from tree_sitter import Node

Kind = Literal["load", "store", "both", "param", "decl"]

NESTED = frozenset({"function_definition", "lambda", "class_definition", "list_comprehension",
                    "set_comprehension", "dictionary_comprehension", "generator_expression"})
_TARGET_WRAPPERS = frozenset({"pattern_list", "tuple_pattern", "list_pattern", "list_splat_pattern",
                              "as_pattern_target", "tuple", "parenthesized_expression",
                              "expression_list"})
_TARGET_FIELDS = {"assignment": "left", "for_statement": "left", "for_in_clause": "left",
                  "named_expression": "name", "as_pattern": "alias", "augmented_assignment": "left"}
_PARAM_PARENTS = frozenset({"parameters", "lambda_parameters"})


@dataclass(frozen=True, slots=True)
class Use:
    """One identifier use: name, byte offset, and what it does to the name."""

    name: str
    offset: int
    kind: Kind


def _is(field_owner: Node, field: str, node: Node) -> bool:
    target = field_owner.child_by_field_name(field)
    return target is not None and target.id == node.id


def _up(ident: Node, path: Sequence[Node], k: int) -> Node | None:
    """The k-th ancestor of `ident` (1: its parent): from `path` (its ancestors, nearest last)
    when that reaches so far, else by `Node.parent` (which costs the node's depth)."""
    if k <= len(path):
        return path[-k]
    node: Node | None = path[0] if path else ident
    for _ in range(k - len(path)):
        node = node.parent if node is not None else None
    return node


def kind_of(ident: Node, path: Sequence[Node] = ()) -> Kind | None:
    """What an identifier does in its scope; None when it is not a scope name (`obj.attr`).

    `path` holds the identifier's ancestors, nearest last, as far as the caller's walk knows
    them (a walk always does); without it they are found with `Node.parent`.
    """
    p = _up(ident, path, 1)
    if p is None:
        return "load"
    t = p.type
    if t == "attribute":
        return None if _is(p, "attribute", ident) else "load"
    if t == "keyword_argument":
        return None if _is(p, "name", ident) else "load"
    if t in ("function_definition", "class_definition") and _is(p, "name", ident):
        return "store"
    if t in ("global_statement", "nonlocal_statement"):
        return "decl"
    grand = _up(ident, path, 2) if t in ("expression_list", "dotted_name", "list_splat_pattern",
                                         "dictionary_splat_pattern") else None
    if t == "delete_statement" or (t == "expression_list" and grand is not None
                                   and grand.type == "delete_statement"):
        return "store"
    if t == "dotted_name":
        return _import_kind(ident, p, grand)
    if t == "aliased_import":
        return "store" if _is(p, "alias", ident) else None
    if t in _PARAM_PARENTS or (t in ("default_parameter", "typed_default_parameter")
                               and _is(p, "name", ident)):
        return "param"
    if t == "typed_parameter" or (t in ("list_splat_pattern", "dictionary_splat_pattern")
                                  and grand is not None and grand.type in _PARAM_PARENTS):
        return "param" if p.named_children and p.named_children[0].id == ident.id else "load"
    return _target_kind(ident, path)


def _import_kind(ident: Node, dotted: Node, owner: Node | None) -> Kind | None:
    if owner is None or owner.type == "aliased_import":
        return None  # `import a.b as c`: only the alias binds
    if owner.type == "import_statement":
        return "store" if dotted.named_children[0].id == ident.id else None  # `import a.b` binds a
    if owner.type == "import_from_statement" and not _is(owner, "module_name", dotted):
        return "store"
    return None


def _target_kind(ident: Node, path: Sequence[Node]) -> Kind:
    node, k = ident, 1
    owner = _up(ident, path, k)
    while owner is not None and owner.type in _TARGET_WRAPPERS:
        node, k = owner, k + 1
        owner = _up(ident, path, k)
    if owner is not None and owner.type in _TARGET_FIELDS and \
            _is(owner, _TARGET_FIELDS[owner.type], node):
        return "both" if owner.type == "augmented_assignment" else "store"
    return "load"


def scope_uses(nodes: Iterable[Node]) -> list[Use]:
    """Every use in `nodes` that belongs to their scope, in source order."""
    out: list[Use] = []
    for node in nodes:
        _collect(node, out)
    out.sort(key=lambda u: u.offset)
    return out


@dataclass(slots=True)
class _Scope:
    """A nested scope being read: its name node and the uses found inside it so far."""

    name: Node | None
    uses: list[Use]


def _collect(top: Node, out: list[Use]) -> None:
    """The uses under `top`, in pre-order; a nested scope adds its free reads and its name.

    One loop with an explicit stack (nesting depth is the user's: no recursion), keeping the
    path of ancestors so that `kind_of` never climbs with `Node.parent`.
    """
    scopes = [_Scope(None, out)]
    path: list[Node] = []
    stack: list[tuple[int, Node | _Scope]] = [(_VISIT, top)]
    while stack:
        event, item = stack.pop()
        if event == _LEAVE:
            path.pop()
            continue
        if event == _CLOSE:
            assert isinstance(item, _Scope)
            scopes.pop()
            _fold(item, scopes[-1].uses)
            continue
        assert isinstance(item, Node)
        if item.type == "identifier":
            kind = kind_of(item, path)
            if kind is not None:
                scopes[-1].uses.append(Use(_text(item), item.start_byte, kind))
            continue
        children = item.children
        if item.type in NESTED:
            name = item.child_by_field_name("name") if item.type != "lambda" else None
            scope = _Scope(name, [])
            scopes.append(scope)
            stack.append((_CLOSE, scope))
            if name is not None:
                children = [c for c in children if c.id != name.id]
        stack.append((_LEAVE, item))
        path.append(item)
        stack.extend((_VISIT, child) for child in reversed(children))


_VISIT, _LEAVE, _CLOSE = 0, 1, 2


def _fold(scope: _Scope, out: list[Use]) -> None:
    """A finished nested scope, seen from outside: its free reads, then its name bound."""
    own = {u.name for u in scope.uses if u.kind in ("store", "both", "param")}
    out.extend(Use(u.name, u.offset, "load") for u in scope.uses
               if u.kind in ("load", "both") and u.name not in own)
    if scope.name is not None:
        out.append(Use(_text(scope.name), scope.name.start_byte, "store"))


def _text(node: Node) -> str:
    return node.text.decode("utf-8", "replace") if node.text else ""
