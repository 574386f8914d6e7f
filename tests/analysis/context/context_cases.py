"""Helpers shared by the context, symbol and secret tests: fixture projects and cursor placement."""

from __future__ import annotations

from pathlib import Path

from analysis.documents.document import Document
from analysis.documents.store import path_to_uri, read_source

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "context"


def load(path: Path | str) -> Document:
    """A fixture file (relative to tests/fixtures/context) or any path, as a Document."""
    file = Path(path)
    if not file.is_absolute():
        file = FIXTURES / file
    loaded = read_source(file)
    assert loaded.document is not None, loaded.problem
    return loaded.document


def place(doc: Document, anchor: str, insert: str = "") -> int:
    """The cursor right after `anchor` (its first occurrence); with `insert`, type that text
    there first (an edit through the tree) and put the cursor at its "|" (default: its end)."""
    data = anchor.encode()
    at = doc.source.find(data)
    assert at >= 0, f"{anchor!r} not in {doc.uri}"
    at += len(data)
    if not insert:
        return at
    if "|" not in insert:
        insert += "|"
    before, after = insert.split("|", 1)
    doc.replace_bytes(at, at, before + after, doc.version + 1)
    return at + len(before.encode())


def document(text: str, name: str, root: Path | None = None) -> Document:
    """An in-memory document whose uri names a file (under `root` when given)."""
    path = (root / name) if root is not None else Path("/nonexistent") / name
    return Document(path_to_uri(path), text)
