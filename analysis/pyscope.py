"""Python name uses of one scope: which identifiers a piece of code reads, binds or declares.

Nested scopes (functions, lambdas, classes, comprehensions) are folded in: their own bindings
stay inside, their free reads count as reads of the enclosing scope, and a nested `def`/`class`
binds its name in the enclosing scope. Used by the extract-function refactor.
"""

from __future__ import annotations

from collections.abc import Iterable
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


def kind_of(ident: Node) -> Kind | None:
    """What an identifier does in its scope; None when it is not a scope name (`obj.attr`)."""
    p = ident.parent
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
    if t == "delete_statement" or (t == "expression_list" and p.parent is not None
                                   and p.parent.type == "delete_statement"):
        return "store"
    if t == "dotted_name":
        return _import_kind(ident, p)
    if t == "aliased_import":
        return "store" if _is(p, "alias", ident) else None
    if t in _PARAM_PARENTS or (t in ("default_parameter", "typed_default_parameter")
                               and _is(p, "name", ident)):
        return "param"
    if t == "typed_parameter" or (t in ("list_splat_pattern", "dictionary_splat_pattern")
                                  and p.parent is not None and p.parent.type in _PARAM_PARENTS):
        return "param" if p.named_children and p.named_children[0].id == ident.id else "load"
    return _target_kind(ident)


def _import_kind(ident: Node, dotted: Node) -> Kind | None:
    owner = dotted.parent
    if owner is None or owner.type == "aliased_import":
        return None  # `import a.b as c`: only the alias binds
    if owner.type == "import_statement":
        return "store" if dotted.named_children[0].id == ident.id else None  # `import a.b` binds a
    if owner.type == "import_from_statement" and not _is(owner, "module_name", dotted):
        return "store"
    return None


def _target_kind(ident: Node) -> Kind:
    node = ident
    while node.parent is not None and node.parent.type in _TARGET_WRAPPERS:
        node = node.parent
    owner = node.parent
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


def _collect(node: Node, out: list[Use]) -> None:
    stack = [node]
    while stack:
        n = stack.pop()
        if n.type == "identifier":
            kind = kind_of(n)
            if kind is not None:
                out.append(Use(_text(n), n.start_byte, kind))
            continue
        if n.type in NESTED:
            _nested(n, out)
            continue
        stack.extend(reversed(n.children))


def _nested(scope: Node, out: list[Use]) -> None:
    name = scope.child_by_field_name("name") if scope.type != "lambda" else None
    inner: list[Use] = []
    for child in scope.children:
        if name is None or child.id != name.id:
            _collect(child, inner)
    own = {u.name for u in inner if u.kind in ("store", "both", "param")}
    out.extend(Use(u.name, u.offset, "load") for u in inner
               if u.kind in ("load", "both") and u.name not in own)
    if name is not None:
        out.append(Use(_text(name), name.start_byte, "store"))


def _text(node: Node) -> str:
    return node.text.decode("utf-8", "replace") if node.text else ""
