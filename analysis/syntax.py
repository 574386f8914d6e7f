"""Trial insertions: would this text, inserted at this offset, parse with no new error node?

A trial edits a copy of the document's tree and reparses incrementally, so each check costs
about as much as one keystroke, not a full parse. Error nodes are counted by descending only into
subtrees that carry an error, so a clean file costs nothing to count.
"""

from __future__ import annotations

from dataclasses import dataclass

from tree_sitter import Node, Tree

from analysis.document import Document


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
    """Parses the document with candidate insertions at one offset, reusing the tree."""

    def __init__(self, doc: Document, offset: int, replace_end: int | None = None) -> None:
        self.doc = doc
        self.offset = offset
        self.replace_end = offset if replace_end is None else replace_end
        self._parser = doc.spec.parser() if doc.spec and doc.tree is not None else None
        self._errors_before: int | None = None

    @property
    def errors_before(self) -> int:
        """Error nodes in the document as it is (the baseline a completion must not exceed)."""
        if self._errors_before is None:
            tree = self.doc.tree
            self._errors_before = count_errors(tree.root_node) if tree is not None else 0
        return self._errors_before

    def source_with(self, text: str) -> bytes:
        """The document's bytes with `text` in place of the hole."""
        src = self.doc.source
        return src[: self.offset] + text.encode("utf-8", "surrogatepass") + src[self.replace_end :]

    def trial(self, text: str) -> Trial:
        """Parse the document with `text` inserted; plain-text documents always pass."""
        source = self.source_with(text)
        if self._parser is None or self.doc.tree is None:
            return Trial(text, 0, 0, 0, None, source)
        tree = self.doc.tree.copy()
        data_len = len(text.encode("utf-8", "surrogatepass"))
        new_end = self.offset + data_len
        start_point = self.doc.point_at(self.offset)
        tree.edit(
            start_byte=self.offset,
            old_end_byte=self.replace_end,
            new_end_byte=new_end,
            start_point=start_point,
            old_end_point=self.doc.point_at(self.replace_end),
            new_end_point=_advance(start_point, text),
        )
        new_tree = self._parser.parse(source, tree)
        root = new_tree.root_node
        inside = errors_within(root, self.offset, new_end) if data_len else 0
        return Trial(text, self.errors_before, count_errors(root), inside, new_tree, source)


def _advance(point: tuple[int, int], text: str) -> tuple[int, int]:
    """The point reached after writing `text` from `point` (rows count "\\n")."""
    data = text.encode("utf-8", "surrogatepass")
    newlines = data.count(b"\n")
    if not newlines:
        return (point[0], point[1] + len(data))
    return (point[0] + newlines, len(data) - data.rfind(b"\n") - 1)
