"""Definitions of one parsed file, read with tree-sitter tag queries: name, kind, signature, doc.

The queries live in `analysis/index/queries/<language>-tags.scm`. Each definition keeps only what a
prompt needs and what the naming stage checks against: its header as written (for data types the
whole short body, since fields are the interesting part), its doc comment or docstring, and the
class, impl or namespace it belongs to. Text is capped so the index stays small.
"""

from __future__ import annotations

import sys
import threading
from dataclasses import dataclass
from pathlib import Path

from tree_sitter import Node, Query, QueryCursor

from analysis.documents.document import Document
from analysis.documents.node_types import table_for

MAX_SYMBOLS_PER_FILE = 400
MAX_SIGNATURE_BYTES = 480
MAX_SIGNATURE_LINES = 12
MAX_DOC_BYTES = 320
MAX_DOC_LINES = 6

_QUERY_DIR = Path(__file__).with_name("queries")
_QUERY_FILE = {"tsx": "typescript"}
_queries: dict[str, Query | None] = {}
_lock = threading.Lock()

# Definitions whose header is enough: their bodies are code, listed separately as members.
_HEADER_ONLY = frozenset({
    "class_definition", "class_declaration", "class", "abstract_class_declaration",
    "record_declaration", "impl_item", "mod_item",
})
# Wrappers whose start (export, template<...>) belongs to the signature and whose leading
# comments are the definition's doc.
_OUTER = frozenset({"export_statement", "template_declaration", "decorated_definition"})
_SIGNATURE_OUTER = frozenset({"export_statement", "template_declaration"})
_GO_SPECS = frozenset({"const_spec", "var_spec", "type_spec"})


@dataclass(frozen=True, slots=True)
class Symbol:
    """One definition in the workspace."""

    name: str
    kind: str  # function, method, class, interface, type, constant, macro
    path: str  # absolute posix path of the file that defines it
    line: int  # zero-based line where the definition starts
    container: str  # enclosing class, impl, type or namespace; "" at the top level
    signature: str  # the header as written; for data types the (capped) whole definition
    doc: str  # the doc comment or docstring as written; "" when there is none


def tags_query(language: str) -> Query | None:
    """The compiled tag query of a language, or None when it has none."""
    if language in _queries:
        return _queries[language]
    with _lock:
        if language not in _queries:
            _queries[language] = _load_query(language)
    return _queries[language]


def _load_query(language: str) -> Query | None:
    from analysis.documents.languages import by_name

    spec = by_name(language)
    file = _QUERY_DIR / f"{_QUERY_FILE.get(language, language)}-tags.scm"
    if spec is None or not file.is_file():
        return None
    return Query(spec.language, file.read_text(encoding="utf-8"))


def extract_symbols(doc: Document, path: str | None = None) -> tuple[Symbol, ...]:
    """Every definition the tag query finds in a document, in source order."""
    query = tags_query(doc.language) if doc.tree is not None else None
    if query is None or doc.tree is None:
        return ()
    file_path = sys.intern(path or doc.uri)
    src = doc.source
    # A node two patterns capture (a const holding an arrow function) keeps the earlier pattern.
    picked: dict[int, tuple[int, Node, Node, str]] = {}
    for pattern, caps in QueryCursor(query).matches(doc.tree.root_node):
        name_nodes = caps.get("name")
        if not name_nodes:
            continue
        for capture, nodes in caps.items():
            if capture.startswith("definition."):
                node = nodes[0]
                if node.id not in picked or picked[node.id][0] > pattern:
                    picked[node.id] = (pattern, node, name_nodes[0], capture[11:])
        if len(picked) >= MAX_SYMBOLS_PER_FILE:
            break
    found: list[tuple[int, Symbol]] = []
    for _, node, name_node, kind in picked.values():
        symbol = _symbol(doc, src, node, name_node, kind, file_path)
        if symbol is not None:
            found.append((node.start_byte, symbol))
    found.sort(key=lambda item: item[0])
    return tuple(symbol for _, symbol in found)


def _text(src: bytes, start: int, end: int) -> str:
    return src[start:end].decode("utf-8", "replace")


def _symbol(doc: Document, src: bytes, node: Node, name_node: Node, kind: str,
            path: str) -> Symbol | None:
    name = _text(src, name_node.start_byte, name_node.end_byte)
    if "::" in name:  # C++ `Matrix::at`: the name is the last part, the rest its container
        container, _, name = name.rpartition("::")
    else:
        container = _container(doc, src, node)
    if not name or (name.startswith("_") and kind == "constant" and doc.language == "python"):
        return None
    if doc.language == "java" and kind == "constant" and "static" not in _text(
            src, node.start_byte, name_node.start_byte):
        return None
    if node.type == "preproc_def" and node.child_by_field_name("value") is None:
        return None  # an include guard or a flag, not a constant anyone calls
    if kind == "function" and container and _member_of_type(doc, node):
        kind = "method"
    if doc.language == "go" and node.type == "type_spec":
        kind = _go_type_kind(node)
    return Symbol(
        name=sys.intern(name),
        kind=kind,
        path=path,
        line=node.start_point.row,
        container=sys.intern(container),
        signature=_signature(doc, src, node),
        doc=_doc(doc, src, node),
    )


def _member_of_type(doc: Document, node: Node) -> bool:
    """True when a function belongs to a type (class, impl, receiver), not to a namespace."""
    if node.type == "method_declaration":  # Go methods have receivers, Java's have classes
        return True
    declarator = node.child_by_field_name("declarator")
    if declarator is not None and b"::" in (declarator.text or b"").split(b"(")[0]:
        return True  # C++ out-of-class definition `Matrix::at`
    scopes = table_for(doc.language).scopes
    parent = node.parent
    while parent is not None:
        kind = scopes.get(parent.type)
        if kind is not None:
            return kind in ("class", "impl")
        parent = parent.parent
    return False


def _go_type_kind(node: Node) -> str:
    body = node.child_by_field_name("type")
    if body is not None and body.type == "interface_type":
        return "interface"
    return "class" if body is not None and body.type == "struct_type" else "type"


def _container(doc: Document, src: bytes, node: Node) -> str:
    """Name of the class-like scope around a definition (Go: the method's receiver type)."""
    if node.type == "method_declaration" and doc.language == "go":
        receiver = node.child_by_field_name("receiver")
        if receiver is not None:
            for ident in _leaves(receiver):
                if ident.type == "type_identifier":
                    return _text(src, ident.start_byte, ident.end_byte)
        return ""
    scopes = table_for(doc.language).scopes
    parent = node.parent
    depth = 0
    while parent is not None and depth < 12:
        kind = scopes.get(parent.type)
        if kind == "function":
            return ""  # a definition local to a function is nobody's member
        if kind in ("class", "impl", "namespace"):
            return scope_name(src, parent)
        parent = parent.parent
        depth += 1
    return ""


def scope_name(src: bytes, node: Node) -> str:
    """The name a scope node declares ("" for anonymous ones)."""
    if node.type == "impl_item":
        target = node.child_by_field_name("type")
        return _text(src, target.start_byte, target.end_byte) if target else ""
    name = node.child_by_field_name("name")
    if name is None:
        declarator = node.child_by_field_name("declarator")
        while declarator is not None and declarator.type not in (
                "identifier", "field_identifier", "qualified_identifier", "destructor_name",
                "operator_name"):
            declarator = declarator.child_by_field_name("declarator")
        name = declarator
    if name is None and node.parent is not None and node.parent.type == "variable_declarator":
        name = node.parent.child_by_field_name("name")
    return _text(src, name.start_byte, name.end_byte) if name is not None else ""


def _leaves(node: Node, limit: int = 64):
    stack = [node]
    count = 0
    while stack and count < limit:
        current = stack.pop()
        count += 1
        if current.child_count == 0:
            yield current
        else:
            stack.extend(reversed(current.children))


def _signature(doc: Document, src: bytes, node: Node) -> str:
    start, column = node.start_byte, node.start_point.column
    parent = node.parent
    if parent is not None and (parent.type in _SIGNATURE_OUTER or (
            node.type in _GO_SPECS and parent.named_child_count == 1)):
        start, column = parent.start_byte, parent.start_point.column
    body = _body(node)
    if body is not None and (node.type in _HEADER_ONLY or node.type in table_for(
            doc.language).functions or _is_function_value(node)):
        end = body.start_byte
    else:
        end = node.end_byte
    text = dedent_continuation(_text(src, start, end).rstrip(), column)
    return _cap(text, MAX_SIGNATURE_BYTES, MAX_SIGNATURE_LINES)


def _body(node: Node) -> Node | None:
    body = node.child_by_field_name("body")
    if body is not None:
        return body
    if node.type in ("lexical_declaration", "variable_declaration"):
        for declarator in node.named_children:
            value = declarator.child_by_field_name("value")
            if value is not None and value.type in ("arrow_function", "function_expression"):
                return value.child_by_field_name("body")
    return None


def _is_function_value(node: Node) -> bool:
    return node.type in ("lexical_declaration", "variable_declaration")


def _doc(doc: Document, src: bytes, node: Node) -> str:
    if doc.language == "python" and node.type in ("function_definition", "class_definition"):
        body = node.child_by_field_name("body")
        first = body.named_children[0] if body is not None and body.named_child_count else None
        if first is not None and first.type == "expression_statement" and first.named_child_count:
            literal = first.named_children[0]
            if literal.type == "string":
                text = _text(src, literal.start_byte, literal.end_byte)
                return _cap(dedent_continuation(text, literal.start_point.column),
                            MAX_DOC_BYTES, MAX_DOC_LINES)
        return ""
    return leading_comments(src, node, table_for(doc.language).comments)


def leading_comments(src: bytes, node: Node, comment_types: frozenset[str]) -> str:
    """The comments right above a node (its doc), joined; "" when there are none."""
    outer = node
    while outer.parent is not None and outer.parent.type in _OUTER:
        outer = outer.parent
    if outer.type == "type_spec" and outer.parent is not None:
        outer = outer.parent  # Go: the comment sits above `type X struct`
    pieces: list[Node] = []
    row = outer.start_point.row
    sibling = outer.prev_named_sibling
    while sibling is not None and len(pieces) < MAX_DOC_LINES:
        if sibling.type == "attribute_item":  # Rust: #[derive] between the doc and the item
            row = sibling.start_point.row
        elif sibling.type in comment_types:
            end_row = sibling.end_point.row - (1 if sibling.end_point.column == 0 else 0)
            if end_row < row - 1:
                break
            pieces.append(sibling)
            row = sibling.start_point.row
        else:
            break
        sibling = sibling.prev_named_sibling
    if not pieces:
        return ""
    pieces.reverse()
    text = "\n".join(_text(src, p.start_byte, p.end_byte).rstrip() for p in pieces)
    return _cap(dedent_continuation(text, pieces[0].start_point.column), MAX_DOC_BYTES,
                MAX_DOC_LINES)


def dedent_continuation(text: str, column: int) -> str:
    """Remove the first line's source column of indentation from every later line."""
    if column <= 0 or "\n" not in text:
        return text
    first, *rest = text.split("\n")
    out = [first]
    for line in rest:
        cut = 0
        while cut < column and cut < len(line) and line[cut] in " \t":
            cut += 1
        out.append(line[cut:])
    return "\n".join(out)


def _cap(text: str, max_bytes: int, max_lines: int) -> str:
    """Keep at most `max_lines` lines and about `max_bytes` bytes, ending in "..." when cut."""
    lines = text.split("\n")
    cut = False
    if len(lines) > max_lines:
        lines, cut = lines[:max_lines], True
    out: list[str] = []
    size = 0
    for line in lines:
        size += len(line) + 1
        if size > max_bytes and out:
            cut = True
            break
        out.append(line[:max_bytes])
    if cut:
        out.append("...")
    return "\n".join(out)
