"""What the cursor sits in: the kind of hole to fill and the chain of enclosing scopes.

Both are read from the tree around the cursor with bounded work (a few dozen node visits), so they
run on every keystroke. A Python cursor on a blank line belongs to the block its indentation
says, not to where tree-sitter ended the previous block; for the other languages the braces decide.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from itertools import islice

from tree_sitter import Node

from analysis.documents.document import Document
from analysis.documents.node_types import SyntaxTable
from analysis.documents.tree_walks import ancestors, lineage
from analysis.index.definitions import scope_name

MAX_ANCESTORS = 64
MAX_SKIP_BYTES = 20_000  # how far to look for the previous or next significant token


class HoleKind(StrEnum):
    """The shape of code the cursor expects."""

    EXPRESSION = "expression"  # mid-line: continue an expression or the line
    ARGUMENTS = "arguments"  # inside a call's argument list
    STATEMENT = "statement"  # a blank line among statements: one or more statements
    BLOCK = "block"  # an empty block of if/for/while/class...: its whole body
    BODY = "body"  # an empty function body: the whole function body
    STRING = "string"  # inside a string literal
    COMMENT = "comment"  # inside a comment


@dataclass(frozen=True, slots=True)
class ScopeNode:
    """An enclosing scope found in the tree (converted to a `Scope` by the context)."""

    kind: str  # class, function, method, namespace, impl
    name: str
    node: Node


def hole_kind(doc: Document, offset: int, table: SyntaxTable) -> HoleKind:
    """The kind of hole at a byte offset (STATEMENT for plain text and empty files)."""
    if doc.tree is None:
        return HoleKind.STATEMENT
    src = doc.source
    root = doc.tree.root_node
    line_start = src.rfind(b"\n", 0, offset) + 1
    line_end = src.find(b"\n", offset)
    line_end = len(src) if line_end == -1 else line_end
    before = src[line_start:offset]
    after = src[offset:line_end]
    inside = _inside_literal(root, offset, table, src)
    if inside is not None:
        return inside
    if not after.strip() or after.strip() in (b"}", b"};"):
        stripped = before.rstrip()
        if not stripped or stripped.endswith(table.opener.encode()):
            return _block_or_statement(doc, offset, table, line_start)
    if _in_arguments(root, offset, table) or _open_paren_in_error(doc, offset, table):
        return HoleKind.ARGUMENTS
    if not before.strip():
        return HoleKind.STATEMENT
    return HoleKind.EXPRESSION


def _inside_literal(root: Node, offset: int, table: SyntaxTable, src: bytes) -> HoleKind | None:
    """COMMENT or STRING when the cursor is inside one (code in ${...} is not)."""
    if offset == 0:
        return None
    leaf = root.descendant_for_byte_range(offset - 1, offset)
    if leaf is None:
        return None
    for node in islice(lineage(leaf, root), MAX_ANCESTORS):
        if node.type in table.interpolations and node.start_byte < offset < node.end_byte:
            return None
        if node.type in table.comments and node.start_byte < offset:
            text = src[node.start_byte:node.start_byte + 2]
            line_comment = text.startswith((b"//", b"#"))
            if offset < node.end_byte or (line_comment and offset == node.end_byte):
                return HoleKind.COMMENT
        if node.type in table.strings and node.start_byte < offset < node.end_byte:
            return HoleKind.STRING
    return None


def _in_arguments(root: Node, offset: int, table: SyntaxTable) -> bool:
    leaf = root.descendant_for_byte_range(offset, offset)
    if leaf is None:
        return False
    for node in islice(lineage(leaf, root), MAX_ANCESTORS):
        if node.type in table.arguments and node.start_byte < offset:
            # At its very end only when the closing parenthesis is missing (still typing).
            return offset < node.end_byte or not _closed(node)
        if node.type in table.blocks or node.type in table.scopes:
            return False
    return False


def _open_paren_in_error(doc: Document, offset: int, table: SyntaxTable) -> bool:
    """In a broken statement (an ERROR node), an unclosed "(" before the cursor: arguments."""
    prev = significant_before(doc, offset, table)
    if prev is None or doc.tree is None:
        return False
    error = next((n for n in islice(lineage(prev, doc.tree.root_node), 4) if n.is_error), None)
    if error is None:
        return False
    depth = 0
    for child in error.children:
        if child.start_byte >= offset:
            break
        depth += (child.type == "(") - (child.type == ")")
    return depth > 0


def _closed(node: Node) -> bool:
    last = node.child(node.child_count - 1) if node.child_count else None
    return last is not None and not last.is_missing and last.type in (")", "]")


def _block_or_statement(doc: Document, offset: int, table: SyntaxTable,
                        line_start: int) -> HoleKind:
    """On a blank line, or right after a block opener: an empty body/block, or a statement."""
    prev = significant_before(doc, offset, table)
    if prev is None:
        return HoleKind.STATEMENT
    if table.indent_sensitive:
        return _python_blank(doc, offset, table, prev, line_start)
    if prev.type != table.opener:
        return HoleKind.STATEMENT
    block = prev.parent
    nxt = significant_after(doc, offset, table)
    empty = nxt is None or (nxt.type == "}" and nxt.parent is not None
                            and block is not None and nxt.parent.id == block.id)
    if not empty or block is None:
        return HoleKind.STATEMENT
    return HoleKind.BODY if _is_function_body(block, table) else HoleKind.BLOCK


def _is_function_body(block: Node, table: SyntaxTable) -> bool:
    if block.type in table.function_bodies:
        return True
    owner = block.parent
    return owner is not None and owner.type in table.functions


def _python_blank(doc: Document, offset: int, table: SyntaxTable, prev: Node,
                  line_start: int) -> HoleKind:
    src = doc.source
    column = offset - line_start if not src[line_start:offset].strip() else _indent_of(
        src, line_start)
    assert doc.tree is not None
    found = _header_for(prev, doc.tree.root_node, src, column)
    if found is None:
        return HoleKind.STATEMENT
    header, body = found
    header_indent = _line_indent(src, header.start_byte)
    nxt = significant_after(doc, offset, table)
    if nxt is not None and _line_indent(src, nxt.start_byte) > header_indent:
        return HoleKind.STATEMENT  # the block goes on below the cursor
    statements = [c for c in (body.named_children if body is not None else ())
                  if c.type not in table.comments and c.end_byte <= offset]
    if statements and not _only_docstring(statements, header, table):
        return HoleKind.STATEMENT
    return HoleKind.BODY if header.type in table.functions else HoleKind.BLOCK


def _header_for(prev: Node, root: Node, src: bytes, column: int
                ) -> tuple[Node, Node | None] | None:
    """The compound statement (and its block) that a blank Python line at `column` belongs to."""
    for node in islice(lineage(prev, root), MAX_ANCESTORS):
        if node.type.endswith(_COMPOUND_SUFFIXES) and _line_indent(src, node.start_byte) < column:
            opener = _opener_of(node)
            if opener is None or opener.end_byte > prev.end_byte:
                return None
            body = next((c for c in node.named_children
                         if c.type == "block" and c.start_byte >= opener.end_byte), None)
            return node, body
    return None


_COMPOUND_SUFFIXES = ("_statement", "_definition", "_clause")


def _opener_of(node: Node) -> Node | None:
    for child in node.children:
        if child.type == ":":
            return child
    return None


def _line_indent(src: bytes, offset: int) -> int:
    return _indent_of(src, src.rfind(b"\n", 0, offset) + 1)


def _only_docstring(statements: list[Node], header: Node, table: SyntaxTable) -> bool:
    first = statements[0]
    return (len(statements) == 1 and header.type in table.functions | {"class_definition"}
            and first.type == "expression_statement" and first.named_child_count == 1
            and first.named_children[0].type == "string")


def _indent_of(src: bytes, line_start: int) -> int:
    end = line_start
    while end < len(src) and src[end] in b" \t":
        end += 1
    return end - line_start


def significant_before(doc: Document, offset: int, table: SyntaxTable) -> Node | None:
    """The last leaf before `offset` that is not whitespace or a comment."""
    src = doc.source
    root = doc.tree.root_node if doc.tree is not None else None
    pos = offset
    floor = max(0, offset - MAX_SKIP_BYTES)
    while root is not None and pos > floor:
        pos -= 1
        if src[pos] in b" \t\r\n":
            continue
        leaf = root.descendant_for_byte_range(pos, pos + 1)
        if leaf is None:
            return None
        comment = _enclosing(leaf, root, table.comments)
        if comment is not None:
            pos = comment.start_byte
            continue
        return leaf
    return None


def significant_after(doc: Document, offset: int, table: SyntaxTable) -> Node | None:
    """The first leaf at or after `offset` that is not whitespace or a comment."""
    src = doc.source
    root = doc.tree.root_node if doc.tree is not None else None
    pos = offset
    ceiling = min(len(src), offset + MAX_SKIP_BYTES)
    while root is not None and pos < ceiling:
        if src[pos] in b" \t\r\n":
            pos += 1
            continue
        leaf = root.descendant_for_byte_range(pos, pos + 1)
        if leaf is None:
            return None
        comment = _enclosing(leaf, root, table.comments)
        if comment is not None:
            pos = max(comment.end_byte, pos + 1)
            continue
        return leaf
    return None


def _enclosing(node: Node, root: Node, types: frozenset[str]) -> Node | None:
    if node.type in types:  # the usual answer, without a climb
        return node
    return next((n for n in islice(ancestors(node, root), 3) if n.type in types), None)


def scope_chain(doc: Document, offset: int, table: SyntaxTable) -> list[ScopeNode]:
    """Enclosing classes, functions and namespaces, outermost first."""
    if doc.tree is None or not table.scopes:
        return []
    src = doc.source
    root = doc.tree.root_node
    line_start = src.rfind(b"\n", 0, offset) + 1
    blank_before = not src[line_start:offset].strip()
    anchor: Node | None
    column = None
    if table.indent_sensitive:
        # Python: the indentation of the cursor's line decides which blocks it is in.
        anchor = significant_before(doc, offset, table)
        column = offset - line_start if blank_before else _indent_of(src, line_start) + 1
    else:
        anchor = root.descendant_for_byte_range(offset, offset)
    chain: list[ScopeNode] = []
    for node in islice(lineage(anchor, root), MAX_ANCESTORS) if anchor is not None else ():
        kind = table.scopes.get(node.type)
        if kind is not None and _contains(node, offset, src, column):
            name = scope_name(src, node)
            if name or kind != "function":  # anonymous functions (lambdas) are not scopes
                chain.append(ScopeNode(kind, name or "(anonymous)", node))
    chain.reverse()
    for i, scope in enumerate(chain):
        if scope.kind == "function" and i and chain[i - 1].kind in ("class", "impl"):
            chain[i] = ScopeNode("method", scope.name, scope.node)
    return chain


def _contains(node: Node, offset: int, src: bytes, column: int | None) -> bool:
    if column is None:
        return node.start_byte < offset < node.end_byte or (
            offset == node.end_byte and node.has_error)
    return node.start_byte < offset and _line_indent(src, node.start_byte) < column
