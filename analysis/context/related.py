"""Related snippets: definitions of the names used near the cursor, then recently edited regions.

Names come from the identifiers around the cursor (a tree-sitter query over a bounded window, the
nearest first). Each is looked up in the workspace index and resolved through the file's imports
where possible: a definition in a file the imports point at beats one in the same folder, which
beats an unrelated one; a common name that nothing resolves is dropped rather than guessed. The
chosen snippets are trimmed to their token budget and returned in a stable order (by path and
line) so that the prompt's start, and vLLM's prefix cache, survive keystrokes.
"""

from __future__ import annotations

import posixpath
import textwrap
import threading
from dataclasses import dataclass

import msgspec
from tree_sitter import Query, QueryCursor

from analysis.context.hole import ScopeNode
from analysis.context.tokens import TokenCounter
from analysis.documents.document import Document
from analysis.documents.languages import by_name
from analysis.documents.node_types import FAMILIES, SyntaxTable
from analysis.index.definitions import Symbol
from analysis.index.workspace_index import SymbolIndex
from analysis.scope.imports import ImportRef
from analysis.secrets import redact

MAX_NAMES = 48
MAX_DEFINITIONS = 10
MAX_RECENT = 3
MAX_CANDIDATES = 64  # above this many definitions of a name, only import-resolved ones count
MAX_MEMBERS = 12
WINDOW_LINES = 40  # identifiers are read from about this many lines around the cursor
MAX_SCOPE_WINDOW = 6000  # bytes: a smaller enclosing function is read whole instead


class Snippet(msgspec.Struct, frozen=True, rename="camel"):
    """A piece of another file placed before the current file in the prompt."""

    path: str  # workspace-relative when the file is under a workspace root
    language: str
    kind: str  # "definition" or "recent_edit"
    name: str  # the definition's name ("" for a recent edit)
    line: int  # zero-based first line in its file
    container: str  # the class or namespace the definition belongs to, "" when none
    text: str
    tokens: int  # tokens of the block as it appears in the prompt (path comment included)
    score: float = 0.0


@dataclass(frozen=True, slots=True)
class _Candidate:
    score: float
    symbol: Symbol


_queries: dict[str, Query] = {}
_lock = threading.Lock()


def identifier_query(language: str, table: SyntaxTable) -> Query | None:
    """A query capturing every identifier-like leaf of a language (cached)."""
    query = _queries.get(language)
    if query is None and table.identifiers:
        spec = by_name(language)
        if spec is None:
            return None
        with _lock:
            kinds = " ".join(f"({kind})" for kind in table.identifiers)
            query = _queries.setdefault(language, Query(spec.language, f"[{kinds}] @id"))
    return query


def names_near(doc: Document, offset: int, table: SyntaxTable,
               scopes: list[ScopeNode]) -> list[str]:
    """Distinct identifiers around the cursor, nearest first (the word being typed excluded)."""
    query = identifier_query(doc.language, table)
    if query is None or doc.tree is None:
        return []
    start, end = _window(doc, offset, scopes)
    cursor = QueryCursor(query)
    cursor.set_byte_range(start, end)
    nodes = cursor.captures(doc.tree.root_node).get("id", [])
    src = doc.source
    ranked = sorted(
        (abs(n.start_byte - offset), src[n.start_byte:n.end_byte]) for n in nodes
        if n.end_byte != offset)
    seen: dict[bytes, None] = {}
    for _, name in ranked:
        if name not in seen:
            seen[name] = None
            if len(seen) >= MAX_NAMES:
                break
    return [name.decode("utf-8", "replace") for name in seen]


def _window(doc: Document, offset: int, scopes: list[ScopeNode]) -> tuple[int, int]:
    """The enclosing function when it is small, else lines around the cursor on a fixed grid
    (so the window, and the names in it, stay put while the user types)."""
    for scope in reversed(scopes):
        node = scope.node
        if scope.kind in ("function", "method"):
            if node.end_byte - node.start_byte <= MAX_SCOPE_WINDOW:
                return node.start_byte, max(node.end_byte, offset)
            break
    line = doc.position_at(offset, "utf-8").line
    first = max(0, (line // (WINDOW_LINES // 2) - 1) * (WINDOW_LINES // 2))
    last = min(doc.line_count - 1, first + 2 * WINDOW_LINES)
    return doc.line_span(first)[0], doc.line_span(last)[1]


SnippetCache = dict  # (symbol, index generation) -> rendered Snippet, filled by `_snippet`
MAX_CACHED_SNIPPETS = 4096


def related_snippets(doc: Document, offset: int, index: SymbolIndex, imports: tuple[ImportRef, ...],
                     table: SyntaxTable, scopes: list[ScopeNode], budget: int,
                     counter: TokenCounter, here: str,
                     cache: SnippetCache | None = None) -> list[Snippet]:
    """Definitions of names near the cursor, then recent edits elsewhere, within `budget`."""
    if budget <= 0:
        return []
    names = names_near(doc, offset, table, scopes)
    picked: list[tuple[Symbol, Snippet]] = []
    used = 0
    for candidate in _rank(names, index, imports, doc.language, here):
        if len(picked) >= MAX_DEFINITIONS:
            break
        snippet = _cached_snippet(candidate, index, counter, cache)
        if snippet is not None and used + snippet.tokens <= budget:
            picked.append((candidate.symbol, snippet))
            used += snippet.tokens
    # A member already shown inside its class's snippet needs no snippet of its own.
    class_text = {(s.path, s.name): s.text for _, s in picked}
    chosen = [s for symbol, s in picked
              if symbol.signature.split("\n")[0] not in class_text.get((s.path, s.container), "")]
    used = sum(s.tokens for s in chosen)
    recent: list[Snippet] = []
    for edit in index.recent_edits():
        if len(recent) >= MAX_RECENT:
            break
        if edit.path == here or FAMILIES.get(edit.language) != FAMILIES.get(doc.language):
            continue
        text = redact(edit.text, edit.path).text.strip("\n")
        if not text.strip():
            continue
        path = display_path(edit.path, index.roots)
        tokens = _block_tokens(counter, edit.language, path, text)
        if used + tokens <= budget:
            recent.append(Snippet(path, edit.language, "recent_edit", "", edit.line, "", text,
                                  tokens))
            used += tokens
    chosen.sort(key=lambda s: (s.path, s.line))
    recent.sort(key=lambda s: (s.path, s.line))
    return chosen + recent


def _rank(names: list[str], index: SymbolIndex, imports: tuple[ImportRef, ...], language: str,
          here: str) -> list[_Candidate]:
    family = FAMILIES.get(language)
    here_dir = posixpath.dirname(here)
    alias_of: dict[str, str] = {}
    imported_from: dict[str, set[str]] = {}
    resolved: set[str] = set()
    for ref in imports:
        paths = index.resolve(ref.targets) if ref.targets else frozenset()
        resolved |= paths
        for name, alias in zip(ref.names, ref.aliases, strict=False):
            alias_of[alias] = name
            imported_from.setdefault(alias, set()).update(paths)
    best: dict[tuple[str, int], _Candidate] = {}
    for rank, ident in enumerate(names):
        name = alias_of.get(ident, ident)
        symbols = index.lookup(name)
        if not symbols:
            continue
        if len(symbols) > MAX_CANDIDATES:
            symbols = tuple(s for s in symbols if s.path in resolved)
        top: _Candidate | None = None
        for symbol in symbols:
            if symbol.path == here:
                continue
            entry = index.file(symbol.path)
            if entry is None or FAMILIES.get(entry.language) != family:
                continue
            score = 0.0
            if symbol.path in imported_from.get(ident, ()):
                score += 8
            elif symbol.path in resolved:
                score += 5
            elif entry.dir_key == here_dir:
                score += 3
            score += _KIND_BONUS.get(symbol.kind, 0) + (0.5 if symbol.doc else 0)
            if top is None or score > top.score:
                top = _Candidate(score, symbol)
        if top is None or (top.score < 3 and len(symbols) > 3):
            continue  # a common name nothing resolves: a guess would mislead
        proximity = 2.0 / (1 + rank / 4)
        key = (top.symbol.path, top.symbol.line)
        scored = _Candidate(top.score + proximity, top.symbol)
        if key not in best or best[key].score < scored.score:
            best[key] = scored
    return sorted(best.values(), key=lambda c: (-c.score, c.symbol.path, c.symbol.line))


_KIND_BONUS = {"function": 1.0, "class": 1.0, "interface": 1.0, "type": 0.8, "method": 0.5,
               "constant": 0.3, "macro": 0.3}


def _cached_snippet(candidate: _Candidate, index: SymbolIndex, counter: TokenCounter,
                    cache: SnippetCache | None) -> Snippet | None:
    """`_snippet`, remembered per definition while the index does not change."""
    if cache is None:
        return _snippet(candidate, index, counter)
    key = (candidate.symbol, index.generation)
    if key in cache:
        hit = cache[key]
    else:
        if len(cache) >= MAX_CACHED_SNIPPETS:
            cache.clear()
        hit = cache[key] = _snippet(candidate, index, counter)
    if hit is None:
        return None
    return msgspec.structs.replace(hit, score=round(candidate.score, 3))


def _snippet(candidate: _Candidate, index: SymbolIndex, counter: TokenCounter) -> Snippet | None:
    symbol = candidate.symbol
    entry = index.file(symbol.path)
    if entry is None:
        return None
    text = render_symbol(symbol, entry.language, index)
    text = redact(text, symbol.path).text
    if not text.strip():
        return None
    path = display_path(symbol.path, index.roots)
    tokens = _block_tokens(counter, entry.language, path, text)
    return Snippet(path, entry.language, "definition", symbol.name, symbol.line,
                   symbol.container, text, tokens, round(candidate.score, 3))


def _block_tokens(counter: TokenCounter, language: str, path: str, text: str) -> int:
    return counter.count(f"{comment_syntax(language)} {path}\n{text}\n\n")


def comment_syntax(language: str) -> str:
    """The line-comment marker of a language ("#" for plain text)."""
    spec = by_name(language)
    return spec.line_comment if spec is not None else "#"


def display_path(path: str, roots: tuple[str, ...]) -> str:
    """A path relative to the workspace root that holds it, else as given."""
    for root in roots:
        if path.startswith(root + "/"):
            return path[len(root) + 1:]
    return path


def render_symbol(symbol: Symbol, language: str, index: SymbolIndex | None = None) -> str:
    """A definition as it goes into a prompt: signature and doc, members for classes."""
    members: tuple[Symbol, ...] = ()
    if index is not None and symbol.kind in ("class", "interface") and not _whole(symbol):
        members = index.members(symbol.path, symbol.name)[:MAX_MEMBERS]
    if language == "python":
        return _render_python(symbol, members)
    return _render_braces(symbol, members, language)


def _whole(symbol: Symbol) -> bool:
    """True when the signature already holds the whole definition (data types)."""
    return symbol.signature.rstrip().endswith(("}", "};", ";", "..."))


def _render_python(symbol: Symbol, members: tuple[Symbol, ...]) -> str:
    lines = [symbol.signature]
    body: list[str] = []
    if symbol.doc:
        body.append(_reindent(symbol.doc, "    "))
    for member in members:
        first = member.signature.split("\n")[0] if member.kind != "method" else member.signature
        suffix = " ..." if member.kind == "method" else ""
        body.append(textwrap.indent(first + suffix, "    "))
    if symbol.kind in ("function", "method", "class") and not body:
        lines[0] += " ..."
    return "\n".join(lines + body)


def _render_braces(symbol: Symbol, members: tuple[Symbol, ...], language: str) -> str:
    parts: list[str] = []
    if symbol.doc:
        parts.append(_reindent(symbol.doc, ""))
    signature = symbol.signature
    unit = "  " if language in ("javascript", "typescript", "tsx") else "    "
    if members:
        inner = []
        for member in members:
            text = member.signature
            if member.kind == "method" and not text.rstrip().endswith((";", "}")):
                text += " { ... }"
            inner.append(textwrap.indent(_reindent(text, ""), unit))
        parts.append(signature + " {\n" + "\n".join(inner) + "\n}")
    elif symbol.kind in ("function", "method") and not signature.rstrip().endswith((";", "}")):
        parts.append(signature + (" ..." if signature.endswith("=>") else " { ... }"))
    else:
        parts.append(signature)
    return "\n".join(parts)


def _reindent(text: str, prefix: str) -> str:
    """Indent every line of an extracted (already dedented) text by `prefix`."""
    return textwrap.indent(text, prefix, lambda line: True) if prefix else text
