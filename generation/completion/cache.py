"""Typing-through cache: answer keystrokes that agree with the suggestion shown, with no model call.

An entry remembers, per document, where a suggestion was shown and hashes of the text before and
after that point. A later request hits when the text before the original cursor is unchanged,
the user has typed a prefix of the suggestion since, and the text after the cursor is unchanged.
The cache is bounded in bytes (suggestion text plus a fixed overhead per entry), oldest out first.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from dataclasses import dataclass

_ENTRY_OVERHEAD = 256  # bytes charged per entry besides its text: hashes, offsets, keys


def _digest(data: bytes) -> bytes:
    return hashlib.blake2b(data, digest_size=16).digest()


@dataclass(frozen=True, slots=True)
class _Entry:
    offset: int
    prefix_hash: bytes
    suffix_hash: bytes
    text: str
    encoded: bytes

    @property
    def cost(self) -> int:
        return len(self.encoded) + _ENTRY_OVERHEAD


class TypingThroughCache:
    """Per-document suggestions, bounded in bytes."""

    def __init__(self, max_bytes: int = 1 << 20) -> None:
        self.max_bytes = max_bytes
        self._entries: OrderedDict[str, _Entry] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0
        self.partial_accepts = 0  # suggestions accepted in part (didPartiallyAcceptCompletion)

    @property
    def size_bytes(self) -> int:
        """Bytes charged to the entries held now."""
        return self._bytes

    def store(self, key: str, source: bytes, offset: int, text: str) -> None:
        """Remember that `text` was suggested at `offset` of `source`."""
        encoded = text.encode("utf-8", "surrogatepass")
        entry = _Entry(offset, _digest(source[:offset]), _digest(source[offset:]), text, encoded)
        if entry.cost > self.max_bytes:
            return
        with self._lock:
            old = self._entries.pop(key, None)
            if old is not None:
                self._bytes -= old.cost
            self._entries[key] = entry
            self._bytes += entry.cost
            while self._bytes > self.max_bytes:
                _, evicted = self._entries.popitem(last=False)
                self._bytes -= evicted.cost

    def lookup(self, key: str, source: bytes, offset: int) -> str | None:
        """The rest of the shown suggestion if the user typed along with it, else None."""
        entry = self._entries.get(key)
        if entry is None or offset < entry.offset:
            self.misses += 1
            return None
        typed = source[entry.offset:offset]
        if (not entry.encoded.startswith(typed) or len(typed) >= len(entry.encoded)
                or _digest(source[offset:]) != entry.suffix_hash
                or _digest(source[: entry.offset]) != entry.prefix_hash):
            self.misses += 1
            return None
        with self._lock:
            if key in self._entries:
                self._entries.move_to_end(key)
        self.hits += 1
        return entry.encoded[len(typed):].decode("utf-8", "surrogatepass")

    def keys_showing(self, shown: str) -> list[str]:
        """Documents whose suggestion ends with `shown` (what the editor shows of it now)."""
        data = shown.encode("utf-8", "surrogatepass")
        return [key for key, entry in list(self._entries.items())
                if data and entry.encoded.endswith(data)]

    def accept_prefix(self, key: str, source: bytes, shown: str, accepted: int) -> bool:
        """The editor accepted the first `accepted` bytes of `shown` (the rest of the
        suggestion it showed): the entry moves past them, so the next keystrokes are answered
        with what is left. `source` may hold the accepted text already or not yet (the
        notification and its didChange come in either order). False when the entry does not
        fit `source`."""
        entry = self._entries.get(key)
        data = shown.encode("utf-8", "surrogatepass")
        if entry is None or not entry.encoded.endswith(data) or accepted > len(data):
            return False
        typed = len(entry.encoded) - len(data)
        anchor = entry.offset + typed
        if (_digest(source[:entry.offset]) != entry.prefix_hash
                or source[entry.offset:anchor] != entry.encoded[:typed]):
            return False
        taken = data[:accepted]
        if source[anchor:anchor + accepted] == taken:
            prefix = source[:anchor + accepted]
        else:
            prefix = source[:anchor] + taken
        rest = data[accepted:]
        self.partial_accepts += 1
        if not rest:
            self.forget(key)
            return True
        moved = _Entry(anchor + accepted, _digest(prefix), entry.suffix_hash,
                       rest.decode("utf-8", "surrogatepass"), rest)
        with self._lock:
            old = self._entries.pop(key, None)
            if old is not None:
                self._bytes -= old.cost
            self._entries[key] = moved
            self._bytes += moved.cost
        return True

    def forget(self, key: str) -> None:
        """Drop the entry for a document (closed, or the suggestion was rejected)."""
        with self._lock:
            old = self._entries.pop(key, None)
            if old is not None:
                self._bytes -= old.cost
