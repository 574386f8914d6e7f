"""Extract function (Python): move whole selected statements into a new module-level function.

Pure and deterministic: (document, byte selection) -> edits. Names the statements read that are
local to the enclosing function (or that they rebind after reading) become parameters; names they
bind that are used elsewhere in the scope are returned and assigned at the call site. Selections
that cannot be moved without changing behaviour are refused with a reason: partial statements,
whole definitions (`def`/`class`: wrapping one in a new function would take it out of its
namespace), `return`/`yield`, `break`/`continue` leaving the selection, `global`/`nonlocal`,
class bodies, and multi-line strings that re-indenting would alter. At module level every name
the statements bind is returned and assigned back: a module's globals are visible to importers.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from tree_sitter import Node

from analysis.documents.document import Document
from analysis.documents.tree_walks import ancestors, lineage
from analysis.review.findings import Edit
from analysis.scope.python_scope import NESTED, Use, scope_uses

_LOOPS = frozenset({"for_statement", "while_statement"})
_DEFINITIONS = frozenset({"function_definition", "class_definition", "decorated_definition"})
_WORD = re.compile(rb"[A-Za-z_][A-Za-z0-9_]*")


@dataclass(frozen=True, slots=True)
class Extraction:
    """The edits that perform the extraction, and the new function's signature."""

    edits: tuple[Edit, ...]
    name: str
    params: tuple[str, ...]
    returns: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why the selection cannot be extracted (a sentence for the user)."""

    reason: str


def extract_function(doc: Document, start: int, end: int, name: str = "extracted_function"
                     ) -> Extraction | Refusal:
    """Extract the statements in source[start:end] into a new function."""
    if doc.language != "python" or doc.tree is None:
        return Refusal("extract function supports Python only")
    if doc.has_errors():
        return Refusal("the file has syntax errors")
    src = doc.source
    while start < end and src[start : start + 1].isspace():
        start += 1
    while end > start and src[end - 1 : end].isspace():
        end -= 1
    if start >= end:
        return Refusal("select the statements to extract")
    root = doc.tree.root_node
    found = _statements(doc, root, start, end)
    if isinstance(found, Refusal):
        return found
    block, stmts = found
    definition = next((_defined_name(doc, st) for st in stmts if st.type in _DEFINITIONS), None)
    if definition is not None:
        return Refusal(f"the selection is a whole definition ({definition}): select the "
                       "statements inside it")
    scope = _scope(block, root)
    if isinstance(scope, Refusal):
        return scope
    problem = _control_flow(stmts, scope, root)
    if problem:
        return Refusal(problem)
    return _build(doc, root, scope, stmts, _unique(src, name))


def _statements(doc: Document, root: Node, start: int, end: int
                ) -> tuple[Node, list[Node]] | Refusal:
    covering = root.descendant_for_byte_range(start, end)
    node = next((n for n in lineage(covering, root) if n.type in ("block", "module")),
                None) if covering is not None else None
    if node is None:
        return Refusal("select whole statements")
    stmts = [c for c in node.named_children
             if c.type != "comment" and c.end_byte > start and c.start_byte < end]
    if not stmts or stmts[0].start_byte < start or stmts[-1].end_byte > end:
        return Refusal("select whole statements (the selection cuts one)")
    line_start = doc.source.rfind(b"\n", 0, stmts[0].start_byte) + 1
    nl = doc.source.find(b"\n", stmts[-1].end_byte)
    rest = doc.source[stmts[-1].end_byte : len(doc.source) if nl == -1 else nl].strip()
    if doc.source[line_start : stmts[0].start_byte].strip() or (rest and not rest.startswith(b"#")):
        return Refusal("the selection shares a line with other statements")
    return node, stmts


def _defined_name(doc: Document, stmt: Node) -> str:
    """`def name` / `class name` for a (decorated) definition."""
    node = stmt.child_by_field_name("definition") if stmt.type == "decorated_definition" \
        else stmt
    name = node.child_by_field_name("name") if node is not None else None
    keyword = "class" if node is not None and node.type == "class_definition" else "def"
    text = doc.source[name.start_byte : name.end_byte].decode() if name is not None else "?"
    return f"`{keyword} {text}`"


def _scope(block: Node, root: Node) -> Node | Refusal:
    for node in ancestors(block, root):
        if node.type == "class_definition":
            return Refusal("cannot extract from a class body")
        if node.type == "function_definition":
            return node
    return block  # the module


def _control_flow(stmts: list[Node], scope: Node, root: Node) -> str | None:
    is_async = scope.type == "function_definition" and scope.children[0].type == "async"
    for stmt in stmts:
        stack = [stmt]
        while stack:
            n = stack.pop()
            if n.type in NESTED:
                continue
            if n.type == "return_statement":
                return "the selection contains `return`"
            if n.type in ("yield", "yield_expression"):
                return "the selection contains `yield`"
            if n.type in ("global_statement", "nonlocal_statement"):
                return "the selection contains a `global`/`nonlocal` declaration"
            if n.type == "await" and not is_async:
                return "the selection contains `await`"
            if n.type in ("break_statement", "continue_statement") and \
                    not _loop_inside(n, stmt, root):
                return f"`{n.type.split('_')[0]}` would leave the extracted function"
            stack.extend(n.children)
    return None


def _loop_inside(node: Node, top: Node, root: Node) -> bool:
    for current in ancestors(node, root):
        if current.id == top.id:
            break
        if current.type in _LOOPS:
            return True
    return top.type in _LOOPS


def _unique(source: bytes, base: str) -> str:
    taken = {m.decode() for m in _WORD.findall(source)}
    name, n = base, 2
    while name in taken:
        name, n = f"{base}_{n}", n + 1
    return name


def _build(doc: Document, root: Node, scope: Node, stmts: list[Node], name: str
           ) -> Extraction | Refusal:
    sel_start, sel_end = stmts[0].start_byte, stmts[-1].end_byte
    body = scope.child_by_field_name("body") if scope.type == "function_definition" else scope
    assert body is not None
    uses = scope_uses(body.named_children)
    inside = [u for u in uses if sel_start <= u.offset < sel_end]
    outside = [u for u in uses if not sel_start <= u.offset < sel_end]
    declared = {u.name for u in uses if u.kind == "decl"}
    stored = _first(inside, ("store", "both"))
    if declared & stored.keys():
        return Refusal("the selection assigns a name declared global/nonlocal")
    loaded = _first(inside, ("load", "both"))
    read_first = [n for n, at in loaded.items() if n not in stored or at <= stored[n]]
    enclosing = _locals(scope, root)
    locals_ = enclosing | {u.name for u in outside if u.kind in ("store", "both")}
    is_function = scope.type == "function_definition"
    params = [n for n in read_first if n in stored or (is_function and n in locals_)]
    used_after = {u.name for u in outside if u.kind in ("load", "both")}
    # A module's globals are read by importers too: at module level, every binding goes back.
    returns = [n for n in stored if n in used_after or not is_function]
    bound_before = {u.name for u in outside if u.kind in ("store", "both") and u.offset < sel_start}
    bound_before |= enclosing
    params += [n for n in returns if n in bound_before and n not in params]
    is_async = any(u for u in _awaits(stmts))
    return _edits(doc, root, scope, stmts, name, params, returns, is_async)


def _first(uses: list[Use], kinds: tuple[str, ...]) -> dict[str, int]:
    out: dict[str, int] = {}
    for u in uses:
        if u.kind in kinds and u.name not in out:
            out[u.name] = u.offset
    return out


def _locals(scope: Node, root: Node) -> set[str]:
    """Parameters of the scope and names bound by every enclosing function (closures)."""
    out: set[str] = set()
    for node in lineage(scope, root):
        if node.type == "function_definition":
            params = node.child_by_field_name("parameters")
            body = node.child_by_field_name("body")
            found = scope_uses([params] if params else []) + (
                scope_uses(body.named_children) if body is not None and node is not scope else [])
            out |= {u.name for u in found if u.kind in ("param", "store", "both")}
    return out


def _awaits(stmts: list[Node]) -> list[Node]:
    found, stack = [], list(stmts)
    while stack:
        n = stack.pop()
        if n.type == "await":
            found.append(n)
        elif n.type not in NESTED:
            stack.extend(n.children)
    return found


def _edits(doc: Document, root: Node, scope: Node, stmts: list[Node], name: str,
           params: list[str], returns: list[str], is_async: bool) -> Extraction | Refusal:
    src = doc.source
    line_start = src.rfind(b"\n", 0, stmts[0].start_byte) + 1
    nl = src.find(b"\n", stmts[-1].end_byte)
    line_end = len(src) if nl == -1 else nl + 1
    indent = src[line_start : stmts[0].start_byte].decode()
    unit = "\t" if indent.startswith("\t") else "    "
    lines = src[line_start:line_end].decode("utf-8", "surrogatepass").splitlines()
    if indent == unit:
        moved = lines  # already at function-body depth: copied as is
    elif _multiline_string(stmts) or any(ln.strip() and not ln.startswith(indent) for ln in lines):
        return Refusal("a multi-line string would change if re-indented")
    else:
        moved = [unit + ln[len(indent):] if ln.strip() else "" for ln in lines]
    newline = "\r\n" if b"\r\n" in src else "\n"
    head = f"{'async ' if is_async else ''}def {name}({', '.join(params)}):"
    tail = [f"{unit}return {', '.join(returns)}"] if returns else []
    definition = newline.join([head, *moved, *tail]) + newline * 3
    target = ", ".join(returns) + " = " if returns else ""
    call = f"{indent}{target}{'await ' if is_async else ''}{name}({', '.join(params)}){newline}"
    anchor = _top_level(scope if scope.type == "function_definition" else stmts[0], root)
    anchor_start = src.rfind(b"\n", 0, anchor.start_byte) + 1
    if anchor_start == line_start:
        edits: tuple[Edit, ...] = (Edit(line_start, line_end, definition + call),)
    else:
        edits = (Edit(anchor_start, anchor_start, definition), Edit(line_start, line_end, call))
    return Extraction(edits, name, tuple(params), tuple(returns))


def _multiline_string(stmts: list[Node]) -> bool:
    stack = list(stmts)
    while stack:
        n = stack.pop()
        if n.type == "string" and n.start_point.row != n.end_point.row:
            return True
        stack.extend(n.children)
    return False


def _top_level(node: Node, root: Node) -> Node:
    """The module-level statement holding `node` (a decorated definition as a whole)."""
    for parent in ancestors(node, root):
        if parent.type == "module":
            break
        node = parent
    return node
