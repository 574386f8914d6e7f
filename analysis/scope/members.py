"""Members: the attributes an object named in a completion has, where that can be known.

For the naming stage's member check (`self.typs`, `this.itms`, `pricing.totl()`): the members
of `self`/`cls` (Python) or `this` (JavaScript/TypeScript) are those of the class around the
cursor: its methods and class-level names (`__slots__` names too), every attribute assigned on
`self`/`this` anywhere in it, `Name.attr = ...` lines of its file, names its instance dict gets
by literal (`vars(self).setdefault('x', ...)`), TypeScript parameter properties, and the
members of its bases, when every base is in the file, in the workspace index (its file is read;
a base written `module.Base` is followed through the imports of the file that names it,
whichever file that is), a Python builtin, or a type of a C module of the standard library whose
instances carry no `__dict__` (`_random.Random`, `_socket.socket`: `dir()` then lists every
attribute they can have). A class name of the file has the same members; an imported module the
workspace index holds has its top-level names. The file's imports are read from the whole file,
also when the cursor's facts come from a view of its unit (a file broken elsewhere); in a broken
file an import line that the file's tree lost is parsed on its own.

Anything that makes the answer uncertain gives None, and the caller stays silent: a base that is
none of those (a library class, a C type whose instances hold a `__dict__`), a metaclass,
`__getattr__`/`__getattribute__`, `setattr(self, ...)` or on the class, `vars(self)` or
`self.__dict__` written or handed on (reading it, `'x' in cls.__dict__`, is fine), `this[...] =
`, `Object.assign(this, ...)`, a class whose own code (or a base's) reads a member that none of
them has and that nothing visible defines (a template base whose subclasses, or a mixin whose
partners, live outside the workspace: they may supply any name), a module whose text makes names
at run time (a star import, `globals()`, `sys.modules[...]`, `setattr`, `__getattr__`, an enum
exporting its members), a name the enclosing functions bind themselves (a local `token` is not
the module `token`), an object that is none of the above. Work is bounded: at most MAX_NODES
nodes per class, MAX_FILES files read per answer set, bases MAX_DEPTH deep.
"""

from __future__ import annotations

import builtins
import importlib
import importlib.machinery
import importlib.util
import re
import sys
from collections.abc import Container, Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
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
# setattr, a module-level __getattr__, an enum that puts its members into the module's globals
# (`enum.global_enum`, `IntEnum._convert_(...)`): its top-level definitions are not all its
# members.
_DYNAMIC_MODULE = (b"import *", b"export *", b"globals()", b"sys.modules[", b"setattr(",
                   b"__getattr__", b"module.exports[", b"exports[", b"global_enum",
                   b"._convert_(")


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
    target, parent = node, node.parent
    while parent is not None and parent.type in _TARGET_LISTS:  # `self.a, self.b = ...`
        target, parent = parent, parent.parent
    defines = parent is not None and parent.type in ("assignment", "assignment_expression") \
        and parent.child_by_field_name("left") == target
    return MemberUse(_text(obj), _text(name), name.start_byte, name.end_byte, defines)


_TARGET_LISTS = frozenset({"pattern_list", "tuple_pattern", "list_pattern", "expression_list",
                           "array_pattern"})


def _text(node: Node) -> str:
    return node.text.decode("utf-8", "replace") if node.text else ""


class MemberFacts:
    """What members the objects at one cursor have; each answer is computed once, on demand."""

    def __init__(self, doc: Document, scopes: Sequence[Scope],
                 index: SymbolIndex | None = None, file: Document | None = None,
                 cursor: int = -1) -> None:
        """`doc` is where the cursor's facts are read (perhaps a view of its unit alone);
        `file` the whole file, for its imports (default: `doc`); `cursor` the byte offset of
        the cursor (a member use around it is the text being typed, not the class's code)."""
        self.doc = doc
        self.cursor = cursor
        self.file = file if file is not None else doc
        self.scopes = tuple(scopes)
        self.index = index
        # obj -> (members, members the class's code reads that nothing visible defines)
        self._answers: dict[str, tuple[frozenset[str], frozenset[str]] | None] = {}
        self._docs: dict[str, Document | None] = {}
        self._imports: dict[str, tuple[ImportRef, ...]] = {}

    def of(self, obj: str, made: Iterable[str] = ()) -> frozenset[str] | None:
        """The members of the object named `obj` at the cursor; None when not known. `made`:
        the members the completion itself gives `obj` (`self.host = ...` in an `__init__`
        being written): they may be the ones the rest of the class reads."""
        if obj not in self._answers:
            self._answers[obj] = self._of(obj)
        answer = self._answers[obj]
        if answer is None:
            return None
        names, missing = answer
        return None if missing and not missing <= set(made) else names

    def _of(self, obj: str) -> tuple[frozenset[str], frozenset[str]] | None:
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
        module = self._module_members(obj)
        return None if module is None else (module, frozenset())

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

    def _class_members(self, doc: Document, node: Node, depth: int
                       ) -> tuple[frozenset[str], frozenset[str]] | None:
        """The members of a class and its bases (None when not all are known), and the members
        the code of the class or of a base reads that none of them has and nothing visible
        defines (not the workspace index, no class or assignment in their files): unless the
        completion makes them, a subclass, a mixin partner or outside code supplies them, so
        others may come from there too (a template base whose subclasses live elsewhere)."""
        found = self._class_facts(doc, node, depth)
        if found is None:
            return None
        names, used, docs = found
        missing = frozenset(
            name for name in used - names
            if not (self.index is not None and self.index.lookup(name))
            and not any(_defined_in(other, name) for other in docs))
        return names, missing

    def _class_facts(self, doc: Document, node: Node, depth: int
                     ) -> tuple[frozenset[str], frozenset[str], tuple[Document, ...]] | None:
        """(members, members its code and its bases' code read, the files they are in); None
        when dynamic."""
        cursor = self.cursor if doc is self.doc else -1
        found = _py_class(doc, node, cursor) if doc.language == "python" else \
            _js_class(node, cursor)
        if found is None:
            return None
        names, bases, used = found
        docs: tuple[Document, ...] = (doc,)
        for base in bases:
            inherited = self._base_facts(doc, base, depth + 1)
            if inherited is None:
                return None
            names |= inherited[0]
            used |= inherited[1]
            docs += tuple(d for d in inherited[2] if all(d is not o for o in docs))
        return (frozenset(names | (_PY_OBJECT if doc.language == "python" else _JS_OBJECT)),
                frozenset(used), docs)

    def _base_facts(self, doc: Document, base: str, depth: int
                    ) -> tuple[frozenset[str], frozenset[str], tuple[Document, ...]] | None:
        """(members, members its code reads, files) of the base class `base` named in `doc`."""
        if doc.language == "python" and base.rsplit(".", 1)[-1] in _EMPTY_BASES:
            return frozenset(), frozenset(), ()
        if depth > MAX_DEPTH:
            return None
        if "." in base:  # `module.Base`: the class in a module the file naming it imports
            alias, _, name = base.rpartition(".")
            if "." in alias:
                return None  # `a.b.Base`: not followed
            other = self._module_doc(alias, doc)
            if other is None:
                c_type = self._c_type_members(doc, alias, name)
                return None if c_type is None else (c_type, frozenset(), ())
            node = _top_class(other, name)
            return None if node is None else self._class_facts(other, node, depth)
        local = _top_class(doc, base)
        if local is not None:
            return self._class_facts(doc, local, depth)
        if doc.language == "python" and isinstance(getattr(builtins, base, None), type):
            return frozenset(dir(getattr(builtins, base))), frozenset(), ()
        if self.index is None:
            return None
        paths = {s.path for s in self.index.lookup(base) if s.kind == "class"}
        if len(paths) != 1:
            return None  # not in the workspace, or more than one class of that name
        other = self._read(next(iter(paths)))
        node = _top_class(other, base) if other is not None else None
        return None if node is None or other is None else \
            self._class_facts(other, node, depth)

    # ------------------------------------------------------------------ modules

    def _imports_of(self, doc: Document) -> tuple[ImportRef, ...]:
        """The imports of `doc` (of the whole file for the cursor's own document)."""
        if doc.uri not in self._imports:
            refs = file_imports(self.file if doc is self.doc else doc)
            if doc is self.doc and self.file is not doc:  # and those the unit's tree shows
                lines = {r.line for r in refs}
                refs = tuple(sorted(refs + tuple(r for r in extract_imports(doc)
                                                 if r.line not in lines), key=lambda r: r.line))
            self._imports[doc.uri] = refs
        return self._imports[doc.uri]

    def _module_ref(self, alias: str, doc: Document) -> ImportRef | None:
        """The one import of `doc` that binds `alias` to a whole module, or None."""
        refs = [r for r in self._imports_of(doc) if alias in r.aliases]
        if len(refs) != 1 or not _binds_module(refs[0], alias, doc.language):
            return None
        return refs[0]

    def _module_doc(self, alias: str, doc: Document | None = None) -> Document | None:
        """The workspace file of the module `doc` (default: the cursor's) imports as `alias`,
        or None."""
        doc = self.doc if doc is None else doc
        if self.index is None:
            return None
        ref = self._module_ref(alias, doc)
        if ref is None:
            return None
        paths = self.index.resolve(_module_targets(ref, alias))
        return self._read(next(iter(paths))) if len(paths) == 1 else None

    def _c_type_members(self, doc: Document, alias: str, name: str) -> frozenset[str] | None:
        """Members of `alias.name` when `alias` is a C module of the standard library that the
        workspace does not shadow, `import`ed as such, and `name` a type of it whose instances
        have no `__dict__`; None otherwise."""
        if doc.language != "python":
            return None
        ref = self._module_ref(alias, doc)
        if ref is None or not ref.text.startswith("import ") or "." in ref.module or \
                (self.index is not None and self.index.resolve(ref.targets)):
            return None
        return stdlib_c_type_members(ref.module, name)

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


def file_imports(doc: Document) -> tuple[ImportRef, ...]:
    """The imports of a whole file; where its tree has errors, an import line at column 0 that
    the tree does not show (swallowed by an unclosed bracket above it) is parsed on its own."""
    refs = list(extract_imports(doc))
    if doc.tree is None or not doc.tree.root_node.has_error or doc.spec is None:
        return tuple(refs)
    seen = {r.line for r in refs}
    pattern = _PY_IMPORT_LINE if doc.language == "python" else _JS_IMPORT_LINE
    src = doc.source
    line, at = 0, 0
    for count, match in enumerate(re.finditer(pattern, src)):
        if count >= MAX_IMPORT_LINES:
            break
        line += src.count(b"\n", at, match.start())
        at = match.start()
        if line in seen:
            continue
        for ref in extract_imports(unit_view(doc, match.start())):
            if ref.line not in seen:
                seen.add(ref.line)
                refs.append(ref)
    refs.sort(key=lambda r: r.line)
    return tuple(refs)


MAX_IMPORT_LINES = 200
_PY_IMPORT_LINE = rb"(?m)^(?:import|from)[ \t]"
_JS_IMPORT_LINE = rb"(?m)^import[ \t{*]"


@lru_cache(maxsize=256)
def stdlib_c_type_members(module: str, name: str) -> frozenset[str] | None:
    """`dir()` of the type `module.name` when `module` is a top-level C module of the standard
    library (built in or an extension: importing it runs no Python code) and the type's instances
    carry no `__dict__` (nothing can add attributes to them), with no metaclass and no
    `__getattr__`; None otherwise. Read from this interpreter."""
    if "." in module or module not in sys.stdlib_module_names:
        return None
    if module not in sys.builtin_module_names:
        try:
            spec = importlib.util.find_spec(module)
        except (ImportError, ValueError):
            return None
        origin = spec.origin if spec is not None else None
        if not origin or not origin.endswith(tuple(importlib.machinery.EXTENSION_SUFFIXES)):
            return None
    try:
        found = getattr(importlib.import_module(module), name, None)
    except Exception:  # a module that cannot be imported here is not known
        return None
    if not isinstance(found, type) or type(found) is not type or found.__dictoffset__ or \
            any("__getattr__" in vars(k) for k in found.__mro__):
        return None
    return frozenset(dir(found))


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


def _defined_in(doc: Document, name: str) -> bool:
    """True when the file gives some object the member `name`: `x.name = ...`, a `def`/`class`
    of that name (a JavaScript method: `name(...) {` at the start of a line), or `name = ...`
    in a class body."""
    word = re.escape(name.encode())
    src = doc.source
    python = doc.language == "python"
    defines = rb"\b(?:def|class)[ \t]+" + word + rb"\b" if python else \
        rb"(?m)^[ \t]+(?:(?:static|async|get|set)[ \t]+)*\*?" + word + rb"[ \t]*\("
    if re.search(rb"\." + word + rb"[ \t]*(?::[^=\n]*)?=(?!=)", src) or re.search(defines, src):
        return True
    if doc.tree is None:
        return False
    root = doc.tree.root_node
    pattern = rb"(?m)^[ \t]+(?:(?:static|readonly|private|public|protected)[ \t]+)*(" + word + \
        rb")[ \t]*(?::[^=\n]*)?(?:[=;]|$)"
    for count, match in enumerate(re.finditer(pattern, src)):
        if count >= MAX_CLASS_LEVEL_CHECKS:
            return True  # too many to look at: take it as defined (stay silent)
        if src[match.end() - 1:match.end() + 1] == b"==":
            continue
        tree = root
        if root.has_error or not root.start_byte <= match.start() < root.end_byte:
            # a view of another unit, or a file broken elsewhere: that line's unit on its own
            unit = unit_view(doc, match.start()).tree
            if unit is None:
                continue
            tree = unit.root_node
        node = tree.descendant_for_byte_range(match.start(1), match.end(1))
        for _ in range(5):  # identifier -> assignment -> expression_statement -> block
            if node is None:
                break
            if node.type in _CLASS_BODIES:
                return True
            node = node.parent
    return False


_CLASS_BODIES = frozenset({"class_definition", "class_body"})
MAX_CLASS_LEVEL_CHECKS = 50


def _py_class(doc: Document, node: Node, cursor: int = -1
              ) -> tuple[set[str], list[str], set[str]] | None:
    """(members, base names, members of `self`/`cls` its code reads, not counting a use around
    `cursor`, nor dunders) of a Python class; None when it is dynamic."""
    names: set[str] = set()
    bases: list[str] = []
    used: set[str] = set()
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
    name_node = node.child_by_field_name("name")
    own = {"self", "cls", "self.__class__", "cls.__class__", "type(self)"}
    if name_node is not None:
        own.add(_text(name_node))
        found = _assigned_outside(doc, _text(name_node))
        if found is None:
            return None
        names |= found
    body = node.child_by_field_name("body")
    if body is None:
        return names, bases, used
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
                names.update(_py_targets(left, class_level, own))
                if class_level and _text(left) == "__slots__":
                    names.update(_slot_names(n.child_by_field_name("right")))
        elif kind == "attribute" and _text(n) in _INSTANCE_DICTS:
            made = _dict_use(n)
            if made is None:
                return None
            names.update(made)
            continue
        elif kind == "attribute":
            use = _member(n, True)
            if use is not None and use.obj in ("self", "cls") and not (
                    n.start_byte <= cursor <= n.end_byte) and not _dunder(use.name):
                used.add(use.name)
        elif kind == "call":
            fn = n.child_by_field_name("function")
            first = _first_argument(n)
            if fn is not None and _text(fn) == "setattr" and (
                    first is None or _text(first) in own or first.type not in (
                        "identifier", "attribute", "subscript") or
                    _text(first).endswith("__class__")):
                return None  # names made at run time (on another object: not this class's)
            if fn is not None and _text(fn) == "vars" and first is not None and \
                    _text(first) in ("self", "cls"):
                made = _dict_use(n)
                if made is None:
                    return None
                names.update(made)
        stack.extend((c, class_level) for c in n.named_children)
    return names, bases, used


_INSTANCE_DICTS = frozenset({"self.__dict__", "cls.__dict__"})
_DICT_READS = frozenset({"get", "items", "keys", "values", "copy", "__contains__"})


def _first_argument(call: Node) -> Node | None:
    args = call.child_by_field_name("arguments")
    if args is None or args.type != "argument_list":
        return None
    first = next((a for a in args.named_children if a.type != "comment"), None)
    return None if first is None or first.type in (
        "keyword_argument", "list_splat", "dictionary_splat") else first


def _dict_use(node: Node) -> set[str] | None:
    """How the code uses an instance's dict (`self.__dict__`, `vars(self)`): the member names
    it adds (`.setdefault('x', ...)`, `['x'] = ...`), empty when it only reads it (`'x' in`,
    `.get(...)`, `[key]`, a comparison), None when it writes it in a way that makes unknown names
    (`.update`, `[key] = ...`, assigning the dict, handing it to a function)."""
    parent = node.parent
    if parent is None:
        return None
    if parent.type == "comparison_operator":  # `'x' in cls.__dict__`, `==`: read
        return set()
    if parent.type == "attribute" and parent.child_by_field_name("object") == node:
        method = _text(parent.child_by_field_name("attribute") or parent)
        call = parent.parent
        if call is None or call.type != "call" or call.child_by_field_name("function") != parent:
            return None
        if method in _DICT_READS:
            return set()
        key = _first_argument(call)
        if method == "setdefault" and key is not None and (name := _literal(key)):
            return {name}
        return None
    if parent.type == "subscript" and parent.child_by_field_name("value") == node:
        holder = parent.parent
        assigned = holder is not None and holder.type in ("assignment", "augmented_assignment") \
            and holder.child_by_field_name("left") == parent
        if not assigned:
            return set()  # read (or deleted): no name made
        key = parent.child_by_field_name("subscript")
        name = _literal(key) if key is not None else None
        return {name} if name else None
    return None


def _literal(node: Node) -> str | None:
    """The text of a plain string literal that is an identifier (`'x'`), else None."""
    if node.type != "string" or any(c.type == "interpolation" for c in node.named_children):
        return None
    content = [c for c in node.named_children if c.type == "string_content"]
    text = _text(content[0]) if len(content) == 1 else ""
    return text if text.isidentifier() else None


def _slot_names(value: Node | None) -> set[str]:
    """The names of `__slots__ = ('a', 'b')` (a string, a tuple or a list of strings)."""
    if value is None:
        return set()
    items = [value] if value.type == "string" else value.named_children \
        if value.type in ("tuple", "list", "parenthesized_expression") else []
    return {name for item in items if (name := _literal(item))}


def _assigned_outside(doc: Document, name: str) -> set[str] | None:
    """Members the file gives the class `name` from outside its body (`Name.attr = ...` on a
    line of its own); None when it sets them by name (`setattr(Name, ...)`)."""
    word = re.escape(name.encode())
    if re.search(rb"setattr\(\s*" + word + rb"\s*,", doc.source):
        return None
    pattern = rb"(?m)^[ \t]*" + word + rb"\.([A-Za-z_]\w*)[ \t]*(?::[^=\n]*)?=(?!=)"
    return {m.group(1).decode() for m in re.finditer(pattern, doc.source)}


def _py_targets(left: Node, class_level: bool,
                own: Container[str] = ("self", "cls")) -> set[str]:
    """Names an assignment target gives the class: a name at class level, `self.x`, `cls.x`
    (and `type(self).x`, `Name.x` for the names in `own`)."""
    out: set[str] = set()
    stack = [left]
    while stack:
        n = stack.pop()
        if n.type == "identifier" and class_level:
            out.add(_text(n))
        elif n.type == "attribute":
            obj, name = n.child_by_field_name("object"), n.child_by_field_name("attribute")
            if obj is not None and name is not None and _text(obj) in own:
                out.add(_text(name))
        elif n.type in ("pattern_list", "tuple_pattern", "list_pattern", "expression_list"):
            stack.extend(n.named_children)
    return out


def _dunder(name: str) -> bool:
    return len(name) > 4 and name.startswith("__") and name.endswith("__")


def _js_class(node: Node, cursor: int = -1) -> tuple[set[str], list[str], set[str]] | None:
    """(members, base names, members of `this` its code reads, not counting a use around
    `cursor`) of a JavaScript/TypeScript class; None when it is dynamic."""
    names: set[str] = set()
    bases: list[str] = []
    used: set[str] = set()
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
    # (node, whether `this` there is the instance: not inside a plain nested function)
    stack = [(c, True) for c in body.named_children] if body is not None else []
    budget = MAX_NODES
    while stack:
        budget -= 1
        if budget <= 0:
            return None
        n, instance = stack.pop()
        kind = n.type
        if instance and kind == "member_expression":
            use = _member(n, False)
            if use is not None and use.obj == "this" and not (
                    n.start_byte <= cursor <= n.end_byte):
                used.add(use.name)
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
        inside = instance and kind not in _JS_PLAIN_FUNCTIONS
        stack.extend((c, inside) for c in n.named_children)
    return names, bases, used


_JS_PLAIN_FUNCTIONS = frozenset({"function_expression", "function_declaration", "function",
                                 "generator_function", "generator_function_declaration"})
