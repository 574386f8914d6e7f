"""A file's imports, read from the tree, and where in the workspace each one may point.

Each import becomes an `ImportRef`: the statement as written, the names it binds, and `targets`:
workspace path keys (posix, without extension) the imported module may live at. A target ending
in "/" names a folder (a Go package, a Java wildcard import). Resolution is by path suffix, so it
works whatever the source roots are; imports of outside packages simply match nothing.
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass

from tree_sitter import Node

from analysis.documents.document import Document
from analysis.documents.node_types import SyntaxTable, table_for
from analysis.documents.store import uri_to_path

MAX_IMPORTS = 200
MAX_TEXT = 200


@dataclass(frozen=True, slots=True)
class ImportRef:
    """One import statement and what it brings into the file."""

    text: str  # the statement as written, on one line, capped
    module: str  # the module as written: "shop.pricing", "./format.js", "ringbuf.h"
    names: tuple[str, ...]  # names looked up in the target ("apply_discount"), module names too
    aliases: tuple[str, ...]  # the local name of each entry of `names` (same length)
    targets: tuple[str, ...]  # workspace path keys the module may be at; "x/" is a folder
    line: int  # zero-based line of the statement
    end: int  # byte offset where the statement ends


def extract_imports(doc: Document) -> tuple[ImportRef, ...]:
    """The file's imports in source order (top level, and inside top-level guards/blocks)."""
    if doc.tree is None:
        return ()
    table = table_for(doc.language)
    if not table.imports:
        return ()
    here = _file_key(doc.uri)
    out: list[ImportRef] = []
    _collect(doc, doc.tree.root_node, table, here, out, depth=0)
    return tuple(out)


def file_keys(path: str) -> tuple[str, str]:
    """(stem key, folder key) of a posix path: "/w/a/b.py" -> ("/w/a/b", "/w/a")."""
    stem, _ = posixpath.splitext(path)
    if stem.endswith("/__init__") or stem.endswith("/mod") or stem.endswith("/index"):
        stem = stem.rsplit("/", 1)[0]
    return stem, posixpath.dirname(path)


def matches(target: str, stem_key: str, dir_key: str) -> bool:
    """True when a file with these keys is where `target` points."""
    if target.endswith("/"):
        folder = target[:-1]
        return dir_key == folder or dir_key.endswith("/" + folder)
    return stem_key == target or stem_key.endswith("/" + target)


def _collect(doc: Document, node: Node, table: SyntaxTable, here: str, out: list[ImportRef],
             depth: int) -> None:
    for child in node.named_children:
        if len(out) >= MAX_IMPORTS:
            return
        if child.type in table.imports:
            ref = _ref(doc, child, here)
            if ref is not None:
                out.append(ref)
        elif depth < 2 and child.type in table.import_containers:
            _collect(doc, child, table, here, out, depth + 1)


def _text(doc: Document, node: Node | None) -> str:
    if node is None:
        return ""
    return doc.source[node.start_byte:node.end_byte].decode("utf-8", "replace")


def _ref(doc: Document, node: Node, here: str) -> ImportRef | None:
    text = " ".join(_text(doc, node).split())[:MAX_TEXT]
    handler = _HANDLERS.get(doc.language)
    if handler is None:
        return None
    parts = handler(doc, node, here)
    if parts is None:
        return None
    module, names, aliases, targets = parts
    return ImportRef(text, module, tuple(names), tuple(aliases), tuple(targets),
                     node.start_point.row, node.end_byte)


def _file_key(uri: str) -> str:
    path = uri_to_path(uri)
    return path.as_posix() if path is not None else ""


# ---------------------------------------------------------------------- per language


def _python(doc: Document, node: Node, here: str):
    names: list[str] = []
    aliases: list[str] = []
    module = ""
    if node.type == "import_statement":
        for item in node.children_by_field_name("name"):
            dotted = item.child_by_field_name("name") if item.type == "aliased_import" else item
            alias = item.child_by_field_name("alias") if item.type == "aliased_import" else None
            full = _text(doc, dotted)
            module = module or full
            names.append(full.split(".")[-1])
            aliases.append(_text(doc, alias) if alias else full.split(".")[0])
        base = module.replace(".", "/")
        return module, names, aliases, [base] if base else []
    mod_node = node.child_by_field_name("module_name")
    module = _text(doc, mod_node)
    for item in node.children_by_field_name("name"):
        if item.type == "aliased_import":
            names.append(_text(doc, item.child_by_field_name("name")))
            aliases.append(_text(doc, item.child_by_field_name("alias")))
        else:
            names.append(_text(doc, item))
            aliases.append(names[-1])
    if node.type == "future_import_statement":
        return "__future__", names, aliases, []
    dots = len(module) - len(module.lstrip("."))
    rest = module[dots:].replace(".", "/")
    if dots:
        base = posixpath.dirname(here)
        for _ in range(dots - 1):
            base = posixpath.dirname(base)
        base = posixpath.join(base, rest) if rest else base
    else:
        base = rest
    targets = [base] + [f"{base}/{n}" for n in names if n != "*"]
    return module, names, aliases, targets


def _javascript(doc: Document, node: Node, here: str):
    source = node.child_by_field_name("source")
    module = _text(doc, source).strip("'\"`")
    names: list[str] = []
    aliases: list[str] = []
    for clause in node.named_children:
        if clause.type != "import_clause":
            continue
        for part in clause.named_children:
            if part.type == "identifier":  # default import
                names.append("default")
                aliases.append(_text(doc, part))
            elif part.type == "namespace_import":
                ident = part.named_children[-1] if part.named_children else None
                names.append("*")
                aliases.append(_text(doc, ident))
            elif part.type == "named_imports":
                for spec in part.named_children:
                    if spec.type != "import_specifier":
                        continue
                    name = _text(doc, spec.child_by_field_name("name"))
                    alias = spec.child_by_field_name("alias")
                    names.append(name)
                    aliases.append(_text(doc, alias) if alias else name)
    targets: list[str] = []
    if module.startswith("."):
        resolved = posixpath.normpath(posixpath.join(posixpath.dirname(here), module))
        stem, ext = posixpath.splitext(resolved)
        targets.append(stem if ext in _JS_EXTS else resolved)
    return module, names, aliases, targets


_JS_EXTS = frozenset({".js", ".mjs", ".cjs", ".jsx", ".ts", ".mts", ".cts", ".tsx"})


def _go(doc: Document, node: Node, here: str):
    specs = [n for n in _descendants(node, 3) if n.type == "import_spec"]
    modules: list[str] = []
    names: list[str] = []
    aliases: list[str] = []
    targets: list[str] = []
    for spec in specs:
        path = _text(doc, spec.child_by_field_name("path")).strip('"`')
        alias = spec.child_by_field_name("name")
        modules.append(path)
        last = path.rsplit("/", 1)[-1]
        names.append(last)
        aliases.append(_text(doc, alias) if alias else last)
        parts = path.split("/")
        if len(parts) > 1:
            targets.append("/".join(parts[-2:]) + "/")
        targets.append(last + "/")
    return ", ".join(modules), names, aliases, targets


def _rust(doc: Document, node: Node, here: str):
    if node.type == "mod_item":
        name = _text(doc, node.child_by_field_name("name"))
        if node.child_by_field_name("body") is not None:
            return None  # an inline module is code, not an import
        return name, [name], [name], [name]
    if node.type == "extern_crate_declaration":
        name = _text(doc, node.child_by_field_name("name"))
        return name, [name], [name], []
    arg = node.child_by_field_name("argument")
    module = _text(doc, arg)
    names: list[str] = []
    aliases: list[str] = []
    _rust_names(doc, arg, names, aliases)
    segments = [s for s in module.split("{")[0].split("::") if s and s.strip()]
    segments = [s.strip() for s in segments
                if s.strip() not in ("crate", "self", "super") and s.strip() != "*"]
    targets = ["/".join(segments[:i]) for i in range(len(segments), 0, -1)]
    return module, names, aliases, targets


def _rust_names(doc: Document, node: Node | None, names: list[str], aliases: list[str]) -> None:
    """The names a Rust `use` brings in, in source order (an explicit stack: lists nest freely)."""
    stack = [node]
    while stack:
        current = stack.pop()
        if current is None:
            continue
        if current.type == "identifier":
            names.append(_text(doc, current))
            aliases.append(names[-1])
        elif current.type == "scoped_identifier":
            names.append(_text(doc, current.child_by_field_name("name")))
            aliases.append(names[-1])
        elif current.type == "use_as_clause":
            path = current.child_by_field_name("path")
            if path is not None and path.type in ("identifier", "scoped_identifier"):
                leaf = path.child_by_field_name("name") if path.type != "identifier" else path
                names.append(_text(doc, leaf))
                aliases.append(_text(doc, current.child_by_field_name("alias")))
        elif current.type in ("scoped_use_list", "use_list"):
            target = (current.child_by_field_name("list") if current.type == "scoped_use_list"
                      else current)
            stack.extend(reversed(target.named_children) if target else ())


def _java(doc: Document, node: Node, here: str):
    text = _text(doc, node)
    wildcard = text.rstrip("; ").endswith("*")
    scoped = next((c for c in node.named_children
                   if c.type in ("scoped_identifier", "identifier")), None)
    module = _text(doc, scoped)
    path = module.replace(".", "/")
    if wildcard:
        return module + ".*", [], [], [path + "/"]
    last = module.rsplit(".", 1)[-1]
    return module, [last], [last], [path]


def _c(doc: Document, node: Node, here: str):
    if node.type == "using_declaration":
        name = _text(doc, node.named_children[-1] if node.named_children else None)
        last = name.rsplit("::", 1)[-1]
        return name, [last], [last], []
    path = node.child_by_field_name("path")
    module = _text(doc, path)
    if path is None or path.type == "system_lib_string":
        return module, [], [], []
    inner = module.strip('"')
    stem, _ = posixpath.splitext(inner)
    resolved = posixpath.normpath(posixpath.join(posixpath.dirname(here), stem))
    return inner, [], [], [resolved, stem.lstrip("./")]


def _descendants(node: Node, depth: int):
    stack = [(node, 0)]
    while stack:
        current, d = stack.pop()
        yield current
        if d < depth:
            stack.extend((c, d + 1) for c in reversed(current.named_children))


_HANDLERS = {
    "python": _python, "javascript": _javascript, "typescript": _javascript, "tsx": _javascript,
    "go": _go, "rust": _rust, "java": _java, "c": _c, "cpp": _c,
}
