"""What the cursor sits in, worked out once per position: the `Hole`.

One classifier, driven by the grammar's `SyntaxTable`, answers every question that the prompt
builder and the stages ask about the cursor: the kind of hole (an expression, call arguments, a
statement, an empty block or function body, a string, a comment), the line facts (indentation,
the text before and after the cursor on its line, the next lines, whether a line break follows),
the file's indentation unit and the chain of enclosing scopes. The stages, the CLI and the replay
benchmark read this value and never go back to the document for these facts, so a replay
measures what the editor gets.

Work is bounded (a few dozen node visits, a few KB of text), so it runs on every keystroke. A
Python cursor on a blank line belongs to the block its indentation says (at column 0: the
indentation the line would get, that of the code above, one level deeper after a `:`), not to
where tree-sitter ended the previous block; for the other languages the braces decide. The text
facts are masked like the prompt (analysis/secrets.py), since they are shown by `stagecoder
context` and the `stagecoder.completionContext` command.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from itertools import islice, pairwise

import msgspec
from tree_sitter import Node

from analysis.documents.document import Document
from analysis.documents.node_types import SyntaxTable, indent_unit, is_docstring
from analysis.documents.tree_walks import ancestors, lineage
from analysis.documents.trial import region_view
from analysis.index.definitions import scope_name
from analysis.secrets import redact, redact_window

MAX_ANCESTORS = 64
MAX_SKIP_BYTES = 20_000  # how far to look for the previous or next significant token
MAX_FACT_BYTES = 4_000  # of the line before the cursor, and of what follows it, kept as facts
UNIT_BEFORE, UNIT_AFTER = 4_000, 1_000  # bytes around the cursor read for the indentation unit
SUFFIX_LINES = 3  # next non-blank lines kept
MAX_LOOK_LINES = 64  # lines looked at, up or down, for the code line above / the next lines
MAX_SIGNATURE = 200
TAB_WIDTH = 8


class HoleKind(StrEnum):
    """The shape of code the cursor expects."""

    EXPRESSION = "expression"  # mid-line: continue an expression or the line
    ARGUMENTS = "arguments"  # inside a call's argument list
    STATEMENT = "statement"  # a blank line among statements: one or more statements
    BLOCK = "block"  # an empty block of if/for/while/class...: its whole body
    BODY = "body"  # an empty function body: the whole function body
    STRING = "string"  # inside a string literal
    COMMENT = "comment"  # inside a comment


class Scope(msgspec.Struct, frozen=True, rename="camel"):
    """One enclosing scope of the cursor."""

    kind: str  # class, function, method, namespace, impl
    name: str
    signature: str  # its header on one line, e.g. "def total(self) -> Decimal:"
    line: int  # zero-based line where it starts
    start: int  # byte span of its node (the names a stage may use are read from there)
    end: int


class Hole(msgspec.Struct, frozen=True, kw_only=True, rename="camel"):
    """Everything about the cursor that the prompt builder and the stages need, computed once."""

    kind: HoleKind
    offset: int  # the cursor, in bytes
    indent: str  # the indentation of the cursor's line, as written
    base_indent: int  # columns (tabs count 8) of the code the hole holds: a block's statements
    indent_unit: str  # one level of indentation in this file: "\t", "  ", "    "
    line_before: str  # the cursor's line up to the cursor (masked; its last 4,000 bytes)
    line_rest: str  # the rest of the cursor's line (masked; at most 4,000 bytes)
    suffix_lines: tuple[str, ...]  # the next non-blank lines after the cursor's line, stripped
    newline_follows: bool  # a line break (or the end of the file) follows the cursor
    scopes: tuple[Scope, ...] = ()  # enclosing scopes, outermost first

    @property
    def in_literal(self) -> bool:
        """True when the cursor is inside a comment or a string."""
        return self.kind in (HoleKind.STRING, HoleKind.COMMENT)

    @property
    def code_before(self) -> bool:
        """True when code precedes the cursor on its line."""
        return bool(self.line_before.strip())


def empty_hole(offset: int, unit: str) -> Hole:
    """The hole of a position whose text is not read (a file kept from the model)."""
    return Hole(kind=HoleKind.STATEMENT, offset=offset, indent="", base_indent=0,
                indent_unit=unit, line_before="", line_rest="", suffix_lines=(),
                newline_follows=True)


@dataclass(frozen=True, slots=True)
class ScopeNode:
    """An enclosing scope found in the tree (a `Scope` in the hole; related snippets use it)."""

    kind: str  # class, function, method, namespace, impl
    name: str
    node: Node


def classify(doc: Document, offset: int, table: SyntaxTable, path: str = ""
             ) -> tuple[Hole, list[ScopeNode]]:
    """The hole at a byte offset (a character boundary), and its scopes as tree nodes; `path`
    picks the secret rules for masking the text facts. In a file broken outside the cursor's
    top-level unit, the unit's own parse is read (analysis/documents/trial.py `region_view`)."""
    doc = region_view(doc, offset)
    src = doc.source
    line_start = src.rfind(b"\n", 0, offset) + 1
    line_end = src.find(b"\n", offset)
    line_end = len(src) if line_end == -1 else line_end
    unit = indent_unit(src[max(0, offset - UNIT_BEFORE):offset + UNIT_AFTER]
                       .decode("utf-8", "replace"), table)
    before = src[line_start:offset]
    indent = before[:len(before) - len(before.lstrip(b" \t"))]
    if before.rstrip().endswith(table.opener.encode()):  # the hole is the block it opens
        column = base = _width(indent) + _width(unit.encode())
    elif before.strip():
        column = base = _width(indent)
    else:
        column = base = _width(before) if before else _expected_indent(doc, line_start, unit,
                                                                        table)
    kind = _kind(doc, offset, table, line_start, line_end, column)
    chain = scope_chain(doc, offset, table, column)
    line_before, line_rest, suffix_lines = _line_facts(src, line_start, offset, line_end, path)
    hole = Hole(
        kind=kind, offset=offset, indent=indent.decode("utf-8", "replace"), base_indent=base,
        indent_unit=unit, line_before=line_before, line_rest=line_rest,
        suffix_lines=suffix_lines,
        newline_follows=src[offset:offset + 1] in (b"\n", b"\r") or offset == len(src),
        scopes=tuple(_scope(src, s, path) for s in chain))
    return hole, chain


# ---------------------------------------------------------------------- line facts


def _width(indent: bytes) -> int:
    """Columns of leading whitespace, tabs to the next multiple of TAB_WIDTH."""
    return len(indent.decode("utf-8", "replace").expandtabs(TAB_WIDTH))


def _leading(src: bytes, line_start: int) -> bytes:
    end = line_start
    while end < len(src) and src[end] in b" \t":
        end += 1
    return src[line_start:end]


def _expected_indent(doc: Document, line_start: int, unit: str, table: SyntaxTable) -> int:
    """Indentation for code on an empty line. Python: one level in from the header of a block
    opened just above, else that of the statement just above (a continuation line's alignment
    is not the block's). Elsewhere, and in broken code: the code line above's, one level deeper
    after a block or bracket opener."""
    src = doc.source
    step = _width(unit.encode())
    if table.indent_sensitive and doc.tree is not None:
        prev = significant_before(doc, line_start, table)
        if prev is None:
            return 0
        nodes = list(islice(lineage(prev, doc.tree.root_node), MAX_ANCESTORS))
        if prev.type == table.opener and len(nodes) > 1 and \
                nodes[1].type.endswith(_COMPOUND_SUFFIXES):
            return _line_indent(src, nodes[1].start_byte) + step
        for node, parent in pairwise(nodes):
            if parent.type in table.blocks:
                return _line_indent(src, node.start_byte)
    end = line_start - 1
    for _ in range(MAX_LOOK_LINES):
        if end < 0:
            return 0
        start = src.rfind(b"\n", 0, end) + 1
        text = src[start:end].rstrip()
        if text:
            width = _width(_leading(src, start))
            return width + step if text.endswith((b":", b"{", b"(", b"[")) else width
        end = start - 1
    return 0


def _line_facts(src: bytes, line_start: int, offset: int, line_end: int, path: str
                ) -> tuple[str, str, tuple[str, ...]]:
    """(line before the cursor, rest of its line, next non-blank lines), masked as the prompt
    is, from one window of at most MAX_FACT_BYTES on each side."""
    lo = max(line_start, offset - MAX_FACT_BYTES)
    ceiling = min(len(src), offset + MAX_FACT_BYTES)
    hi = min(line_end, ceiling)
    found = 0
    pos = line_end + 1
    for _ in range(MAX_LOOK_LINES):
        if found == SUFFIX_LINES or pos > ceiling or pos > len(src):
            break
        nxt = src.find(b"\n", pos)
        nxt = len(src) if nxt == -1 else nxt
        if src[pos:nxt].strip():
            found += 1
            hi = min(nxt, ceiling)
        pos = nxt + 1
    while lo < offset and src[lo] & 0xC0 == 0x80:
        lo += 1  # the window starts on a character
    while hi > offset and hi < len(src) and src[hi] & 0xC0 == 0x80:
        hi -= 1
    before, after, _ = redact_window(src, lo, offset, hi, path)
    rest, _, following = after.partition("\n")
    lines = tuple(s for line in following.split("\n") if (s := line.strip()))
    return before, rest.rstrip("\r"), lines[:SUFFIX_LINES]


def _scope(src: bytes, scope: ScopeNode, path: str) -> Scope:
    node = scope.node
    body = node.child_by_field_name("body")
    end = body.start_byte if body is not None else min(node.end_byte, node.start_byte + 400)
    header = " ".join(src[node.start_byte:end].decode("utf-8", "replace").split())
    # A default argument may hold a secret; read a little past the cut so a cut one is seen.
    header = redact(header[:2 * MAX_SIGNATURE], path).text
    return Scope(scope.kind, scope.name, header[:MAX_SIGNATURE], node.start_point.row,
                 node.start_byte, node.end_byte)


# ---------------------------------------------------------------------- the kind


def _kind(doc: Document, offset: int, table: SyntaxTable, line_start: int, line_end: int,
          column: int) -> HoleKind:
    """The kind of hole; `column` is where a Python blank line's code goes (see the module)."""
    src = doc.source
    before = src[line_start:offset]
    after = src[offset:line_end].strip()
    if doc.tree is not None:
        inside = _inside_literal(doc.tree.root_node, offset, table, src)
        if inside is not None:
            return inside
    if not after or after in (b"}", b"};"):
        stripped = before.rstrip()
        if not stripped or stripped.endswith(table.opener.encode()):
            if doc.tree is None:
                return HoleKind.STATEMENT
            return _block_or_statement(doc, offset, table, column)
    if doc.tree is not None and (_in_arguments(doc.tree.root_node, offset, table)
                                 or _open_paren_in_error(doc, offset, table)):
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


def _block_or_statement(doc: Document, offset: int, table: SyntaxTable, column: int) -> HoleKind:
    """On a blank line, or right after a block opener: an empty body/block, or a statement."""
    prev = significant_before(doc, offset, table)
    if prev is None:
        return HoleKind.STATEMENT
    if table.indent_sensitive:
        return _python_blank(doc, offset, table, prev, column)
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
                  column: int) -> HoleKind:
    src = doc.source
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
    if statements and not (len(statements) == 1 and is_docstring(statements[0])
                           and header.type in table.functions | {"class_definition"}):
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
    """Columns of indentation of the line holding `offset`."""
    return _width(_leading(src, src.rfind(b"\n", 0, offset) + 1))


# ---------------------------------------------------------------------- neighbours and scopes


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


def scope_chain(doc: Document, offset: int, table: SyntaxTable, column: int
                ) -> list[ScopeNode]:
    """Enclosing classes, functions and namespaces, outermost first; `column` is where the
    cursor's code goes (Python: the indentation decides which blocks it is in)."""
    if doc.tree is None or not table.scopes:
        return []
    src = doc.source
    root = doc.tree.root_node
    anchor: Node | None
    python_column = None
    if table.indent_sensitive:
        line_start = src.rfind(b"\n", 0, offset) + 1
        anchor = significant_before(doc, offset, table)
        # A line with code is in the blocks its indentation opens one level deeper than.
        python_column = column if not src[line_start:offset].strip() else column + 1
    else:
        anchor = root.descendant_for_byte_range(offset, offset)
    chain: list[ScopeNode] = []
    for node in islice(lineage(anchor, root), MAX_ANCESTORS) if anchor is not None else ():
        kind = table.scopes.get(node.type)
        if kind is not None and _contains(node, offset, src, python_column):
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
