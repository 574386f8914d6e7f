"""A text document with its tree-sitter tree, kept in step with incremental edits.

Text is held as UTF-8 bytes (tree-sitter's unit). Positions come in as (line, character) pairs in
the negotiated encoding: "utf-8" (bytes), "utf-16" (code units, surrogate pairs count two) or
"utf-32" (code points). Lines end at "\\n", "\\r\\n" or a lone "\\r", as LSP defines them.
Positions past the end of a line or of the document are clamped, and the clamp is reported so
the caller can log it; nothing here raises on bad positions. One codec (`_units`/`_offset_in`)
serves both directions, so `position_at(offset_at(p))` is `p` for every position inside a line;
a lone surrogate counts as one UTF-16 unit (see the codec's comment).

The line index is a numpy array, imported inside the methods that use it: a warm `review`, which
answers every file from its cache, loads this module but never builds a document, and numpy
is half of its start-up.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from tree_sitter import Node, Parser, Point, Tree

from analysis.documents.languages import LanguageSpec, spec_for

Encoding = Literal["utf-8", "utf-16", "utf-32"]
_BREAK = re.compile(rb"\r\n|\r|\n")


class AnalysisError(Exception):
    """Base of the analysis layer's errors."""


@dataclass(frozen=True, slots=True)
class Position:
    """A zero-based (line, character) position in some encoding."""

    line: int
    character: int


@dataclass(frozen=True, slots=True)
class EditResult:
    """What one applied edit did: byte span replaced and whether a position had to be clamped."""

    start_byte: int
    old_end_byte: int
    new_end_byte: int
    clamped: bool


class Document:
    """Text, line index and tree of one file; `apply_edit` keeps all three in step."""

    __slots__ = (
        "_has_cr",
        "_line_starts",
        "_parser",
        "_text",
        "decode_errors",
        "language_id",
        "source",
        "spec",
        "too_large",
        "tree",
        "uri",
        "version",
    )

    def __init__(
        self,
        uri: str,
        text: str,
        language_id: str | None = None,
        version: int = 0,
        *,
        max_bytes: int | None = None,
        path: str | None = None,
    ) -> None:
        self.uri = uri
        self.version = version
        self.language_id = language_id or ""
        self.source = text.encode("utf-8", "surrogatepass")
        self._text: str | None = text
        self.decode_errors = False
        self.too_large = max_bytes is not None and len(self.source) > max_bytes
        self.spec: LanguageSpec | None = None if self.too_large else spec_for(
            language_id, path or uri
        )
        self._parser: Parser | None = self.spec.parser() if self.spec else None
        self.tree: Tree | None = self._parser.parse(self.source) if self._parser else None
        self._reindex()

    @classmethod
    def from_bytes(
        cls,
        uri: str,
        data: bytes,
        language_id: str | None = None,
        version: int = 0,
        *,
        max_bytes: int | None = None,
        path: str | None = None,
    ) -> Document:
        """A document from raw file bytes; invalid UTF-8 is replaced and flagged."""
        try:
            text = data.decode("utf-8")
            errors = False
        except UnicodeDecodeError:
            text = data.decode("utf-8", "replace")
            errors = True
        doc = cls(uri, text, language_id, version, max_bytes=max_bytes, path=path)
        doc.decode_errors = errors
        return doc

    @classmethod
    def with_tree(cls, base: Document, source: bytes, tree: Tree | None) -> Document:
        """A document like `base` but holding `source` and an already parsed `tree` (no parse:
        for trial insertions whose tree the caller has, possibly parsed over a window only)."""
        doc = object.__new__(cls)
        doc.uri, doc.version, doc.language_id = base.uri, base.version, base.language_id
        doc.source, doc._text, doc.decode_errors = source, None, base.decode_errors
        doc.too_large, doc.spec, doc.tree = base.too_large, base.spec, tree
        doc._parser = base.spec.parser() if base.spec else None
        doc._reindex()
        return doc

    # ------------------------------------------------------------------ text access

    @property
    def text(self) -> str:
        """The whole text as str (decoded lazily after edits)."""
        if self._text is None:
            self._text = self.source.decode("utf-8", "surrogatepass")
        return self._text

    @property
    def language(self) -> str:
        """Canonical language name ("python", "tsx", ...) or "plaintext"."""
        return self.spec.name if self.spec else "plaintext"

    @property
    def line_count(self) -> int:
        """Number of lines (an empty document has one empty line)."""
        return len(self._line_starts)

    def line_span(self, line: int) -> tuple[int, int]:
        """Byte span of a line's content, without its line break."""
        starts = self._line_starts
        start = int(starts[line])
        if line + 1 < len(starts):
            end = int(starts[line + 1])
            end -= 2 if self.source[end - 2 : end] == b"\r\n" else 1
        else:
            end = len(self.source)
        return start, end

    def line_bytes(self, line: int) -> bytes:
        """A line's content as bytes, without its break."""
        start, end = self.line_span(line)
        return self.source[start:end]

    def line_text(self, line: int) -> str:
        """A line's content as str, without its break."""
        return self.line_bytes(line).decode("utf-8", "replace")

    # ------------------------------------------------------------------ positions

    def offset_at(
        self, line: int, character: int, encoding: Encoding = "utf-16"
    ) -> tuple[int, bool]:
        """Byte offset of a position and whether it had to be clamped into the document."""
        clamped = False
        if line < 0 or character < 0:
            line, character, clamped = max(line, 0), max(character, 0), True
        if line >= len(self._line_starts):
            return len(self.source), True
        start, end = self.line_span(line)
        off, inside = _offset_in(self.source[start:end], character, encoding)
        return start + off, clamped or not inside

    def position_at(self, offset: int, encoding: Encoding = "utf-16") -> Position:
        """The (line, character) of a byte offset, in the given encoding; an offset inside a
        character counts as that character's start."""
        import numpy as np  # here, not at the top: see the module docstring
        offset = min(max(offset, 0), len(self.source))
        line = int(np.searchsorted(self._line_starts, offset, side="right")) - 1
        start, end = self.line_span(line)
        offset = _char_start(self.source, min(offset, end), start)
        return Position(line, _units(self.source[start:offset], encoding))

    def point_at(self, offset: int) -> Point:
        """tree-sitter's (row, byte column) for a byte offset; rows count "\\n" only."""
        import numpy as np  # here, not at the top: see the module docstring
        if not self._has_cr:  # LSP lines are tree-sitter rows: use the index
            row = int(np.searchsorted(self._line_starts, offset, side="right")) - 1
            return Point(row, offset - int(self._line_starts[row]))
        row = self.source.count(b"\n", 0, offset)
        col = offset - (self.source.rfind(b"\n", 0, offset) + 1)
        return Point(row, col)

    # ------------------------------------------------------------------ edits

    def apply_edit(
        self,
        start: tuple[int, int] | None,
        end: tuple[int, int] | None,
        new_text: str,
        encoding: Encoding = "utf-16",
        version: int | None = None,
    ) -> EditResult:
        """Replace the range start..end (None: the whole document) and reparse incrementally."""
        if start is None or end is None:
            return self.replace_all(new_text, version)
        start_byte, c1 = self.offset_at(start[0], start[1], encoding)
        end_byte, c2 = self.offset_at(end[0], end[1], encoding)
        if end_byte < start_byte:
            start_byte, end_byte = end_byte, start_byte
        return self.replace_bytes(start_byte, end_byte, new_text, version, clamped=c1 or c2)

    def replace_bytes(
        self,
        start_byte: int,
        end_byte: int,
        new_text: str,
        version: int | None = None,
        *,
        clamped: bool = False,
    ) -> EditResult:
        """Replace a byte span with new text; edit the tree and reparse incrementally."""
        data = new_text.encode("utf-8", "surrogatepass")
        new_end = start_byte + len(data)
        start_point = self.point_at(start_byte)
        old_end_point = self.point_at(end_byte)
        old_source = self.source
        self.source = old_source[:start_byte] + data + old_source[end_byte:]
        self._text = None
        if version is not None:
            self.version = version
        self._update_index(old_source, start_byte, end_byte, data)
        if self.tree is not None and self._parser is not None:
            self.tree.edit(
                start_byte=start_byte,
                old_end_byte=end_byte,
                new_end_byte=new_end,
                start_point=start_point,
                old_end_point=old_end_point,
                new_end_point=self.point_at(new_end),
            )
            self.tree = self._parser.parse(self.source, self.tree)
        return EditResult(start_byte, end_byte, new_end, clamped)

    def replace_all(self, new_text: str, version: int | None = None) -> EditResult:
        """Replace the whole text and parse from scratch."""
        old_len = len(self.source)
        self.source = new_text.encode("utf-8", "surrogatepass")
        self._text = new_text
        if version is not None:
            self.version = version
        if self._parser is not None:
            self.tree = self._parser.parse(self.source)
        self._reindex()
        return EditResult(0, old_len, len(self.source), False)

    # ------------------------------------------------------------------ tree helpers

    def node_at(self, offset: int, named: bool = True) -> Node | None:
        """The smallest (named) node spanning a byte offset, or None for plain text."""
        if self.tree is None:
            return None
        root = self.tree.root_node
        if named:
            return root.named_descendant_for_byte_range(offset, offset)
        return root.descendant_for_byte_range(offset, offset)

    def has_errors(self) -> bool:
        """True when the tree holds ERROR or MISSING nodes."""
        return self.tree is not None and self.tree.root_node.has_error

    def snapshot(self) -> Document:
        """An independent copy (trees are copied cheaply, text shared immutably)."""
        clone = object.__new__(Document)
        for name in Document.__slots__:
            setattr(clone, name, getattr(self, name))
        clone._line_starts = self._line_starts.copy()
        clone.tree = self.tree.copy() if self.tree is not None else None
        clone._parser = self.spec.parser() if self.spec else None
        return clone

    # ------------------------------------------------------------------ line index

    def _reindex(self) -> None:
        import numpy as np  # here, not at the top: see the module docstring
        self._has_cr = b"\r" in self.source
        if self._has_cr:
            found = [0, *(m.end() for m in _BREAK.finditer(self.source))]
        else:
            found = _newline_starts(self.source, 0, len(self.source), [0])
        self._line_starts = np.array(found, dtype=np.int64)

    def _update_index(self, old: bytes, start: int, old_end: int, data: bytes) -> None:
        import numpy as np  # here, not at the top: see the module docstring
        # A numpy array: the tail shift after an edit is one vectorised add, not a Python loop.
        if self._has_cr or b"\r" in data:
            self._reindex()
            return
        starts = self._line_starts
        first = int(np.searchsorted(starts, start, side="right"))  # entries <= start stay
        last = int(np.searchsorted(starts, old_end, side="right"))  # entries > old_end shift
        delta = len(data) - (old_end - start)
        inserted = _newline_starts(data, 0, len(data), [])
        if not inserted and first == last:
            if delta:
                starts[last:] += delta
            return
        self._line_starts = np.concatenate(
            (starts[:first], np.array(inserted, dtype=np.int64) + start, starts[last:] + delta)
        )


# ---------------------------------------------------------------------- the position codec
# One codec for both directions, on the UTF-8 bytes themselves: every character has one lead
# byte (not 0b10xxxxxx) and counts 1 unit; a 4-byte character (lead >= 0xF0) counts 2 in UTF-16.
# A lone surrogate is held in its 3-byte "surrogatepass" form, so it counts as one UTF-16 unit,
# one code point and three UTF-8 bytes: what `str.encode("utf-16-le", "surrogatepass")` counts.
# Nothing here decodes, so no byte sequence can make the two directions disagree.

_KEEP_CONTINUATION = bytes(b for b in range(256) if not 0x80 <= b < 0xC0)  # delete these
_KEEP_FOUR_BYTE_LEADS = bytes(range(0xF0))


def _units(data: bytes, encoding: Encoding) -> int:
    """How many position units the characters in `data` (whole characters) take."""
    if encoding == "utf-8" or data.isascii():
        return len(data)
    chars = len(data) - len(data.translate(None, _KEEP_CONTINUATION))
    if encoding == "utf-16":
        chars += len(data.translate(None, _KEEP_FOUR_BYTE_LEADS))
    return chars


def _offset_in(content: bytes, character: int, encoding: Encoding) -> tuple[int, bool]:
    """Byte offset in one line's content of a character position, and whether it was exact.

    Past the line's end clamps to its end; a position inside a character (a UTF-8 position on
    a continuation byte, a UTF-16 position between the halves of a pair) falls back to the
    character's start.
    """
    import numpy as np  # here, not at the top: see the module docstring
    if encoding == "utf-8" or content.isascii():
        if character >= len(content):
            return len(content), character == len(content)
        off = _char_start(content, character, 0)
        return off, off == character
    raw = np.frombuffer(content, dtype=np.uint8)
    widths = ((raw & 0xC0) != 0x80).astype(np.int64)
    if encoding == "utf-16":
        widths += raw >= 0xF0
    before = np.concatenate(([0], np.cumsum(widths)))  # before[i]: units in content[:i]
    # The last offset whose units-before <= character is a character boundary (continuation
    # bytes add nothing, so ties end at the next lead byte or at the end of the line).
    off = int(np.searchsorted(before, character, side="right")) - 1
    return off, int(before[off]) == character


def _char_start(data: bytes, offset: int, floor: int) -> int:
    """`offset` moved back (not below `floor`) off UTF-8 continuation bytes."""
    while offset > floor and offset < len(data) and (data[offset] & 0xC0) == 0x80:
        offset -= 1
    return offset


def _newline_starts(data: bytes, lo: int, hi: int, out: list[int]) -> list[int]:
    """Append the offset after each b"\\n" in data[lo:hi] to `out`."""
    find = data.find
    i = find(b"\n", lo, hi)
    while i != -1:
        out.append(i + 1)
        i = find(b"\n", i + 1, hi)
    return out
