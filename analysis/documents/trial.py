"""Trial insertions: would this text, inserted at this offset, parse with no new error node?

A trial edits a copy of the document's tree and reparses incrementally, so each check costs
about as much as one keystroke, not a full parse. Error nodes are counted by descending only into
subtrees that carry an error, so a clean file costs nothing to count.
"""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass

from tree_sitter import Node, Point, Range, Tree

from analysis.documents.document import Document


def count_errors(node: Node) -> int:
    """Number of ERROR and MISSING nodes under `node` (only erroneous subtrees are visited)."""
    if not node.has_error:
        return 0
    total = 0
    stack = [node]
    while stack:
        n = stack.pop()
        if n.is_error or n.is_missing:
            total += 1
            if n.is_missing:
                continue
        for child in n.children:
            if child.has_error or child.is_missing:
                stack.append(child)
    return total


def errors_within(node: Node, start: int, end: int) -> int:
    """ERROR/MISSING nodes overlapping [start, end] (a MISSING node at `end` counts)."""
    if not node.has_error:
        return 0
    total = 0
    stack = [node]
    while stack:
        n = stack.pop()
        if n.end_byte < start or n.start_byte > end:
            continue
        if n.is_missing or (n.is_error and n.end_byte > start and n.start_byte < end):
            total += 1
            continue
        stack.extend(c for c in n.children if c.has_error or c.is_missing)
    return total


@dataclass(frozen=True, slots=True)
class Trial:
    """The outcome of parsing the document with `text` inserted at `offset`."""

    text: str
    errors_before: int
    errors_after: int
    errors_inside: int  # error nodes overlapping the inserted text
    tree: Tree | None
    source: bytes

    @property
    def ok(self) -> bool:
        """True when the insertion added no error node and holds none itself."""
        return self.errors_after <= self.errors_before and self.errors_inside == 0


class TrialParser:
    """Parses the document with candidate insertions at one offset.

    Only the top-level declarations around the hole are parsed (tree-sitter `included_ranges`,
    so node offsets stay those of the whole file): an incremental reparse of a 5,000-line file
    costs up to half a full parse at some positions, a window costs what its few lines cost.
    Errors are counted in the same window before and after the insertion.
    """

    def __init__(self, doc: Document, offset: int, replace_end: int | None = None) -> None:
        self.doc = doc
        self.offset = offset
        self.replace_end = offset if replace_end is None else replace_end
        self._parser = doc.spec.parser() if doc.spec and doc.tree is not None else None
        self._errors_before: int | None = None
        self._window: tuple[int, int] | bool | None = False  # False: not decided yet

    @property
    def window(self) -> tuple[int, int] | None:
        """Byte span of the original document that trials re-parse; None for the whole file
        (when the declarations around the hole do not parse cleanly on their own, their extent
        is not to be trusted: a completion that closes a bracket can regroup them)."""
        if self._window is False:
            span = (_top_level_span(self.doc, self.offset, self.replace_end)
                    if self.doc.tree is not None and self._parser is not None else None)
            self._window = None
            if span is not None:
                errors = count_errors(self._parse_range(self.doc.source, *span).root_node)
                # A window that does not parse cleanly on its own cuts through broken code
                # (tree-sitter may list bare tokens as top-level children): use the whole file.
                if errors == 0:
                    self._window, self._errors_before = span, 0
        return self._window  # type: ignore[return-value]

    @property
    def windowed(self) -> bool:
        """True when trials parse a window; False when they reparse the whole file."""
        return self.window is not None

    @property
    def errors_before(self) -> int:
        """Error nodes in the window (or file) as it is: the baseline a completion must not
        exceed."""
        if self._errors_before is None:
            if self._parser is None or self.doc.tree is None:
                self._errors_before = 0
            elif self.window is None:
                self._errors_before = count_errors(self.doc.tree.root_node)
            else:
                self._errors_before = 0  # a window is only used when it parses cleanly
        return self._errors_before

    def _parse_range(self, source: bytes, start: int, end: int) -> Tree:
        assert self._parser is not None
        self._parser.included_ranges = [Range(_point(source, start), _point(source, end),
                                              start, end)]
        return self._parser.parse(source)

    def source_with(self, text: str) -> bytes:
        """The document's bytes with `text` in place of the hole."""
        src = self.doc.source
        return src[: self.offset] + text.encode("utf-8", "surrogatepass") + src[self.replace_end :]

    def trial(self, text: str) -> Trial:
        """Parse the window with `text` inserted; plain-text documents always pass."""
        source = self.source_with(text)
        if self._parser is None or self.doc.tree is None:
            return Trial(text, 0, 0, 0, None, source)
        data_len = len(text.encode("utf-8", "surrogatepass"))
        new_end = self.offset + data_len
        before = self.errors_before
        if self.window is None:
            tree = self._reparse(text, source, new_end)
        else:
            start, end = self.window
            shift = data_len - (self.replace_end - self.offset)
            tree = self._parse_range(source, start, end + shift)
        root = tree.root_node
        inside = errors_within(root, self.offset, new_end) if data_len else 0
        return Trial(text, before, count_errors(root), inside, tree, source)

    def _reparse(self, text: str, source: bytes, new_end: int) -> Tree:
        """Incremental reparse of the whole file with the insertion (the fallback)."""
        assert self._parser is not None and self.doc.tree is not None
        self._parser.included_ranges = []
        tree = self.doc.tree.copy()
        start_point = self.doc.point_at(self.offset)
        tree.edit(
            start_byte=self.offset,
            old_end_byte=self.replace_end,
            new_end_byte=new_end,
            start_point=start_point,
            old_end_point=self.doc.point_at(self.replace_end),
            new_end_point=_advance(start_point, text),
        )
        return self._parser.parse(source, tree)


def _top_level_span(doc: Document, lo: int, hi: int) -> tuple[int, int] | None:
    """The top-level declarations touching [lo, hi] (the one holding each end, or the
    neighbours on both sides when an end falls between declarations)."""
    assert doc.tree is not None
    children = doc.tree.root_node.children
    if not children:
        return None
    ends = [c.end_byte for c in children]
    # (Node.first_child_for_byte crashes on some inputs in py-tree-sitter 0.26: bisect instead.)
    i = bisect_right(ends, lo)  # first child ending after lo
    if i == len(children) or children[i].start_byte > lo:
        i = max(i - 1, 0)
    j = min(bisect_right(ends, hi), len(children) - 1)
    start = children[i].start_byte if children[i].start_byte <= lo else 0
    end = children[j].end_byte if j + 1 < len(children) else len(doc.source)
    return min(start, lo), max(end, hi)


def _advance(point: tuple[int, int], text: str) -> tuple[int, int]:
    """The point reached after writing `text` from `point` (rows count "\\n")."""
    data = text.encode("utf-8", "surrogatepass")
    newlines = data.count(b"\n")
    if not newlines:
        return (point[0], point[1] + len(data))
    return (point[0] + newlines, len(data) - data.rfind(b"\n") - 1)


def _point(source: bytes, offset: int) -> Point:
    """tree-sitter's (row, byte column) of an offset."""
    row = source.count(b"\n", 0, offset)
    return Point(row, offset - (source.rfind(b"\n", 0, offset) + 1))
