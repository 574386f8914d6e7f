"""Names: which identifiers a piece of code uses or defines, which names a file knows, builtins,
and the file's naming convention.

"Known" names are the identifiers a document mentions anywhere plus its language's builtins. The
whole-file scan is cached per document (an LRU bounded in bytes) and refreshed at most every
`refresh_s` seconds; the lines near the cursor are always scanned fresh, so a name typed a moment
ago is known at once. Whether an identifier defines a name is analysis/scope/bindings.py's one
answer.
"""

from __future__ import annotations

import builtins
import re
import threading
import time
from collections import Counter, OrderedDict
from dataclasses import dataclass

from tree_sitter import Node

from analysis.documents.document import Document
from analysis.scope.bindings import Step, StepsAbove, is_binding, steps_up
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


def _is_member_or_key(parent: str, field: str | None) -> bool:
    """True for `obj.attr`'s attr and keyword-argument names: not names looked up in scope."""
    if parent == "attribute":
        return field == "attribute"
    if parent == "keyword_argument":
        return field == "name"
    if parent == "field_expression":  # Rust, C: `value.field`; the value is a use
        return field == "field"
    return parent in ("labeled_statement", "label")


def names_in_span(root: Node, start: int, end: int) -> list[NameUse]:
    """Identifiers whose span lies inside [start, end), with definition flags, in order."""
    out: list[NameUse] = []
    # Walk from the smallest node holding the span (not from the root: in deeply nested code
    # the path down is long); the steps above it are read only if an identifier needs them.
    cover = root.descendant_for_byte_range(start, end) if end > start else None
    if cover is None:
        return out
    above = StepsAbove(cover, root)
    cursor = cover.walk()
    stack: list[Step] = []  # (type, field in its parent) of the ancestors inside the walk
    field: str | None = None
    while True:
        node = cursor.node
        assert node is not None  # a cursor always stands on a node
        descend = node.end_byte > start and node.start_byte < end
        if descend and node.type in IDENT_TYPES:
            descend = False
            if node.start_byte >= start and node.end_byte <= end:
                steps = steps_up(stack, field, above)
                parent, parent_field = next(steps, ("", None))
                if not _is_member_or_key(parent, parent_field):
                    text = node.text.decode("utf-8", "replace") if node.text else ""
                    out.append(NameUse(text, node.start_byte, node.end_byte, is_binding(
                        steps_up(stack, field, above))))
        if descend and cursor.goto_first_child():
            stack.append((node.type, field))
            field = cursor.field_name
            continue
        while not cursor.goto_next_sibling():
            if not stack or not cursor.goto_parent():
                out.sort(key=lambda u: u.start)
                return out
            _, field = stack.pop()
        field = cursor.field_name


@dataclass(slots=True)
class _FileNames:
    """One document's cached names: when they were read, from which version, and their size."""

    stamp: float  # time.monotonic() of the scan
    version: int
    names: frozenset[str]
    convention: str | None
    size: int  # approximate bytes held
    modules: frozenset[str] | None = None  # imports' names and top-level definitions
    modules_key: tuple[str, ...] = ()  # the import names `modules` was built with


def _size_of(names: frozenset[str]) -> int:
    """Approximate bytes a set of names holds: the strings and the set's slots."""
    return sum(len(n) for n in names) + 100 * len(names)


class KnownNames:
    """Identifiers each document mentions, cached per document and refreshed lazily.

    The cache is an LRU bounded in bytes (`limit_bytes`, the most recent document always kept);
    `forget(uri)` drops a closed document at once.
    """

    def __init__(self, refresh_s: float = 3.0, near_lines: int = 40,
                 limit_bytes: int = 32_000_000) -> None:
        self.refresh_s = refresh_s
        self.near_lines = near_lines
        self.limit_bytes = limit_bytes
        self._cache: OrderedDict[str, _FileNames] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def _entry(self, doc: Document) -> _FileNames:
        now = time.monotonic()
        with self._lock:
            hit = self._cache.get(doc.uri)
            if hit is not None and (hit.version == doc.version or now - hit.stamp < self.refresh_s):
                self._cache.move_to_end(doc.uri)
                return hit
        found = identifiers_in(doc.source)
        names = frozenset(found) | BUILTINS.get(doc.language, frozenset())
        entry = _FileNames(now, doc.version, names, file_convention(found), _size_of(names))
        self._store(doc.uri, entry)
        return entry

    def _store(self, uri: str, entry: _FileNames) -> None:
        with self._lock:
            old = self._cache.pop(uri, None)
            if old is not None:
                self._bytes -= old.size
            self._cache[uri] = entry
            self._bytes += entry.size
            while self._bytes > self.limit_bytes and len(self._cache) > 1:
                _, evicted = self._cache.popitem(last=False)
                self._bytes -= evicted.size

    def file_names(self, doc: Document) -> frozenset[str]:
        """All identifiers of the document (up to `refresh_s` stale), plus builtins."""
        return self._entry(doc).names

    def module_names(self, doc: Document, import_names: tuple[str, ...]) -> frozenset[str]:
        """The names the document's imports bind (from its context) and its top-level
        definitions, refreshed with the file's names (about 1 ms to read, so not on every
        keystroke)."""
        entry = self._entry(doc)
        if entry.modules is not None and entry.modules_key == import_names:
            return entry.modules
        found = module_names(doc, import_names)
        with self._lock:
            grown = _size_of(found) - (_size_of(entry.modules) if entry.modules else 0)
            entry.modules, entry.modules_key = found, import_names
            entry.size += grown
            if self._cache.get(doc.uri) is entry:  # still cached: count what it now holds
                self._bytes += grown
        return found

    def convention(self, doc: Document) -> str | None:
        """The naming convention of the document's own names (cached with them)."""
        return self._entry(doc).convention

    def known(self, doc: Document, offset: int) -> set[str]:
        """Names known at `offset`: the file's (cached) and the nearby lines' (always fresh)."""
        line = doc.position_at(offset, "utf-8").line
        lo = doc.line_span(max(0, line - self.near_lines))[0]
        hi = doc.line_span(min(doc.line_count - 1, line + self.near_lines))[1]
        return set(self.file_names(doc)) | identifiers_in(doc.source[lo:hi])

    def forget(self, uri: str) -> None:
        """Drop a closed document's names."""
        with self._lock:
            old = self._cache.pop(uri, None)
            if old is not None:
                self._bytes -= old.size

    @property
    def size_bytes(self) -> int:
        """Approximate bytes the cache holds."""
        return self._bytes

    def __len__(self) -> int:
        return len(self._cache)


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
