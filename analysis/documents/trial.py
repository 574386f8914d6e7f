"""Trial insertions: would this text, inserted at this offset, parse with no new error node?

A trial parses only the region around the hole with the text in place (tree-sitter
`included_ranges`), so each check costs what those few lines cost, not a full parse. Error
nodes are counted by descending only into subtrees that carry an error, so a clean region costs
nothing to count.

Files in an editor are broken most of the time someone types (an unclosed bracket in another
function, a half-written line at the top), and tree-sitter's error recovery regroups the whole
file when text is inserted, so whole-file error counts say little about the insertion. Trials
therefore judge the region around the hole: the top-level declarations around it when they parse
cleanly; else the top-level unit the hole's lines belong to, found from the text (a line at
column 0 starts a unit), parsed on its own; and where that unit is itself broken (the hole is in
the code being typed), the error nodes inside it, before and after, with only the errors that
start inside the insertion held against it.
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


def errors_started_in(node: Node, start: int, end: int) -> int:
    """ERROR/MISSING nodes that begin strictly inside the insertion [start, end) (an error
    that encloses it, or a MISSING node at its edge, is the file's own)."""
    if not node.has_error:
        return 0
    total = 0
    stack = [node]
    while stack:
        n = stack.pop()
        if n.end_byte <= start or n.start_byte >= end:
            continue
        if (n.is_missing and start < n.start_byte < end) or (
                n.is_error and n.start_byte >= start and n.end_byte <= end):
            total += 1
            continue
        stack.extend(c for c in n.children if c.has_error or c.is_missing)
    return total


def swallowed(node: Node, start: int, end: int) -> int:
    """Tokens of the insertion [start, end) that an ERROR node holds directly: text the parser
    could not fit anywhere (in a broken region its error count may not move for them)."""
    total = 0
    stack = [(node, False)]
    while stack:
        n, in_error = stack.pop()
        if n.end_byte <= start or n.start_byte >= end:
            continue
        if n.child_count == 0:
            total += in_error and n.start_byte >= start and not n.is_missing
            continue
        stack.extend((c, n.is_error) for c in n.children)
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

    Only the region around the hole is parsed (tree-sitter `included_ranges`, so node offsets
    stay those of the whole file): an incremental reparse of a 5,000-line file costs up to half
    a full parse at some positions, a window costs what its few lines cost. Errors are counted
    in the same window before and after the insertion (the module says how for broken files).
    """

    def __init__(self, doc: Document, offset: int, replace_end: int | None = None) -> None:
        self.doc = doc
        self.offset = offset
        self.replace_end = offset if replace_end is None else replace_end
        self._parser = doc.spec.parser() if doc.spec and doc.tree is not None else None
        self._errors_before: int | None = None
        self._window: tuple[int, int] | bool | None = False  # False: not decided yet
        self._broken = False  # the window holds errors of its own (the hole's unit is broken)

    @property
    def window(self) -> tuple[int, int] | None:
        """Byte span of the original document that trials re-parse; None without a grammar."""
        if self._window is False:
            self._window = None
            if self.doc.tree is not None and self._parser is not None:
                self._decide()
        return self._window  # type: ignore[return-value]

    def _decide(self) -> None:
        """Pick the window: the declarations around the hole if they parse cleanly, else the
        text's top-level unit of the hole (clean, or broken: then its errors are the baseline)."""
        span = _top_level_span(self.doc, self.offset, self.replace_end)
        if span is not None and self._errors_in(span) == 0:
            self._window, self._errors_before = span, 0
            return
        unit = unit_span(self.doc.source, self.offset, self.replace_end,
                         self.doc.spec is not None and self.doc.spec.name == "python",
                         self.doc.tree)
        errors = self._errors_in(unit)
        self._window, self._errors_before, self._broken = unit, errors, errors > 0

    def _errors_in(self, span: tuple[int, int]) -> int:
        return count_errors(self._parse_range(self.doc.source, *span).root_node)

    @property
    def broken(self) -> bool:
        """True when the hole's own region has errors before any insertion."""
        _ = self.window
        return self._broken

    @property
    def errors_before(self) -> int:
        """Error nodes in the window (or file) as it is: the baseline a completion must not
        exceed."""
        if self._errors_before is None:
            if self._parser is None or self.doc.tree is None:
                self._errors_before = 0
            else:
                _ = self.window  # deciding the window counts its errors
        return self._errors_before or 0

    def _parse_range(self, source: bytes, start: int, end: int) -> Tree:
        assert self._parser is not None
        self._parser.included_ranges = [Range(point_of(source, start), point_of(source, end),
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
        window = self.window
        assert window is not None  # a document with a tree always has one
        shift = data_len - (self.replace_end - self.offset)
        tree = self._parse_range(source, window[0], window[1] + shift)
        root = tree.root_node
        if not data_len:
            inside = 0
        elif self.broken:
            inside = (errors_started_in(root, self.offset, new_end)
                      + swallowed(root, self.offset, new_end))
        else:
            inside = errors_within(root, self.offset, new_end)
        return Trial(text, before, count_errors(root), inside, tree, source)


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


def region_view(doc: Document, offset: int) -> Document:
    """`doc`, or, where the file is broken outside the top-level unit around `offset` (the
    unit parsed on its own has fewer error nodes than the file), a view of the same text whose
    tree is that unit's alone: the facts read at the cursor (the hole, its scopes, the names
    and members there) are then those of the code around it, not of tree-sitter's regrouping
    of a file broken somewhere else. A unit with errors of its own (the line being typed) is
    still read this way when the file has more."""
    if doc.tree is None or doc.spec is None or not doc.tree.root_node.has_error:
        return doc
    view = unit_view(doc, offset)
    assert view.tree is not None
    if view.tree.root_node.has_error and \
            count_errors(view.tree.root_node) >= count_errors(doc.tree.root_node):
        return doc  # the breakage is the cursor's own unit's: the file's tree says as much
    return view


def unit_view(doc: Document, offset: int) -> Document:
    """A view of `doc` whose tree is the parse of the top-level unit around `offset` alone."""
    if doc.tree is None or doc.spec is None:
        return doc
    start, end = unit_span(doc.source, offset, offset, doc.spec.name == "python", doc.tree)
    parser = doc.spec.parser()
    parser.included_ranges = [Range(point_of(doc.source, start), point_of(doc.source, end),
                                    start, end)]
    return Document.with_tree(doc, doc.source, parser.parse(doc.source))


MAX_UNIT_SCAN = 200_000  # bytes looked through, each way, for the lines that bound a unit
_CONTINUES = (b"else", b"elif", b"except", b"finally", b"case")  # Python: not a new unit


def unit_span(src: bytes, lo: int, hi: int, python: bool, tree: Tree | None = None
              ) -> tuple[int, int]:
    """The top-level unit holding [lo, hi], read from the text: from the last line at or above
    lo's that starts at column 0 with code (not a closing bracket, a comment or, in Python, an
    `else:`-like continuation) to the next such line below hi's (exclusive). With the file's
    `tree`, a line inside a string or comment (a docstring's text at column 0) starts nothing:
    tree-sitter lexes those locally, so even a broken file's tree knows them."""
    root = tree.root_node if tree is not None else None

    def starts(line: int) -> bool:
        return _starts_unit(src, line, python) and (root is None or not _in_literal(root, line))

    line = src.rfind(b"\n", 0, lo) + 1
    floor = max(0, lo - MAX_UNIT_SCAN)
    start = 0
    while line >= floor:
        if starts(line) and line <= lo:
            start = line
            break
        if line == 0:
            break
        line = src.rfind(b"\n", 0, line - 1) + 1
    end = len(src)
    nxt = src.find(b"\n", hi)
    ceiling = min(len(src), hi + MAX_UNIT_SCAN)
    while nxt != -1 and nxt + 1 < ceiling:
        if starts(nxt + 1):
            end = nxt + 1
            break
        nxt = src.find(b"\n", nxt + 1)
    return min(start, lo), max(end, hi)


_LITERALS = ("string", "comment", "template_string", "string_content", "string_fragment",
             "raw_string_literal", "interpreted_string_literal", "block_comment", "line_comment")


def _in_literal(root: Node, offset: int) -> bool:
    node = root.descendant_for_byte_range(offset, offset + 1)
    for _ in range(3):
        if node is None:
            return False
        if node.type in _LITERALS and node.start_byte < offset:
            return True
        node = node.parent
    return False


def _starts_unit(src: bytes, line: int, python: bool) -> bool:
    head = src[line:line + 8]
    if not head or head[:1] in b" \t\r\n)]}" or head.startswith((b"#", b"//", b"/*", b"*")):
        return False
    return not (python and head.startswith(_CONTINUES))


def point_of(source: bytes, offset: int) -> Point:
    """tree-sitter's (row, byte column) of an offset."""
    row = source.count(b"\n", 0, offset)
    return Point(row, offset - (source.rfind(b"\n", 0, offset) + 1))
