"""Members: the attributes an object named in a completion has, where that can be known.

For the naming stage's member check (`self.typs`, `this.itms`, `pricing.totl()`): the members
of `self`/`cls` (Python) or `this` (JavaScript/TypeScript) are those of the class around the
cursor: its methods and class-level names, every attribute assigned on `self`/`this` anywhere in
it, TypeScript parameter properties, and the members of its bases, when every base is in the
file, in the workspace index (its file is read) or a Python builtin. A class name of the file
has the same members; an imported module the workspace index holds has its top-level names.

Anything that makes the answer uncertain gives None, and the caller stays silent: a base that is
none of those (a library class), a metaclass, `__getattr__`/`__getattribute__`, `setattr(self,
...)`, `self.__dict__`, `this[...] = `, `Object.assign(this, ...)`, a module whose text makes
names at run time (a star import, `globals()`, `sys.modules[...]`, `setattr`, `__getattr__`), a
name the enclosing functions bind themselves (a local `token` is not the module `token`), an
object that is none of the above. Work is bounded: at most
MAX_NODES nodes per class, MAX_FILES files read per answer set, bases MAX_DEPTH deep.
"""

from __future__ import annotations

import builtins
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from tree_sitter import Node

from analysis.context.hole import Scope
from analysis.documents.document import Document
from analysis.documents.store import read_source
from analysis.documents.trial import unit_view
from analysis.index.workspace_index import SymbolIndex
from analysis.scope.imports import ImportRef, extract_imports
from analysis.scope.visible import module_names, scope_names

MAX_NODES = 50_000
MAX_FILES = 4
MAX_DEPTH = 4
MAX_READ_BYTES = 2_000_000
PY_CLASSES = ("class_definition",)
JS_CLASSES = ("class_declaration", "class", "abstract_class_declaration")
JS_LANGUAGES = frozenset({"javascript", "typescript", "tsx"})
_EMPTY_BASES = frozenset({"object", "ABC", "Generic", "Protocol"})
_PLAIN_METACLASSES = frozenset({"ABCMeta", "abc.ABCMeta"})  # add no members
_PY_OBJECT = frozenset(dir(object))
_JS_OBJECT = frozenset("constructor toString toLocaleString valueOf hasOwnProperty "
                       "isPrototypeOf propertyIsEnumerable".split())
_DYNAMIC_PY = frozenset({"__getattr__", "__getattribute__"})
# In a module's text: a star import or re-export, names made through globals(), sys.modules or
# setattr, a module-level __getattr__: its top-level definitions are not all its members.
_DYNAMIC_MODULE = (b"import *", b"export *", b"globals()", b"sys.modules[", b"setattr(",
                   b"__getattr__", b"module.exports[", b"exports[")


@dataclass(frozen=True, slots=True)
class MemberUse:
    """`obj.name` in a span: the object as written, the member, its span, whether assigned."""

    obj: str
    name: str
    start: int  # of the member's name
    end: int
    defines: bool  # `self.x = ...`: a member the code makes, not one it needs


def member_uses(root: Node, start: int, end: int, language: str) -> list[MemberUse]:
    """`name.member` and `this.member` whose member name lies inside [start, end), in order;
    only objects written as a bare name (`a.b.c` gives `a.b`, not `(a.b).c`)."""
    if end <= start:
        return []
    python = language == "python"
    if not python and language not in JS_LANGUAGES:
        return []
    node = root.descendant_for_byte_range(start, end)
    for _ in range(2):  # the member expression may hang just above the smallest cover
        if node is not None and node.parent is not None:
            node = node.parent
    out: list[MemberUse] = []
    stack = [node] if node is not None else []
    budget = MAX_NODES
    while stack and budget > 0:
        budget -= 1
        n = stack.pop()
        if n.end_byte <= start or n.start_byte >= end:
            continue
        use = _member(n, python)
        if use is not None and start <= use.start and use.end <= end:
            out.append(use)
        stack.extend(n.children)
    out.sort(key=lambda u: u.start)
    return out


def _member(node: Node, python: bool) -> MemberUse | None:
    if node.type != ("attribute" if python else "member_expression"):
        return None
    obj = node.child_by_field_name("object")
    name = node.child_by_field_name("attribute" if python else "property")
    if obj is None or name is None or obj.type not in ("identifier", "this") or \
            name.type not in ("identifier", "property_identifier",
                              "private_property_identifier"):
        return None
    parent = node.parent
    defines = parent is not None and parent.type in ("assignment", "assignment_expression") \
        and parent.child_by_field_name("left") == node
    return MemberUse(_text(obj), _text(name), name.start_byte, name.end_byte, defines)


def _text(node: Node) -> str:
    return node.text.decode("utf-8", "replace") if node.text else ""


class MemberFacts:
    """What members the objects at one cursor have; each answer is computed once, on demand."""

    def __init__(self, doc: Document, scopes: Sequence[Scope],
                 index: SymbolIndex | None = None) -> None:
        self.doc = doc
        self.scopes = tuple(scopes)
        self.index = index
        self._answers: dict[str, frozenset[str] | None] = {}
        self._docs: dict[str, Document | None] = {}
        self._imports: tuple[ImportRef, ...] | None = None

    def of(self, obj: str) -> frozenset[str] | None:
        """The members of the object named `obj` at the cursor; None when not known."""
        if obj not in self._answers:
            self._answers[obj] = self._of(obj)
        return self._answers[obj]

    def _of(self, obj: str) -> frozenset[str] | None:
        doc = self.doc
        if doc.tree is None:
            return None
        python = doc.language == "python"
        if (python and obj in ("self", "cls")) or (not python and obj == "this"):
            node = self._cursor_class()
            return None if node is None else self._class_members(doc, node, 0)
        if obj in self._locals():
            return None  # a local or parameter of that name: its type is not known here
        local = _top_class(doc, obj)
        if local is not None:
            return self._class_members(doc, local, 0)
        return self._module_members(obj)

    def _locals(self) -> frozenset[str]:
        functions = [s for s in self.scopes if s.kind in ("function", "method")]
        return scope_names(self.doc, functions) if functions else frozenset()

    def _cursor_class(self) -> Node | None:
        """The class around the cursor whose instance `self`/`this` is there, or None (`this`
        inside a plain function nested in a method is not the instance)."""
        for i in range(len(self.scopes) - 1, -1, -1):
            scope = self.scopes[i]
            if scope.kind == "class":
                return _node_at(self.doc, scope, PY_CLASSES + JS_CLASSES)
            if scope.kind == "function" and self.doc.language in JS_LANGUAGES and \
                    i and self.scopes[i - 1].kind != "class":
                return None
        return None

    # ------------------------------------------------------------------ classes

    def _class_members(self, doc: Document, node: Node, depth: int) -> frozenset[str] | None:
        found = (_py_class(doc, node) if doc.language == "python" else _js_class(node))
        if found is None:
            return None
        names, bases = found
        for base in bases:
            inherited = self._base_members(doc, base, depth + 1)
            if inherited is None:
                return None
            names |= inherited
        return frozenset(names | (_PY_OBJECT if doc.language == "python" else _JS_OBJECT))

    def _base_members(self, doc: Document, base: str, depth: int) -> frozenset[str] | None:
        if doc.language == "python" and base.rsplit(".", 1)[-1] in _EMPTY_BASES:
            return frozenset()
        if depth > MAX_DEPTH:
            return None
        if "." in base:  # `module.Base`: the class in a workspace module this file imports
            alias, _, name = base.rpartition(".")
            other = self._module_doc(alias) if doc is self.doc else None
            node = _top_class(other, name) if other is not None else None
            return None if node is None or other is None else \
                self._class_members(other, node, depth)
        local = _top_class(doc, base)
        if local is not None:
            return self._class_members(doc, local, depth)
        if doc.language == "python" and isinstance(getattr(builtins, base, None), type):
            return frozenset(dir(getattr(builtins, base)))
        if self.index is None:
            return None
        paths = {s.path for s in self.index.lookup(base) if s.kind == "class"}
        if len(paths) != 1:
            return None  # not in the workspace, or more than one class of that name
        other = self._read(next(iter(paths)))
        node = _top_class(other, base) if other is not None else None
        return None if node is None or other is None else \
            self._class_members(other, node, depth)

    # ------------------------------------------------------------------ modules

    def _module_doc(self, alias: str) -> Document | None:
        """The workspace file of the module imported as `alias`, or None."""
        if self.index is None:
            return None
        if self._imports is None:
            self._imports = extract_imports(self.doc)
        refs = [r for r in self._imports if alias in r.aliases]
        if len(refs) != 1 or not _binds_module(refs[0], alias, self.doc.language):
            return None
        paths = self.index.resolve(_module_targets(refs[0], alias))
        return self._read(next(iter(paths))) if len(paths) == 1 else None

    def _module_members(self, alias: str) -> frozenset[str] | None:
        other = self._module_doc(alias)
        if other is None or other.tree is None:
            return None
        if any(mark in other.source for mark in _DYNAMIC_MODULE):
            return None  # names this file makes at run time, or takes from elsewhere
        names = module_names(other, ())
        return None if "__getattr__" in names else names

    def _read(self, path: str) -> Document | None:
        if path not in self._docs:
            if len(self._docs) >= MAX_FILES:
                return None
            loaded = read_source(Path(path), max_bytes=MAX_READ_BYTES)
            self._docs[path] = loaded.document
        return self._docs[path]


def _binds_module(ref: ImportRef, alias: str, language: str) -> bool:
    """True when `alias` names a whole module: `import m`, `import a.m as m`, `from a import m`
    (when a/m is a file), `import * as m from "./m"`."""
    if language != "python":
        return ref.names == ("*",)
    if ref.text.startswith("import "):
        return "." not in ref.module or ref.text.rstrip().endswith(f" as {alias}")
    return ref.text.startswith("from ")


def _module_targets(ref: ImportRef, alias: str) -> Iterable[str]:
    if ref.text.startswith("from "):
        name = ref.names[ref.aliases.index(alias)]
        return tuple(t for t in ref.targets if t.endswith("/" + name))
    return ref.targets


def _node_at(doc: Document, scope: Scope, types: tuple[str, ...]) -> Node | None:
    assert doc.tree is not None
    node = doc.tree.root_node.descendant_for_byte_range(scope.start, scope.end)
    for _ in range(8):
        if node is None:
            return None
        if node.type in types and node.start_byte == scope.start:
            return node
        node = node.parent
    return None


def _top_class(doc: Document, name: str) -> Node | None:
    """The class called `name` at the top level of the file (inside a decorator too); where
    the tree does not show it (a view of one unit, a file broken elsewhere), the unit of the
    line at column 0 that defines it, parsed on its own."""
    found = _top_class_in(doc, name)
    if found is not None or doc.tree is None:
        return found
    pattern = (_PY_CLASS_LINE if doc.language == "python" else _JS_CLASS_LINE).replace(
        b"NAME", re.escape(name.encode()))
    match = re.search(pattern, doc.source)
    if match is None:
        return None
    return _top_class_in(unit_view(doc, match.start(1)), name)


_PY_CLASS_LINE = rb"(?m)^(class)\s+NAME\b"
_JS_CLASS_LINE = rb"(?m)^(?:export\s+)?(?:default\s+)?(?:abstract\s+)?(class)\s+NAME\b"


def _top_class_in(doc: Document, name: str) -> Node | None:
    if doc.tree is None:
        return None
    for child in doc.tree.root_node.named_children:
        node = child
        if node.type in ("decorated_definition", "export_statement"):
            node = node.child_by_field_name("definition") or node.child_by_field_name(
                "declaration") or node
        if node.type in PY_CLASSES + JS_CLASSES:
            found = node.child_by_field_name("name")
            if found is not None and _text(found) == name:
                return node
    return None


def _py_class(doc: Document, node: Node) -> tuple[set[str], list[str]] | None:
    """(members, base names) of a Python class; None when it is dynamic."""
    names: set[str] = set()
    bases: list[str] = []
    supers = node.child_by_field_name("superclasses")
    for arg in supers.named_children if supers is not None else ():
        if arg.type == "keyword_argument":
            value = arg.child_by_field_name("value")
            if value is None or _text(value) not in _PLAIN_METACLASSES:
                return None  # metaclass=...: members this reader cannot see
            continue
        if arg.type not in ("identifier", "attribute"):
            return None  # `Generic[T]`, a call...: not followed
        bases.append(_text(arg))
    body = node.child_by_field_name("body")
    if body is None:
        return names, bases
    stack: list[tuple[Node, bool]] = [(c, True) for c in body.named_children]
    budget = MAX_NODES
    while stack:
        budget -= 1
        if budget <= 0:
            return None
        n, class_level = stack.pop()
        kind = n.type
        if kind in ("function_definition", "class_definition"):
            name = n.child_by_field_name("name")
            if name is not None and class_level:
                names.add(_text(name))
                if _text(name) in _DYNAMIC_PY:
                    return None
            inner = n.child_by_field_name("body")
            if inner is not None and kind == "function_definition":
                stack.extend((c, False) for c in inner.named_children)
            continue
        if kind in ("assignment", "augmented_assignment"):
            left = n.child_by_field_name("left")
            if left is not None:
                names.update(_py_targets(left, class_level))
        elif kind == "attribute" and _text(n) in ("self.__dict__", "cls.__dict__"):
            return None
        elif kind == "call":
            fn = n.child_by_field_name("function")
            if fn is not None and _text(fn) in ("setattr", "vars"):
                return None
        stack.extend((c, class_level) for c in n.named_children)
    return names, bases


def _py_targets(left: Node, class_level: bool) -> set[str]:
    out: set[str] = set()
    stack = [left]
    while stack:
        n = stack.pop()
        if n.type == "identifier" and class_level:
            out.add(_text(n))
        elif n.type == "attribute":
            obj, name = n.child_by_field_name("object"), n.child_by_field_name("attribute")
            if obj is not None and name is not None and _text(obj) in ("self", "cls"):
                out.add(_text(name))
        elif n.type in ("pattern_list", "tuple_pattern", "list_pattern", "expression_list"):
            stack.extend(n.named_children)
    return out


def _js_class(node: Node) -> tuple[set[str], list[str]] | None:
    """(members, base names) of a JavaScript/TypeScript class; None when it is dynamic."""
    names: set[str] = set()
    bases: list[str] = []
    for child in node.children:
        if child.type == "class_heritage":
            for clause in child.named_children:
                value = clause.child_by_field_name("value") if clause.type == "extends_clause" \
                    else (clause if clause.type == "identifier" else None)
                if clause.type in ("extends_clause", "identifier"):
                    if value is None or value.type != "identifier":
                        return None  # `extends mixin(Base)`, `extends ns.Base`: not followed
                    bases.append(_text(value))
    body = node.child_by_field_name("body")
    stack = list(body.named_children) if body is not None else []
    budget = MAX_NODES
    while stack:
        budget -= 1
        if budget <= 0:
            return None
        n = stack.pop()
        kind = n.type
        if kind in ("method_definition", "public_field_definition", "field_definition",
                    "method_signature", "abstract_method_signature", "property_signature"):
            name = n.child_by_field_name("name") or n.child_by_field_name("property")
            if name is not None and n.parent is not None and n.parent.type == "class_body":
                names.add(_text(name).lstrip("#") if name.type != "private_property_identifier"
                          else _text(name))
        elif kind in ("required_parameter", "optional_parameter") and any(
                c.type == "accessibility_modifier" or c.type == "readonly" for c in n.children):
            pattern = n.child_by_field_name("pattern")
            if pattern is not None:
                names.add(_text(pattern))
        elif kind == "assignment_expression":
            left = n.child_by_field_name("left")
            if left is not None and left.type == "subscript_expression" and \
                    _text(left).startswith("this["):
                return None
            if left is not None and left.type == "member_expression":
                obj, prop = left.child_by_field_name("object"), left.child_by_field_name(
                    "property")
                if obj is not None and obj.type == "this" and prop is not None:
                    names.add(_text(prop))
        elif kind == "call_expression" and _text(n).startswith("Object.assign(this"):
            return None
        stack.extend(n.named_children)
    return names, bases
