"""Tree walks that stay linear at any nesting depth: ancestors, a depth test, a bounded sexp.

tree-sitter nodes hold no parent pointer: `Node.parent` descends from the root, so one call
costs the node's depth, and a climb of k levels from depth d costs k * d (at depth 100,000 one
call takes 10 ms, a climb to the root minutes). `ancestors` climbs the first levels that way (most
climbs stop within a few) and then computes the whole chain from the root once, in one pass
down. `str(node)` (tree-sitter's `ts_node_string`) recurses in C and kills the process beyond
about 30,000 levels; `sexp` builds the same text with a TreeCursor, up to a size bound.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from tree_sitter import Node

SHORT_CLIMB = 2  # levels climbed with Node.parent before the chain is built from the root


def ancestors(node: Node, root: Node) -> Iterator[Node]:
    """The ancestors of `node` up to `root` (a node of the same tree), nearest first."""
    current = node
    for _ in range(SHORT_CLIMB):
        if current.id == root.id:
            return
        parent = current.parent
        if parent is None:
            return
        yield parent
        current = parent
    if current.id == root.id:
        return
    yield from reversed(path_to(root, current))


def lineage(node: Node, root: Node) -> Iterator[Node]:
    """`node` itself, then its ancestors up to `root`, nearest first."""
    yield node
    yield from ancestors(node, root)


def path_to(root: Node, node: Node) -> list[Node]:
    """The nodes from `root` down to `node`'s parent (empty when `node` is `root` or outside)."""
    path: list[Node] = []
    current: Node | None = root
    while current is not None and current.id != node.id:
        path.append(current)
        current = current.child_with_descendant(node)
    return path if current is not None else []


def depth_over(root: Node, node: Node, limit: int) -> bool:
    """True when `node` lies more than `limit` levels below `root` (at most `limit` steps)."""
    current: Node | None = root
    depth = 0
    while current is not None and current.id != node.id:
        depth += 1
        if depth > limit:
            return True
        current = current.child_with_descendant(node)
    return False


def deeper_than(root: Node, limit: int, tick: Callable[[], None] | None = None) -> bool:
    """True when some node lies more than `limit` levels below `root`; `tick` is called at every
    node visited (a budget check: a tree of many lines each nearly `limit` deep costs a visit
    per node).

    Cheap on ordinary trees: a subtree with fewer descendants than the levels still missing
    cannot reach that deep, so it is never entered (`descendant_count` is stored in the tree).
    """
    cursor = root.walk()
    depth = 0
    while True:
        if depth > limit:
            return True
        if tick is not None:
            tick()
        node = cursor.node
        assert node is not None  # a cursor always stands on a node
        if depth + node.descendant_count - 1 > limit and cursor.goto_first_child():
            depth += 1
            continue
        while not cursor.goto_next_sibling():
            if depth == 0 or not cursor.goto_parent():
                return False
            depth -= 1


def sexp(root: Node, limit: int) -> tuple[str, bool]:
    """`str(root)` built without recursion, cut after about `limit` characters.

    Returns the text and whether it was cut. Named nodes print as `(type ...)` with `field: `
    prefixes, missing ones as `(MISSING type)`, error leaves as `(UNEXPECTED 'c')`: the format of
    tree-sitter's own `ts_node_string`, identical for trees without errors. In broken code two
    details can differ: a MISSING token of a hidden rule (Python's `_newline`) is not shown (a
    cursor never visits it), and an error leaf shows its first character.
    """
    parts: list[str] = []
    size = 0
    cursor = root.walk()
    shown: list[bool] = []  # per level of the cursor: did this node print an opening "("?
    source_cut = False
    while True:
        node = cursor.node
        assert node is not None  # a cursor always stands on a node
        visible = not shown or node.is_named or node.is_missing  # the root always shows
        if visible:
            piece = _opening(node, cursor.field_name if shown else None)
            if shown:
                piece = " " + piece
            parts.append(piece)
            size += len(piece)
        if size > limit:
            source_cut = True
            break
        if cursor.goto_first_child():
            shown.append(visible)
            continue
        if visible:
            parts.append(")")
        while not cursor.goto_next_sibling():
            if not shown or not cursor.goto_parent():
                return "".join(parts), False
            if shown.pop():
                parts.append(")")
    text = "".join(parts)
    return text[:limit], source_cut


def _opening(node: Node, field: str | None) -> str:
    prefix = f"{field}: " if field else ""
    if node.is_missing:
        kind = node.type if node.is_named else f'"{node.type}"'
        return f"{prefix}(MISSING {kind}"
    if node.is_error and node.child_count == 0 and node.end_byte > node.start_byte:
        return f"{prefix}(UNEXPECTED {_char(node)}"
    return f"{prefix}({node.type}"


def _char(node: Node) -> str:
    """The unexpected character of an error leaf, written as tree-sitter writes it."""
    text = (node.text or b"").decode("utf-8", "replace")
    code = ord(text[0]) if text else -1
    escapes = {0: "'\\0'", 10: "'\\n'", 9: "'\\t'", 13: "'\\r'"}
    if code in escapes:
        return escapes[code]
    if 32 <= code < 127:
        return f"'{chr(code)}'"
    return "INVALID" if code < 0 else str(code)
