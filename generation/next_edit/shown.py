"""Typing through a shown next edit: answer from the model's last rewrite, with no model call.

When an edit is shown, the model's whole rewrite of the region is remembered with hashes of the
text before and after the region. A later request for the document is answered from it when the
text outside the region is unchanged and the region now lies between what it was and what the
model wrote: the user typed (or accepted) part of the suggestion and nothing foreign. The rest
of the rewrite is then diffed against the region as it is now, and the stages run again on that
edit (cheap), but the model is not asked. A region that now equals the rewrite is done (the
entry is forgotten). Bounded in bytes, oldest out first.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from dataclasses import dataclass

_OVERHEAD = 256


def _digest(data: bytes) -> bytes:
    return hashlib.blake2b(data, digest_size=16).digest()


@dataclass(frozen=True, slots=True)
class _Shown:
    start: int  # the region's start, in bytes
    suffix_len: int  # bytes after the region
    prefix_hash: bytes
    suffix_hash: bytes
    region: str  # the region as it was when the model was asked
    answer: str  # the model's rewrite of it

    @property
    def cost(self) -> int:
        return len(self.region.encode("utf-8", "surrogatepass")) + len(
            self.answer.encode("utf-8", "surrogatepass")) + _OVERHEAD


@dataclass(frozen=True, slots=True)
class Resume:
    """What a request typing through a shown edit gets: the region now and the rewrite."""

    start: int
    current: str
    answer: str


def _agrees(current: str, region: str, answer: str) -> bool:
    """True when `current` lies on the way from `region` to `answer`: what differs from the
    answer is a piece of the old region (nothing foreign typed) and it is closer than before."""
    head = 0
    n = min(len(current), len(answer))
    while head < n and current[head] == answer[head]:
        head += 1
    tail = 0
    while tail < n - head and current[-1 - tail] == answer[-1 - tail]:
        tail += 1
    left_over = current[head:len(current) - tail]
    missing = answer[head:len(answer) - tail]
    if left_over and left_over not in region:
        return False
    before = _distance(region, answer)
    return len(left_over) + len(missing) < before


def _distance(a: str, b: str) -> int:
    head = 0
    n = min(len(a), len(b))
    while head < n and a[head] == b[head]:
        head += 1
    tail = 0
    while tail < n - head and a[-1 - tail] == b[-1 - tail]:
        tail += 1
    return (len(a) - head - tail) + (len(b) - head - tail)


class ShownEdits:
    """The last rewrite shown per document, bounded in bytes."""

    def __init__(self, max_bytes: int = 1 << 20) -> None:
        self.max_bytes = max_bytes
        self._entries: OrderedDict[str, _Shown] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    @property
    def size_bytes(self) -> int:
        """Bytes charged to the entries held now."""
        return self._bytes

    def store(self, uri: str, source: bytes, start: int, end: int, region: str,
              answer: str) -> None:
        """Remember that the model rewrote bytes [start, end) of `source` (`region`) as
        `answer`."""
        entry = _Shown(start, len(source) - end, _digest(source[:start]), _digest(source[end:]),
                       region, answer)
        if entry.cost > self.max_bytes:
            return
        with self._lock:
            old = self._entries.pop(uri, None)
            if old is not None:
                self._bytes -= old.cost
            self._entries[uri] = entry
            self._bytes += entry.cost
            while self._bytes > self.max_bytes:
                _, evicted = self._entries.popitem(last=False)
                self._bytes -= evicted.cost

    def lookup(self, uri: str, source: bytes) -> Resume | None:
        """The region now and the rewrite, when the document typed along with the shown edit
        (or still is as it was); None otherwise (counted as a miss)."""
        entry = self._entries.get(uri)
        if entry is None:
            self.misses += 1
            return None
        end = len(source) - entry.suffix_len
        if (end < entry.start or _digest(source[end:]) != entry.suffix_hash
                or _digest(source[:entry.start]) != entry.prefix_hash):
            self.misses += 1
            return None
        try:
            current = source[entry.start:end].decode("utf-8", "surrogatepass")
        except UnicodeDecodeError:
            self.misses += 1
            return None
        if current == entry.answer:
            self.forget(uri)  # the whole rewrite is in: nothing more to suggest from it
            self.misses += 1
            return None
        if current != entry.region and not _agrees(current, entry.region, entry.answer):
            self.misses += 1
            return None
        self.hits += 1
        return Resume(entry.start, current, entry.answer)

    def forget(self, uri: str) -> None:
        """Drop the entry for a document (closed, dismissed)."""
        with self._lock:
            old = self._entries.pop(uri, None)
            if old is not None:
                self._bytes -= old.cost
