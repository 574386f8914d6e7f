"""Names: which identifiers a piece of code uses or defines, which names a file knows, builtins,
and the file's naming convention.

"Known" names are the identifiers a document mentions anywhere plus its language's builtins. The
whole-file scan is cached per document and refreshed at most every `refresh_s` seconds; the lines
near the cursor are always scanned fresh, so a name typed a moment ago is known at once.
"""

from __future__ import annotations

import builtins
import re
import threading
import time
from collections import Counter
from dataclasses import dataclass
from itertools import islice

from tree_sitter import Node

from analysis.documents.document import Document
from analysis.documents.tree_walks import ancestors
from analysis.scope.visible import module_names

_IDENT = re.compile(rb"[A-Za-z_$][A-Za-z0-9_$]*")

BUILTINS: dict[str, frozenset[str]] = {
    "python": frozenset(dir(builtins)) | {"self", "cls", "__name__", "__file__", "__doc__"},
    "javascript": frozenset(
        "console Math JSON Object Array String Number Boolean Promise Error TypeError RangeError "
        "Map Set WeakMap WeakSet Symbol Date RegExp parseInt parseFloat isNaN isFinite undefined "
        "NaN Infinity globalThis window document require module exports process Buffer "
        "setTimeout clearTimeout setInterval clearInterval fetch this arguments BigInt Reflect "
        "Proxy Intl structuredClone queueMicrotask URL encodeURIComponent decodeURIComponent "
        "super async await of".split()),
    "go": frozenset(
        "append cap clear close complex copy delete imag len make max min new panic print println "
        "real recover bool byte comparable complex64 complex128 error float32 float64 int int8 "
        "int16 int32 int64 rune string uint uint8 uint16 uint32 uint64 uintptr any true false "
        "iota nil _".split()),
    "rust": frozenset(
        "Some None Ok Err Vec String Box Option Result self Self crate super std core alloc "
        "println print eprintln format vec panic assert assert_eq assert_ne write writeln "
        "unreachable todo unimplemented dbg matches i8 i16 i32 i64 i128 isize u8 u16 u32 u64 "
        "u128 usize f32 f64 bool char str Default Clone Copy Debug Iterator IntoIterator "
        "From Into ToString _".split()),
    "java": frozenset(
        "System String Object Integer Long Double Float Boolean Character Byte Short Math "
        "List ArrayList Map HashMap Set HashSet Arrays Collections Optional Exception "
        "RuntimeException IllegalArgumentException IllegalStateException NullPointerException "
        "this super null true false var".split()),
    "c": frozenset(
        "printf fprintf sprintf snprintf malloc calloc realloc free memcpy memset memmove strlen "
        "strcmp strcpy strncpy NULL size_t stdout stderr stdin exit abort assert sizeof EOF "
        "true false bool uint8_t uint16_t uint32_t uint64_t int8_t int16_t int32_t int64_t"
        .split()),
}
BUILTINS["typescript"] = BUILTINS["javascript"] | {"Record", "Partial", "Readonly", "Array",
                                                   "unknown", "never", "keyof", "typeof"}
BUILTINS["tsx"] = BUILTINS["typescript"] | {"React", "JSX"}
BUILTINS["cpp"] = BUILTINS["c"] | {"std", "nullptr", "this", "cout", "cin", "endl", "vector",
                                   "string", "map", "unique_ptr", "shared_ptr", "make_unique"}

# Identifier node types by language (members, fields and keys are not names in scope).
IDENT_TYPES = frozenset({"identifier"})
_PARAMETER_PARENTS = ("parameter", "parameters", "formal_parameters", "lambda_parameters")


def identifiers_in(data: bytes) -> set[str]:
    """Every identifier-shaped token in some text (strings and comments included)."""
    return {m.decode("utf-8", "replace") for m in set(_IDENT.findall(data))}


@dataclass(frozen=True, slots=True)
class NameUse:
    """One identifier inside a span: its text, byte span, and whether it is a definition."""

    name: str
    start: int
    end: int
    defines: bool


_NOT_DEFINING = frozenset({"keyword_argument", "call", "call_expression", "attribute",
                           "augmented_assignment", "member_expression"})
_ASSIGNING = frozenset({"assignment", "for_statement", "for_in_clause", "assignment_expression",
                        "short_var_declaration", "range_clause", "for_in_statement",
                        "assignment_statement", "var_spec", "const_spec"})
_DEFINING = frozenset({"aliased_import", "import_statement", "import_from_statement",
                       "global_statement", "nonlocal_statement", "import_spec",
                       "as_pattern_target", "catch_clause", "except_clause"})


def _is_definition(node: Node, parent: Node | None, grand: Node | None) -> bool:
    """True when the identifier introduces a name (declaration, parameter, target, import).

    `parent` and `grand` are the node's parent and grandparent, passed down by the walk:
    `Node.parent` costs the node's depth in tree-sitter.
    """
    if parent is None:
        return False
    kind = parent.type
    if "parameter" in kind:
        return True
    if kind in _NOT_DEFINING:
        return False
    for field in ("name", "left", "pattern", "declarator", "alias"):
        if field == "left" and kind not in _ASSIGNING:
            continue  # `a + b` has a left operand too
        target = parent.child_by_field_name(field)
        if target is not None and target.id == node.id:
            return True
    if kind in ("pattern_list", "tuple_pattern", "list_pattern", "expression_list",
                "array_pattern", "object_pattern", "tuple_struct_pattern"):
        if grand is None or grand.type in _NOT_DEFINING:
            return False
        fields = ("left", "name", "pattern") if grand.type in _ASSIGNING else ("name", "pattern")
        return any((t := grand.child_by_field_name(f)) is not None and t.id == parent.id
                   for f in fields)
    if kind == "dotted_name":
        return grand is not None and grand.type in _DEFINING
    return kind in _DEFINING


def _is_member_or_key(node: Node, parent: Node | None) -> bool:
    """True for `obj.attr`'s attr and keyword-argument names: not names looked up in scope."""
    if parent is None:
        return False
    if parent.type == "attribute":
        attr = parent.child_by_field_name("attribute")
        return attr is not None and attr.id == node.id
    if parent.type == "keyword_argument":
        name = parent.child_by_field_name("name")
        return name is not None and name.id == node.id
    return parent.type in ("labeled_statement", "label", "field_expression")


def names_in_span(root: Node, start: int, end: int) -> list[NameUse]:
    """Identifiers whose span lies inside [start, end), with definition flags, in order."""
    out: list[NameUse] = []
    # Start at the smallest node holding the span (not at the root: in deeply nested code the
    # path down is long), with its parent and grandparent known from there on.
    cover = root.descendant_for_byte_range(start, end) if end > start else None
    if cover is None:
        return out
    up = list(islice(ancestors(cover, root), 2))
    stack: list[tuple[Node, Node | None, Node | None]] = [
        (cover, up[0] if up else None, up[1] if len(up) > 1 else None)]
    while stack:
        node, parent, grand = stack.pop()
        if node.end_byte <= start or node.start_byte >= end:
            continue
        if node.type in IDENT_TYPES and node.start_byte >= start and node.end_byte <= end:
            if not _is_member_or_key(node, parent):
                text = node.text.decode("utf-8", "replace") if node.text else ""
                out.append(NameUse(text, node.start_byte, node.end_byte,
                                   _is_definition(node, parent, grand)))
            continue
        stack.extend((child, node, parent) for child in reversed(node.children))
    out.sort(key=lambda u: u.start)
    return out


class KnownNames:
    """Identifiers each document mentions, cached per document and refreshed lazily."""

    def __init__(self, refresh_s: float = 3.0, near_lines: int = 40) -> None:
        self.refresh_s = refresh_s
        self.near_lines = near_lines
        self._cache: dict[str, tuple[float, int, frozenset[str], str | None]] = {}
        self._modules: dict[str, tuple[float, frozenset[str]]] = {}
        self._lock = threading.Lock()

    def file_names(self, doc: Document) -> frozenset[str]:
        """All identifiers of the document (up to `refresh_s` stale), plus builtins."""
        now = time.monotonic()
        hit = self._cache.get(doc.uri)
        if hit is not None and (hit[1] == doc.version or now - hit[0] < self.refresh_s):
            return hit[2]
        found = identifiers_in(doc.source)
        names = frozenset(found) | BUILTINS.get(doc.language, frozenset())
        with self._lock:
            self._cache[doc.uri] = (now, doc.version, names, file_convention(found))
        return names

    def module_names(self, doc: Document) -> frozenset[str]:
        """The document's imports and top-level definitions, refreshed with the file's names
        (about 1 ms to read, so not on every keystroke)."""
        self.file_names(doc)
        stamp = self._cache[doc.uri][0]
        cached = self._modules.get(doc.uri)
        if cached is not None and cached[0] == stamp:
            return cached[1]
        found = module_names(doc)
        with self._lock:
            self._modules[doc.uri] = (stamp, found)
        return found

    def convention(self, doc: Document) -> str | None:
        """The naming convention of the document's own names (cached with them)."""
        self.file_names(doc)
        return self._cache[doc.uri][3]

    def known(self, doc: Document, offset: int) -> set[str]:
        """Names known at `offset`: the file's (cached) and the nearby lines' (always fresh)."""
        line = doc.position_at(offset, "utf-8").line
        lo = doc.line_span(max(0, line - self.near_lines))[0]
        hi = doc.line_span(min(doc.line_count - 1, line + self.near_lines))[1]
        return set(self.file_names(doc)) | identifiers_in(doc.source[lo:hi])

    def forget(self, uri: str) -> None:
        """Drop a closed document's names."""
        with self._lock:
            self._cache.pop(uri, None)
            self._modules.pop(uri, None)


_SNAKE = re.compile(r"^_?[a-z][a-z0-9]*(_[a-z0-9]+)+$")
_CAMEL = re.compile(r"^_?[a-z][a-z0-9]*([A-Z][a-z0-9]*)+$")
_PASCAL = re.compile(r"^[A-Z][a-z0-9]+([A-Z][a-z0-9]*)+$")


def convention_of(name: str) -> str | None:
    """"snake", "camel" or "pascal" for multi-word names; None when a name shows no style."""
    if _SNAKE.match(name):
        return "snake"
    if _CAMEL.match(name):
        return "camel"
    if _PASCAL.match(name):
        return "pascal"
    return None


def file_convention(names: set[str] | frozenset[str]) -> str | None:
    """The convention most multi-word lower-case-initial names in a file follow."""
    votes = Counter(c for n in names if (c := convention_of(n)) in ("snake", "camel"))
    if not votes:
        return None
    (best, count), *rest = votes.most_common()
    return best if not rest or count >= 2 * rest[0][1] else None


def to_convention(name: str, convention: str) -> str:
    """Rewrite a multi-word name in another convention (snake <-> camel)."""
    words = [w for w in re.split(r"_|(?<=[a-z0-9])(?=[A-Z])", name) if w]
    if not words:
        return name
    lead = "_" if name.startswith("_") else ""
    if convention == "snake":
        return lead + "_".join(w.lower() for w in words)
    if convention == "camel":
        return lead + words[0].lower() + "".join(w[:1].upper() + w[1:].lower() for w in words[1:])
    return name
