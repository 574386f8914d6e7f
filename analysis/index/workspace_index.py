"""The workspace symbol index: definitions of every supported file, by name, kept up to date.

Built from disk (`build`, meant for a background thread) over the files `stagecoder review` would
read (the one walker, `analysis.documents.discover`), then kept current from open documents
(`update_document`), saves and file-watch events (`update_path`, `remove`; a changed file the
walk would skip, such as one under node_modules/, stays out). It also remembers the
regions edited most recently, per file, for related-snippet context. Memory stays bounded: per
definition only its name, kind, place, capped signature and doc; no file text, no trees.
Thread-safe: writers take a lock and swap in new tuples, readers never block.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from analysis.documents.discover import discover as walk
from analysis.documents.discover import walks_to
from analysis.documents.document import Document
from analysis.documents.languages import supported_extensions
from analysis.documents.reader import DEFAULT_MAX_BYTES
from analysis.documents.store import read_source, uri_to_path
from analysis.index.definitions import Symbol, extract_symbols
from analysis.scope.imports import file_keys, matches
from analysis.secrets import SecretFilter

__all__ = ["FileSymbols", "RecentEdit", "Symbol", "SymbolIndex", "extract_symbols"]

DEFAULT_MAX_FILES = 50_000
RECENT_EDITS = 12
RECENT_CONTEXT_LINES = 3
RECENT_MAX_BYTES = 600
MAX_PROBLEMS = 100  # bad paths remembered in `problems`

Progress = Callable[[int, int], None]


@dataclass(frozen=True, slots=True)
class FileSymbols:
    """The definitions of one file and what identifies the file for import resolution."""

    path: str  # absolute posix path
    language: str
    stem_key: str  # path without extension ("/w/shop/pricing"; "__init__", "mod", "index" dropped)
    dir_key: str  # folder path
    symbols: tuple[Symbol, ...]
    mtime_ns: int  # of the file on disk when read from disk; 0 for an open document


@dataclass(frozen=True, slots=True)
class RecentEdit:
    """A region of a file the user edited lately: a few lines around the edit."""

    path: str
    language: str
    line: int  # zero-based first line of `text`
    text: str
    stamp: float  # time.monotonic() of the latest edit in the region


class SymbolIndex:
    """Definitions by name over the workspace, plus the most recently edited regions."""

    def __init__(self, excludes: Iterable[str] = (), *,
                 max_file_bytes: int = DEFAULT_MAX_BYTES,
                 max_files: int = DEFAULT_MAX_FILES) -> None:
        self.secrets = SecretFilter(excludes)
        self.max_file_bytes = max_file_bytes
        self.max_files = max_files
        self.roots: tuple[str, ...] = ()
        self.problems: list[str] = []  # paths that could not be walked or read (the first 100)
        self._files: dict[str, FileSymbols] = {}
        self._by_name: dict[str, tuple[Symbol, ...]] = {}
        self._by_stem: dict[str, tuple[str, ...]] = {}  # last stem part -> paths
        self._by_dir: dict[str, tuple[str, ...]] = {}  # last folder part -> paths
        self._recent: list[RecentEdit] = []
        # Bumped when definitions change / when recent edits change, so caches can tell.
        self.generation = 0
        self.edits_generation = 0
        self._resolved: dict[tuple[str, ...], frozenset[str]] = {}
        self._resolved_generation = -1
        self._lock = threading.Lock()
        self._local = threading.local()

    # ------------------------------------------------------------------ reading

    def lookup(self, name: str) -> tuple[Symbol, ...]:
        """Every definition named `name`."""
        return self._by_name.get(name, ())

    def file(self, path: str) -> FileSymbols | None:
        """The entry of one file (absolute posix path), or None."""
        return self._files.get(path)

    def files(self) -> list[str]:
        """Paths of every indexed file."""
        return list(self._files)

    def members(self, path: str, container: str) -> tuple[Symbol, ...]:
        """Definitions inside `container` (a class, impl or type) in one file."""
        entry = self._files.get(path)
        if entry is None:
            return ()
        return tuple(s for s in entry.symbols if s.container == container)

    def resolve(self, targets: Iterable[str]) -> frozenset[str]:
        """Paths of indexed files that import targets (see `analysis.scope.imports`) point at."""
        key = tuple(targets)
        if self._resolved_generation != self.generation:
            self._resolved, self._resolved_generation = {}, self.generation
        hit = self._resolved.get(key)
        if hit is None:
            hit = self._resolved[key] = frozenset(self._resolve(key))
            if len(self._resolved) > 4096:
                self._resolved.clear()
        return hit

    def _resolve(self, targets: Iterable[str]) -> set[str]:
        out: set[str] = set()
        for target in targets:
            if target.endswith("/"):
                tail = target[:-1].rsplit("/", 1)[-1]
                candidates = self._by_dir.get(tail, ())
            else:
                candidates = self._by_stem.get(target.rsplit("/", 1)[-1], ())
            for path in candidates:
                entry = self._files.get(path)
                if entry is not None and matches(target, entry.stem_key, entry.dir_key):
                    out.add(path)
        return out

    def recent_edits(self) -> list[RecentEdit]:
        """Recently edited regions, most recent first."""
        return sorted(self._recent, key=lambda e: e.stamp, reverse=True)

    @property
    def symbol_count(self) -> int:
        """Number of definitions held."""
        return sum(len(f.symbols) for f in list(self._files.values()))

    def __len__(self) -> int:
        return len(self._files)

    # ------------------------------------------------------------------ building

    def discover(self, roots: Iterable[str | os.PathLike[str]]) -> list[Path]:
        """Files under `roots` worth indexing: what review would read, less secret-looking ones.

        The walk is `analysis.documents.discover` (the one walker: .gitignore files at every
        level, the default excludes, symlink loops reported and not followed); at most
        `max_files` files, and bad paths go to `problems`.
        """
        found: list[Path] = []
        for root in roots:
            base = Path(root)
            for item in walk([base], base):
                if item.problem:
                    self._note(item.problem)
                    continue
                path = Path(item.path)
                if self.secrets.is_excluded(path, base):
                    continue
                found.append(path)
                if len(found) >= self.max_files:
                    return found
        return found

    def prepare(self, roots: Iterable[str | os.PathLike[str]]) -> list[Path]:
        """Set the workspace roots and list the files to index (then `index_paths` them)."""
        self.roots = tuple(Path(r).resolve().as_posix() for r in roots)
        return self.discover(self.roots)

    def build(self, roots: Iterable[str | os.PathLike[str]], progress: Progress | None = None,
              cancel: threading.Event | None = None, batch: int = 64) -> int:
        """Index every file under `roots` from disk; returns the number of files indexed."""
        paths = self.prepare(roots)
        done = 0
        for start in range(0, len(paths), batch):
            if cancel is not None and cancel.is_set():
                break
            done += self.index_paths(paths[start:start + batch])
            if progress is not None:
                progress(min(start + batch, len(paths)), len(paths))
        return done

    def index_paths(self, paths: Iterable[Path]) -> int:
        """(Re)index files from disk; unreadable ones are recorded in `problems`."""
        entries: list[FileSymbols] = []
        for path in paths:
            entry = self._read(Path(path))
            if entry is not None:
                entries.append(entry)
        self._store(entries)
        return len(entries)

    def update_document(self, doc: Document) -> None:
        """Re-extract one open document's definitions (call with a document no one is editing)."""
        path = _doc_path(doc)
        if path is None or doc.tree is None or self.excluded(path):
            return
        self._store([self._entry(path, doc, 0)])

    def update_path(self, path: str | os.PathLike[str]) -> None:
        """Re-read one file from disk (saved or changed outside the editor)."""
        p = Path(path)
        if not p.is_file():
            self.remove(p)
            return
        if self.excluded(p):
            return
        posix = Path(os.path.abspath(p)).as_posix()
        root = next((r for r in self.roots if posix.startswith(r + "/")), None)
        if root is None:  # outside every root (or no build yet): any supported file
            wanted = p.suffix.lower() in supported_extensions()
        else:  # the walk's verdict: an `npm install` under node_modules/ indexes nothing
            wanted = walks_to(posix, root)
        if wanted:
            self.index_paths([p])

    def remove(self, path: str | os.PathLike[str]) -> None:
        """Forget a deleted file (or every file under a deleted folder)."""
        key = Path(path).resolve().as_posix()
        with self._lock:
            doomed = [p for p in self._files if p == key or p.startswith(key + "/")]
            for p in doomed:
                self._drop(p)
            self._recent = [e for e in self._recent if e.path not in doomed]
            self.generation += 1

    def note_edit(self, doc: Document, offset: int) -> None:
        """Remember the lines around an edit at `offset` as a recently edited region."""
        path = _doc_path(doc)
        if path is None or self.excluded(path):
            return
        line = doc.position_at(offset, "utf-8").line
        first = max(0, line - RECENT_CONTEXT_LINES)
        last = min(doc.line_count - 1, line + RECENT_CONTEXT_LINES)
        start = doc.line_span(first)[0]
        end = doc.line_span(last)[1]
        text = doc.source[start:min(end, start + RECENT_MAX_BYTES)].decode("utf-8", "replace")
        edit = RecentEdit(path, doc.language, first, text, time.monotonic())
        with self._lock:
            kept = [e for e in self._recent
                    if not (e.path == path and abs(e.line - first) <= 2 * RECENT_CONTEXT_LINES)]
            kept.append(edit)
            if len(kept) > RECENT_EDITS:
                kept.sort(key=lambda e: e.stamp)
                kept = kept[-RECENT_EDITS:]
            self._recent = kept
            self.generation += 1

    def excluded(self, path: str | os.PathLike[str]) -> bool:
        """True for a secret-looking file or one the user's exclude globs match."""
        posix = Path(path).as_posix()
        root = next((r for r in self.roots if posix.startswith(r + "/")), None)
        return self.secrets.is_excluded(posix, root)

    # ------------------------------------------------------------------ internals

    def _read(self, path: Path) -> FileSymbols | None:
        try:
            stat = path.stat()
        except OSError:
            return None
        key = path.resolve().as_posix()
        old = self._files.get(key)
        if old is not None and old.mtime_ns == stat.st_mtime_ns and old.mtime_ns:
            return old
        result = read_source(path, max_bytes=self.max_file_bytes)
        doc = result.document
        if doc is None:
            if result.problem:
                self._note(result.problem)
            return None
        return self._entry(key, doc, stat.st_mtime_ns)

    def _note(self, problem: str) -> None:
        if len(self.problems) < MAX_PROBLEMS:
            self.problems.append(problem)

    def _entry(self, path: str, doc: Document, mtime_ns: int) -> FileSymbols:
        stem, folder = file_keys(path)
        return FileSymbols(sys.intern(path), doc.language, stem, folder,
                           extract_symbols(doc, path), mtime_ns)

    def _store(self, entries: list[FileSymbols]) -> None:
        if not entries:
            return
        with self._lock:
            added: dict[str, list[Symbol]] = {}
            for entry in entries:
                if entry.path in self._files:
                    self._drop(entry.path)
                self._files[entry.path] = entry
                for symbol in entry.symbols:
                    added.setdefault(symbol.name, []).append(symbol)
                _append(self._by_stem, entry.stem_key.rsplit("/", 1)[-1], entry.path)
                _append(self._by_dir, entry.dir_key.rsplit("/", 1)[-1], entry.path)
            for name, symbols in added.items():
                self._by_name[name] = self._by_name.get(name, ()) + tuple(symbols)
            self.edits_generation += 1

    def _drop(self, path: str) -> None:
        """Remove one file's entries (the lock is held)."""
        entry = self._files.pop(path, None)
        if entry is None:
            return
        for name in {s.name for s in entry.symbols}:
            kept = tuple(s for s in self._by_name.get(name, ()) if s.path != path)
            if kept:
                self._by_name[name] = kept
            else:
                self._by_name.pop(name, None)
        _discard(self._by_stem, entry.stem_key.rsplit("/", 1)[-1], path)
        _discard(self._by_dir, entry.dir_key.rsplit("/", 1)[-1], path)


def _append(table: dict[str, tuple[str, ...]], key: str, path: str) -> None:
    current = table.get(key, ())
    if path not in current:
        table[key] = (*current, path)


def _discard(table: dict[str, tuple[str, ...]], key: str, path: str) -> None:
    kept = tuple(p for p in table.get(key, ()) if p != path)
    if kept:
        table[key] = kept
    else:
        table.pop(key, None)


def _doc_path(doc: Document) -> str | None:
    path = uri_to_path(doc.uri)
    if path is None:
        return None
    return path.resolve().as_posix() if path.is_absolute() else path.as_posix()
