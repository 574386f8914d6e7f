"""The set of documents the engine knows: open in an editor, or loaded from disk on demand.

Reading from disk goes through `analysis.documents.reader` (regular files only, byte-bounded,
binary and
line-length checks) and never raises for bad files: it returns a `LoadResult` that says why a file
was skipped and flags invalid UTF-8 that was replaced.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, unquote, urlparse

from analysis.documents.document import Document, EditResult, Encoding
from analysis.documents.reader import DEFAULT_MAX_BYTES, MAX_LINE_CHARS, read_code


def uri_to_path(uri: str) -> Path | None:
    """The filesystem path of a file:// URI, or None for other schemes."""
    parsed = urlparse(uri)
    if parsed.scheme != "file":
        return None
    return Path(unquote(parsed.path))


def path_to_uri(path: str | os.PathLike[str]) -> str:
    """A file:// URI for a filesystem path."""
    return "file://" + quote(str(Path(path).resolve()))


@dataclass(frozen=True, slots=True)
class LoadResult:
    """A document read from disk, or the reason it was not."""

    document: Document | None
    problem: str | None = None  # a sentence for the user; None when all went well


def read_source(
    path: Path, uri: str | None = None, language_id: str | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES, max_line_chars: int = MAX_LINE_CHARS,
    shown: str | None = None,
) -> LoadResult:
    """Read a file into a Document (through the bounded reader); bad files give a problem."""
    uri = uri or path_to_uri(path)
    shown = str(path) if shown is None else shown
    read = read_code(path, max_bytes, max_line_chars, shown)
    if read.data is None:
        return LoadResult(None, read.problem)
    doc = Document.from_bytes(uri, read.data, language_id, max_bytes=max_bytes, path=str(path))
    if doc.decode_errors:
        return LoadResult(doc, f"{shown}: invalid UTF-8, undecodable bytes shown as U+FFFD")
    return LoadResult(doc)


class DocumentStore:
    """Open documents by URI; thread-safe for the server's worker threads."""

    def __init__(self, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        self.max_bytes = max_bytes
        self._docs: dict[str, Document] = {}
        self._lock = threading.Lock()

    def open(self, uri: str, text: str, language_id: str | None, version: int) -> Document:
        """Start tracking a document the editor opened (replaces any earlier copy)."""
        doc = Document(uri, text, language_id, version, max_bytes=self.max_bytes)
        with self._lock:
            self._docs[uri] = doc
        return doc

    def get(self, uri: str) -> Document | None:
        """The open document for a URI, or None."""
        return self._docs.get(uri)

    def change(
        self,
        uri: str,
        start: tuple[int, int] | None,
        end: tuple[int, int] | None,
        text: str,
        encoding: Encoding,
        version: int | None,
    ) -> EditResult | None:
        """Apply one content change; None when the document is not open."""
        doc = self._docs.get(uri)
        if doc is None:
            return None
        if start is None or end is None:
            # A whole-text change: start afresh so the size limit and language are re-decided.
            fresh = self.open(uri, text, doc.language_id,
                              version if version is not None else doc.version)
            return EditResult(0, len(doc.source), len(fresh.source), False)
        return doc.apply_edit(start, end, text, encoding, version)

    def close(self, uri: str) -> bool:
        """Forget a document; False when it was not open."""
        with self._lock:
            return self._docs.pop(uri, None) is not None

    def load(self, uri: str, language_id: str | None = None) -> LoadResult:
        """The open document, else the file on disk (not kept open)."""
        doc = self._docs.get(uri)
        if doc is not None:
            return LoadResult(doc)
        path = uri_to_path(uri)
        if path is None:
            return LoadResult(None, f"{uri}: not open and not a file URI")
        return read_source(path, uri, language_id, self.max_bytes)

    def uris(self) -> list[str]:
        """URIs of every open document."""
        return list(self._docs)

    def __len__(self) -> int:
        return len(self._docs)
