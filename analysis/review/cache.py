"""The review cache: a file's review result kept under a hash of everything that decides it.

Key: SHA-256 over the cache format, stagecoder's version, the rule set (the source of the whole
`analysis` package, which holds the rules and everything they read, plus the tree-sitter
grammar versions and the Python version), the review settings and size limit, the file's path as
shown (per-path ignores and messages depend on it) and the file's bytes. So a file whose bytes,
path, settings and rules are unchanged is never checked again, and any change to one of them is
a miss. Results cut short by the time budget are not kept (a quieter run may finish them).

Store: one SQLite database, `review.sqlite`, in the cache folder: `--cache-dir`, else
$STAGECODER_CACHE_DIR, else $XDG_CACHE_HOME/stagecoder, else ~/.cache/stagecoder. It is bounded
in bytes (`CACHE_MAX_BYTES` of stored results): after a run the least recently used entries go
until the rest fit. Parallel runs may share it (SQLite locks it). A cache that cannot be opened
or written is skipped with one warning; the review itself never fails because of it.
"""

from __future__ import annotations

import functools
import hashlib
import os
import sqlite3
import sys
import time
from collections.abc import Iterable
from importlib import metadata
from pathlib import Path
from typing import TypeVar

import msgspec

from analysis.settings import Settings

T = TypeVar("T")

FORMAT = b"stagecoder-review-cache-1"
CACHE_MAX_BYTES = 64 << 20
FILE_NAME = "review.sqlite"
_GRAMMARS = ("tree-sitter", "tree-sitter-python", "tree-sitter-javascript",
             "tree-sitter-typescript", "tree-sitter-go", "tree-sitter-rust", "tree-sitter-java",
             "tree-sitter-c", "tree-sitter-cpp")
_BATCH = 500  # keys per SELECT (SQLite's variable limit is far above)


def default_cache_dir() -> Path:
    """Where the cache lives unless `--cache-dir` says otherwise (see the module docstring)."""
    explicit = os.environ.get("STAGECODER_CACHE_DIR")
    if explicit:
        return Path(explicit).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "stagecoder"


def _version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "-"


@functools.cache
def rules_digest() -> bytes:
    """A digest of the rule set: the analysis package's source, grammar and Python versions."""
    digest = hashlib.sha256()
    package = Path(__file__).resolve().parents[1]  # analysis/
    for path in sorted(package.rglob("*")):
        if path.suffix in (".py", ".scm") and "__pycache__" not in path.parts:
            digest.update(path.relative_to(package).as_posix().encode() + b"\0")
            digest.update(path.read_bytes())
    for name in _GRAMMARS:
        digest.update(f"{name}={_version(name)}\0".encode())
    digest.update(f"python={sys.version_info[:2]}\0".encode())
    return digest.digest()


def fingerprint(settings: Settings) -> bytes:
    """Everything but the file that decides a review result (see the module docstring)."""
    digest = hashlib.sha256(FORMAT)
    digest.update(_version("stagecoder").encode() + b"\0")
    digest.update(rules_digest())
    digest.update(msgspec.json.encode(settings.review))
    digest.update(f"\0{settings.max_file_bytes}".encode())
    return digest.digest()


def entry_key(fingerprint: bytes, path: str, data: bytes) -> bytes:
    """The key of one file's result: the run's fingerprint, its path as shown, its bytes."""
    digest = hashlib.sha256(fingerprint)
    digest.update(path.encode("utf-8", "surrogateescape") + b"\0")
    digest.update(data)
    return digest.digest()


class CacheError(Exception):
    """The cache could not be opened, read or written."""


class ReviewCache:
    """Results by key in one SQLite file, bounded in bytes (least recently used go first)."""

    def __init__(self, folder: Path, max_bytes: int = CACHE_MAX_BYTES) -> None:
        self.path = folder / FILE_NAME
        self.max_bytes = max_bytes
        self.hits = self.misses = 0
        self._new: dict[bytes, bytes] = {}
        self._used: list[bytes] = []
        try:
            folder.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(self.path, timeout=30.0)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute("CREATE TABLE IF NOT EXISTS entries (key BLOB PRIMARY KEY, "
                             "value BLOB NOT NULL, size INTEGER NOT NULL, used REAL NOT NULL)")
            self._db.commit()
        except (OSError, sqlite3.Error) as exc:
            raise CacheError(f"cannot use the review cache at {self.path}: {exc}") from None

    def get_many(self, keys: Iterable[bytes], type_: type[T]) -> dict[bytes, T]:
        """The cached results among `keys`, as `type_` (one that no longer decodes: a miss)."""
        wanted = list(keys)
        found: dict[bytes, T] = {}
        try:
            for start in range(0, len(wanted), _BATCH):
                part = wanted[start:start + _BATCH]
                rows = self._db.execute(
                    f"SELECT key, value FROM entries WHERE key IN ({','.join('?' * len(part))})",
                    part).fetchall()
                for key, value in rows:
                    try:
                        found[key] = msgspec.msgpack.decode(value, type=type_)
                    except msgspec.DecodeError:
                        continue
        except sqlite3.Error as exc:
            raise CacheError(f"cannot read the review cache at {self.path}: {exc}") from None
        self.hits += len(found)
        self.misses += len(wanted) - len(found)
        self._used.extend(found)
        return found

    def put(self, key: bytes, result: msgspec.Struct) -> None:
        """Keep `result` under `key` (written at `close`)."""
        self._new[key] = msgspec.msgpack.encode(result)

    def close(self) -> None:
        """Write the new results and the hits' use times, then trim to the byte bound."""
        now = time.time()
        try:
            with self._db:
                self._db.executemany(
                    "INSERT OR REPLACE INTO entries (key, value, size, used) VALUES (?, ?, ?, ?)",
                    [(k, v, len(k) + len(v), now) for k, v in self._new.items()])
                self._db.executemany("UPDATE entries SET used = ? WHERE key = ?",
                                     [(now, k) for k in self._used])
                self._trim()
        except sqlite3.Error as exc:
            raise CacheError(f"cannot write the review cache at {self.path}: {exc}") from None
        finally:
            self._new.clear()
            self._used.clear()
            self._db.close()

    def _trim(self) -> None:
        total = self._db.execute("SELECT COALESCE(SUM(size), 0) FROM entries").fetchone()[0]
        if total <= self.max_bytes:
            return
        kept, doomed = 0, []
        for key, size in self._db.execute("SELECT key, size FROM entries ORDER BY used DESC"):
            kept += size
            if kept > self.max_bytes:
                doomed.append((key,))
        self._db.executemany("DELETE FROM entries WHERE key = ?", doomed)

    def stored_bytes(self) -> int:
        """Bytes of results stored now (keys and values)."""
        try:
            db = sqlite3.connect(self.path, timeout=30.0)
            try:
                return int(db.execute("SELECT COALESCE(SUM(size), 0) FROM entries").fetchone()[0])
            finally:
                db.close()
        except sqlite3.Error as exc:
            raise CacheError(f"cannot read the review cache at {self.path}: {exc}") from None
