"""Completion context: what the model sees around the cursor, built from the tree within a budget.

`ContextBuilder.build(doc, offset)` returns a `CompletionContext`: the prefix and suffix cut at
statement boundaries (whole lines; a single overlong line is cut at a character boundary) so
they fit a token budget, the `Hole` (analysis/context/hole.py: the one reading of the cursor that
the stages use too: kind, line facts, indentation, scopes), the file's imports (read here only,
and cached) and related snippets from other files. Secret files give an empty context; secret values
are masked in place (analysis/secrets.py). Work per call is bounded by the budget, not by the
file size; results are cached per (uri, version, offset), and the prefix start sticks while
typing so a prompt's beginning stays byte-identical (vLLM's prefix cache keeps hitting).
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict

import msgspec

from analysis.context.cut_points import char_cut, char_cut_forward, snap_back, snap_forward
from analysis.context.hole import Hole, HoleKind, Scope, classify, empty_hole
from analysis.context.related import Snippet, comment_syntax, display_path, related_snippets
from analysis.context.tokens import ApproxCounter, TokenCounter
from analysis.documents.document import Document, Encoding
from analysis.documents.node_types import SyntaxTable, table_for
from analysis.documents.store import uri_to_path
from analysis.index.workspace_index import SymbolIndex
from analysis.scope.imports import ImportRef, extract_imports
from analysis.secrets import SecretFilter, redact, redact_window
from analysis.settings import ContextSettings

__all__ = ["CompletionContext", "ContextBuilder", "Hole", "HoleKind", "Scope", "Snippet",
           "TokenUsage", "build_context"]

FIM_OVERHEAD_TOKENS = 3  # <｜fim▁begin｜>, <｜fim▁hole｜>, <｜fim▁end｜>
PREFIX_SHARE = 0.75  # of the file's budget, before what the suffix leaves unused
STICKY_SLACK = 0.1  # a fresh prefix cut leaves this share free, so typing does not move it
CACHE_ENTRIES = 32
ANCHOR_ENTRIES = 256
IMPORTS_REFRESH_S = 2.0
_IMPORT_WORDS = (b"import", b"from", b"#include", b"# include", b"use ", b"using ", b"mod ",
                 b"extern crate")


class TokenUsage(msgspec.Struct, frozen=True, rename="camel"):
    """Tokens spent on each part of the prompt (as counted by `counter`)."""

    budget: int
    prefix: int
    suffix: int
    related: int
    counter: str  # "approx" or "tokenizer:<path>"


class CompletionContext(msgspec.Struct, frozen=True, kw_only=True, rename="camel"):
    """Everything the prompt builder and the stages need to know about one cursor position."""

    uri: str
    path: str  # workspace-relative when under a workspace root, else the file path or uri
    language: str  # canonical language name or "plaintext"
    version: int  # the document version the context was built from
    offset: int  # cursor, in bytes from the start of the file
    line: int  # cursor line, zero-based
    column: int  # cursor column in UTF-8 bytes, zero-based
    prefix: str  # text before the cursor, from `prefix_start`
    suffix: str  # text after the cursor, up to `suffix_end`
    prefix_start: int  # byte offset where `prefix` starts (0: the file's start)
    suffix_end: int  # byte offset where `suffix` ends (file size: the file's end)
    hole: Hole  # the cursor's hole: its kind, line facts, indentation and scopes
    imports: tuple[str, ...]  # the file's import statements as written
    import_names: tuple[str, ...]  # the local names those imports bind
    line_comment: str  # the language's line-comment marker, for path headers in prompts
    related: tuple[Snippet, ...]  # snippets from other files, in prompt order
    tokens: TokenUsage
    redacted_lines: int = 0  # lines in which a secret value was masked
    excluded: str = ""  # why the file contributes no text (a secret file); "" normally


class _FileInfo(msgspec.Struct):
    """Per-document facts that rarely change between keystrokes."""

    version: int
    imports: tuple[ImportRef, ...]
    stamp: float  # time.monotonic() of the last full read


class ContextBuilder:
    """Builds contexts for one workspace: the index, settings and token counter it uses."""

    def __init__(self, index: SymbolIndex | None = None, settings: ContextSettings | None = None,
                 counter: TokenCounter | None = None) -> None:
        self.index = index
        self.settings = settings or ContextSettings()
        self.counter: TokenCounter = counter or ApproxCounter()
        self.secrets = SecretFilter(self.settings.exclude)
        self._results: OrderedDict[tuple, CompletionContext] = OrderedDict()
        self._files: dict[str, _FileInfo] = {}
        self._paths: dict[tuple[str, tuple[str, ...]], tuple[str, str, str]] = {}
        self._snippets: dict = {}
        self._anchors: OrderedDict[str, tuple[int, bytes]] = OrderedDict()
        self._lock = threading.Lock()

    def build_at(self, doc: Document, line: int, character: int,
                 encoding: Encoding = "utf-16") -> CompletionContext:
        """The context at a (line, character) position; out-of-range positions are clamped."""
        offset, _ = doc.offset_at(line, character, encoding)
        return self.build(doc, offset)

    def build(self, doc: Document, offset: int) -> CompletionContext:
        """The context at a byte offset (clamped into the document)."""
        offset = min(max(offset, 0), len(doc.source))
        while offset > 0 and offset < len(doc.source) and doc.source[offset] & 0xC0 == 0x80:
            offset -= 1  # never split a multi-byte character
        generations = ((self.index.generation, self.index.edits_generation)
                       if self.index is not None else (0, 0))
        key = (doc.uri, doc.version, offset, self.settings.budget_tokens,
               self.settings.related_share, generations)
        with self._lock:
            hit = self._results.get(key)
            if hit is not None:
                self._results.move_to_end(key)
                return hit
        context = self._build(doc, offset)
        with self._lock:
            self._results[key] = context
            while len(self._results) > CACHE_ENTRIES:
                self._results.popitem(last=False)
        return context

    # ------------------------------------------------------------------ assembly

    def _build(self, doc: Document, offset: int) -> CompletionContext:
        table = table_for(doc.language)
        roots = self.index.roots if self.index is not None else ()
        here, shown, reason = self._where(doc.uri, roots)
        position = doc.position_at(offset, "utf-8")
        budget = max(self.settings.budget_tokens, 0)
        comment = comment_syntax(doc.language)
        empty = CompletionContext(
            uri=doc.uri, path=shown, language=doc.language, version=doc.version, offset=offset,
            line=position.line, column=position.character, prefix="", suffix="",
            prefix_start=offset, suffix_end=offset, hole=empty_hole(offset, table.indent_unit),
            imports=(), import_names=(), line_comment=comment, related=(),
            tokens=TokenUsage(budget, 0, 0, 0, self.counter.name))
        if reason:
            return msgspec.structs.replace(empty, excluded=reason)
        hole, scopes = classify(doc, offset, table, here)
        imports = self._imports(doc, offset)
        related: list[Snippet] = []
        if self.index is not None and doc.tree is not None:
            share = min(max(self.settings.related_share, 0.0), 1.0)
            related = related_snippets(doc, offset, self.index, imports, table, scopes,
                                       int(budget * share), self.counter, here, self._snippets)
        related_tokens = sum(s.tokens for s in related)
        header = self.counter.count(f"{comment} {shown}\n")
        file_budget = max(budget - related_tokens - FIM_OVERHEAD_TOKENS - header, 0)
        start, end, prefix_tokens, suffix_tokens = self._cut(doc, offset, file_budget, table)
        src = doc.source
        prefix, suffix, redacted = redact_window(src, start, offset, end, here)
        return msgspec.structs.replace(
            empty, prefix=prefix, suffix=suffix, prefix_start=start, suffix_end=end, hole=hole,
            imports=tuple(redact(ref.text, here).text for ref in imports),
            import_names=_bound_names(imports), related=tuple(related), redacted_lines=redacted,
            tokens=TokenUsage(budget, prefix_tokens, suffix_tokens, related_tokens,
                              self.counter.name))

    def _where(self, uri: str, roots: tuple[str, ...]) -> tuple[str, str, str]:
        """(file path, path shown in prompts, why it is excluded or "") for a uri, cached."""
        key = (uri, roots)
        hit = self._paths.get(key)
        if hit is None:
            path = uri_to_path(uri)
            here = path.as_posix() if path is not None else uri
            root = next((r for r in roots if here.startswith(r + "/")), None)
            reason = ("the file looks like a secret store or matches a context exclude"
                      if self.secrets.is_excluded(here, root) else "")
            if len(self._paths) > ANCHOR_ENTRIES:
                self._paths.clear()
            hit = self._paths[key] = (here, display_path(here, roots), reason)
        return hit

    def _imports(self, doc: Document, offset: int) -> tuple[ImportRef, ...]:
        """The file's imports, re-read when the cursor's line looks like an import and at most
        every IMPORTS_REFRESH_S seconds otherwise (imports are read, not edited, while typing)."""
        info = self._files.get(doc.uri)
        src = doc.source
        if info is not None and info.version == doc.version:
            return info.imports
        now = time.monotonic()
        line_start = src.rfind(b"\n", 0, offset) + 1
        typing_import = src[line_start:line_start + 40].lstrip().startswith(_IMPORT_WORDS)
        if info is None or typing_import or now - info.stamp > IMPORTS_REFRESH_S:
            info = _FileInfo(doc.version, extract_imports(doc), now)
        else:
            info = _FileInfo(doc.version, info.imports, info.stamp)
        if len(self._files) > ANCHOR_ENTRIES:
            self._files.pop(next(iter(self._files)))
        self._files[doc.uri] = info
        return info.imports

    # ------------------------------------------------------------------ trimming

    def _cut(self, doc: Document, offset: int, budget: int,
             table: SyntaxTable) -> tuple[int, int, int, int]:
        """(prefix start, suffix end, prefix tokens, suffix tokens) within `budget`."""
        # Counts are floats inside (the estimate is not rounded per line), whole at the end.
        end, suffix_tokens = self._suffix_end(doc, offset, budget - int(budget * PREFIX_SHARE))
        start, prefix_tokens = self._prefix_start(doc, offset, budget - suffix_tokens, table)
        if start == 0 and prefix_tokens + suffix_tokens < budget and end < len(doc.source):
            end, suffix_tokens = self._suffix_end(doc, offset, budget - prefix_tokens)
        if end < len(doc.source):
            snapped = snap_back(doc, offset, end, table)
            if snapped != end:
                end, suffix_tokens = snapped, self._count(doc.source[offset:snapped])
        return start, end, math.ceil(prefix_tokens), math.ceil(suffix_tokens)

    def _count(self, data: bytes) -> float:
        if isinstance(self.counter, ApproxCounter):  # no decoding, no rounding per line
            return len(data) / self.counter.bytes_per_token
        return self.counter.count(data.decode("utf-8", "replace"))

    def _prefix_start(self, doc: Document, offset: int, budget: float,
                      table: SyntaxTable) -> tuple[int, float]:
        src = doc.source
        line_start = src.rfind(b"\n", 0, offset) + 1
        used = self._count(src[line_start:offset])
        if used > budget:  # one overlong line: keep its end, cut at a character boundary
            return char_cut(src, offset, budget, line_start), budget
        anchor = self._anchor(doc, line_start)
        if anchor is not None:
            pos, total, reached = self._walk_back(src, line_start, used, budget, anchor)
            if reached and (anchor == 0 or total >= budget * (1 - 2 * STICKY_SLACK)):
                return anchor, total
        pos, total, reached = self._walk_back(src, line_start, used, budget, 0)
        if not reached:
            target = budget * (1 - STICKY_SLACK)
            pos, total, _ = self._walk_back(src, line_start, used, target, 0)
            pos = snap_forward(doc, pos, line_start, table)
            total = used + self._count(src[pos:line_start])
        self._remember(doc, pos)
        return pos, total

    def _walk_back(self, src: bytes, pos: int, used: float, budget: float,
                   stop: int) -> tuple[int, float, bool]:
        """Add whole lines before `pos` while they fit; True when `stop` was reached."""
        if isinstance(self.counter, ApproxCounter):  # bytes map to tokens: jump, no loop
            per = self.counter.bytes_per_token
            target = pos - (budget - used) * per
            if target <= stop:
                return stop, used + (pos - stop) / per, True
            first = src.find(b"\n", math.ceil(target) - 1, pos) + 1 or pos
            return first, used + (pos - first) / per, False
        while pos > stop:
            prev = src.rfind(b"\n", 0, pos - 1) + 1
            prev = max(prev, stop)
            cost = self._count(src[prev:pos])
            if used + cost > budget:
                return pos, used, False
            used += cost
            pos = prev
        return pos, used, True

    def _suffix_end(self, doc: Document, offset: int, budget: float) -> tuple[int, float]:
        src = doc.source
        size = len(src)
        line_end = src.find(b"\n", offset)
        line_end = size if line_end == -1 else line_end + 1
        used = self._count(src[offset:line_end])
        if used > budget:
            return char_cut_forward(src, offset, max(budget, 0), line_end), max(budget, 0)
        pos = line_end
        if isinstance(self.counter, ApproxCounter):  # bytes map to tokens: jump, no loop
            per = self.counter.bytes_per_token
            target = pos + (budget - used) * per
            if target >= size:
                return size, used + (size - pos) / per
            last = src.rfind(b"\n", pos, int(target))
            end = pos if last == -1 else last + 1
            return end, used + (end - pos) / per
        while pos < size:
            nxt = src.find(b"\n", pos)
            nxt = size if nxt == -1 else nxt + 1
            cost = self._count(src[pos:nxt])
            if used + cost > budget:
                break
            used += cost
            pos = nxt
        return pos, used

    def _anchor(self, doc: Document, line_start: int) -> int | None:
        saved = self._anchors.get(doc.uri)
        if saved is None:
            return None
        pos, fingerprint = saved
        if pos > line_start or doc.source[pos:pos + len(fingerprint)] != fingerprint:
            return None
        return pos

    def _remember(self, doc: Document, pos: int) -> None:
        with self._lock:
            self._anchors[doc.uri] = (pos, doc.source[pos:pos + 48])
            self._anchors.move_to_end(doc.uri)
            while len(self._anchors) > ANCHOR_ENTRIES:
                self._anchors.popitem(last=False)


def build_context(doc: Document, offset: int, index: SymbolIndex | None = None, *,
                  settings: ContextSettings | None = None,
                  counter: TokenCounter | None = None) -> CompletionContext:
    """A one-off context (no caches kept): see `ContextBuilder` for repeated use."""
    return ContextBuilder(index, settings, counter).build(doc, offset)


def _bound_names(imports: tuple[ImportRef, ...]) -> tuple[str, ...]:
    """The local names a file's imports bind, each once, in order (wildcards left out)."""
    return tuple(dict.fromkeys(a for ref in imports for a in ref.aliases if a and a != "*"))
