"""Where a prompt's prefix may start and its suffix may end: statement boundaries, found in the
tree near a line-based cut, and character boundaries for a single overlong line.

Work is bounded: at most MAX_SNAP_LINES lines are probed, each with a few node visits; where
the tree is deeper than MAX_SNAP_DEPTH levels at the cut (each probe would cost that depth, and
tree-sitter finds a parent by descending from the root), the line-based cut stands.
"""

from __future__ import annotations

from itertools import islice

from tree_sitter import Node

from analysis.documents.document import Document
from analysis.documents.node_types import SyntaxTable
from analysis.documents.tree_walks import depth_over, lineage

MAX_SNAP_LINES = 64  # how far a cut may move to reach a statement boundary
LOOKAHEAD_LINES = 8  # after one, how much further a shallower boundary is worth looking
LOOKAHEAD_SHARE = 0.15  # ... and at most this share of the prefix is given up for it
MAX_SNAP_DEPTH = 1_000  # nesting at the cut beyond which no statement boundary is looked for
BYTES_PER_TOKEN_FLOOR = 3  # for cuts inside a line: never more bytes than this per token


def snap_forward(doc: Document, pos: int, limit: int, table: SyntaxTable) -> int:
    """Move a prefix cut (a line start) forward to a line that starts a statement."""
    # A shallower statement a few lines on wins: a whole function beats the tail of a body.
    if doc.tree is None or pos == 0 or _too_deep(doc.tree.root_node, pos):
        return pos
    src = doc.source
    root = doc.tree.root_node
    line = pos
    best: tuple[int, int] | None = None  # (depth, line start)
    since_best = 0
    max_skip = (limit - pos) * LOOKAHEAD_SHARE
    for _ in range(MAX_SNAP_LINES):
        if line >= limit or (best is not None and (since_best > LOOKAHEAD_LINES
                                                   or line - best[1] > max_skip)):
            break
        first = line
        while first < limit and src[first] in b" \t\r":
            first += 1
        since_best += 1
        if first < limit and src[first] != 0x0A:
            depth = _statement_depth(root, first, table)
            if depth is not None and (best is None or depth < best[0]):
                best, since_best = (depth, line), 0
        nxt = src.find(b"\n", line)
        if nxt == -1 or nxt + 1 > limit:
            break
        line = nxt + 1
    return best[1] if best is not None else pos


def _too_deep(root: Node, pos: int) -> bool:
    leaf = root.descendant_for_byte_range(pos, pos)
    return leaf is not None and depth_over(root, leaf, MAX_SNAP_DEPTH)


def _statement_depth(root: Node, pos: int, table: SyntaxTable) -> int | None:
    """How many blocks enclose the named statement starting at `pos`; None when none starts."""
    leaf = root.descendant_for_byte_range(pos, pos)
    if leaf is None:
        return None
    nodes = lineage(leaf, root)  # one pass up, linear in the depth
    node: Node | None = next(nodes)
    while node is not None and node.start_byte == pos:
        parent = next(nodes, None)
        if node.is_named and (parent is None or parent.type in table.blocks
                              or parent.type == "ERROR"):
            above = [] if parent is None else [parent, *islice(nodes, 63)]
            return sum(p.type in table.blocks for p in above)
        node = parent
    return None


def snap_back(doc: Document, offset: int, end: int, table: SyntaxTable) -> int:
    """Move a suffix cut (after a line break) back to the end of a statement; at worst to the
    end of the cursor's line."""
    if doc.tree is None or _too_deep(doc.tree.root_node, max(end - 1, 0)):
        return end
    src = doc.source
    root = doc.tree.root_node
    floor = src.find(b"\n", offset)
    if floor == -1:
        return end
    cut = end
    for _ in range(MAX_SNAP_LINES):
        last = cut - 1
        while last > floor and src[last] in b" \t\r\n":
            last -= 1
        if last <= floor:
            return floor + 1
        if _ends_statement(root, last + 1, table):
            line_end = src.find(b"\n", last)
            return cut if line_end == -1 else line_end + 1  # trailing blank lines dropped
        cut = src.rfind(b"\n", 0, last) + 1
    return end


def _ends_statement(root: Node, pos: int, table: SyntaxTable) -> bool:
    """True when a statement-level node (a child of a block, not a comment) ends at `pos`."""
    leaf = root.descendant_for_byte_range(pos - 1, pos)
    if leaf is None:
        return False
    nodes = lineage(leaf, root)
    node: Node | None = next(nodes)
    while node is not None and node.end_byte == pos:
        parent = next(nodes, None)
        if node.is_named and (parent is None or parent.type in table.blocks):
            return node.type not in table.comments
        node = parent
    return False


def char_cut(src: bytes, offset: int, budget: float, floor: int) -> int:
    """A start inside one long line: about `budget` tokens before `offset`, on a char boundary."""
    pos = max(floor, offset - int(budget * BYTES_PER_TOKEN_FLOOR))
    while pos < offset and src[pos] & 0xC0 == 0x80:
        pos += 1
    return pos


def char_cut_forward(src: bytes, offset: int, budget: float, ceiling: int) -> int:
    """An end inside one long line: about `budget` tokens after `offset`, on a char boundary."""
    pos = min(ceiling, offset + int(budget * BYTES_PER_TOKEN_FLOOR))
    while pos > offset and pos < len(src) and src[pos] & 0xC0 == 0x80:
        pos -= 1
    return pos
