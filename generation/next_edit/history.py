"""Per-document edit history for next-edit prompts: changes coalesced into whole-line hunks.

`EditHistory.record(uri, before, start, end, text)` takes one content change (the document's
bytes before it, the replaced byte span and the new text). A change whose lines overlap the
document's latest hunk is folded into it (typing a word, a line, a few lines in a row is one
hunk); any other change starts a new hunk. A hunk holds the whole lines it touched before and
after (`old`, `new`) and the line where they start, so it renders as a unified-diff hunk.

Bounded in bytes, over all documents: the oldest hunks go first; a document keeps at most
MAX_ENTRIES hunks and a hunk larger than MAX_HUNK_BYTES is not kept (a paste of a whole file
says nothing about the next edit). Files that look like secrets (analysis/secrets.py, plus the
context excludes) record nothing: no text of theirs can reach a prompt through the history.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass

from analysis.documents.store import uri_to_path
from analysis.secrets import SecretFilter

MAX_ENTRIES = 25  # hunks per document (Copilot sends up to about 25)
MAX_HUNK_BYTES = 16 << 10
MAX_HUNK_LINES = 12  # a hunk that grew past this many lines starts a new one
_OVERHEAD = 96  # bytes charged per hunk besides its text


@dataclass(slots=True)
class Hunk:
    """Whole lines `old` replaced by `new`, starting at `line` (zero-based) at byte `start`."""

    start: int
    line: int
    old: bytes
    new: bytes
    above: bytes = b""  # the line before the hunk, as context (b"": none, or the file's start)
    below: bytes = b""  # the line after it
    seq: int = 0  # order of recording, over all documents (eviction goes by it)
    shown: tuple[str, str] | None = None  # (path, rendered and masked text), kept once made

    @property
    def end(self) -> int:
        """Byte offset where the hunk's new lines end in the document after it."""
        return self.start + len(self.new)

    @property
    def cost(self) -> int:
        return len(self.old) + len(self.new) + len(self.above) + len(self.below) + _OVERHEAD

    def render(self, path: str) -> str:
        """The hunk as a unified diff (`--- a/path`, `+++ b/path`, one `@@` section)."""
        old = self.old.decode("utf-8", "replace").splitlines()
        new = self.new.decode("utf-8", "replace").splitlines()
        head = 0
        while head < min(len(old), len(new)) and old[head] == new[head]:
            head += 1
        tail = 0
        while tail < min(len(old), len(new)) - head and old[-1 - tail] == new[-1 - tail]:
            tail += 1
        # One line of context on each side: inside the hunk where it has one, else around it.
        keep_head, keep_tail = min(head, 1), min(tail, 1)
        first = self.line + head - keep_head
        ctx_before = old[head - keep_head:head]
        ctx_after = old[len(old) - tail:len(old) - tail + keep_tail]
        if not ctx_before and self.above:
            ctx_before = [self.above.decode("utf-8", "replace").rstrip("\r\n")]
            first -= 1
        if not ctx_after and self.below:
            ctx_after = [self.below.decode("utf-8", "replace").rstrip("\r\n")]
        removed = old[head:len(old) - tail]
        added = new[head:len(new) - tail]
        n_old = len(ctx_before) + len(removed) + len(ctx_after)
        n_new = len(ctx_before) + len(added) + len(ctx_after)
        path = path.lstrip("/")
        lines = [f"--- a/{path}", f"+++ b/{path}",
                 f"@@ -{first + 1},{n_old} +{first + 1},{n_new} @@"]
        lines += [f" {x}" for x in ctx_before]
        lines += [f"-{x}" for x in removed]
        lines += [f"+{x}" for x in added]
        lines += [f" {x}" for x in ctx_after]
        return "\n".join(lines) + "\n"


def _context(src: bytes, lo: int, hi: int) -> tuple[bytes, bytes]:
    """The line before `lo` and the line from `hi` (both line boundaries) in `src`."""
    above = src[src.rfind(b"\n", 0, lo - 1) + 1:lo] if lo > 0 else b""
    nl = src.find(b"\n", hi)
    below = src[hi:(len(src) if nl == -1 else nl + 1)]
    return above[-512:], below[:512]


def _line_span(src: bytes, start: int, end: int) -> tuple[int, int]:
    """The whole lines holding [start, end): from the line start to after the end's line break."""
    lo = src.rfind(b"\n", 0, start) + 1
    nl = src.find(b"\n", end)
    return lo, (len(src) if nl == -1 else nl + 1)


def _overlaps(hunk: Hunk, lo: int, hi: int) -> bool:
    """Whether the lines [lo, hi) overlap the hunk's new lines (or hold a hunk that deleted its
    lines)."""
    if hunk.end > hunk.start:
        return lo < hunk.end and hi > hunk.start
    return lo <= hunk.start <= hi


class EditHistory:
    """Coalesced edit hunks per document, bounded in bytes over all documents."""

    def __init__(self, max_bytes: int = 1 << 20, excludes: Iterable[str] = ()) -> None:
        self.max_bytes = max_bytes
        self._docs: OrderedDict[str, list[Hunk]] = OrderedDict()
        self._bytes = 0
        self._seq = 0
        self._lock = threading.Lock()
        self._secrets = SecretFilter(excludes)
        self._excluded: dict[str, bool] = {}

    @property
    def size_bytes(self) -> int:
        """Bytes charged to the hunks held now."""
        return self._bytes

    def use_excludes(self, excludes: Iterable[str]) -> None:
        """Exclude globs from the settings (context.exclude) besides the secret-file names."""
        excludes = tuple(excludes)
        if excludes != self._secrets.excludes:
            self._secrets = SecretFilter(excludes)
            self._excluded.clear()

    def excluded(self, uri: str) -> bool:
        """True when the document's text must never reach a model (a secret-looking file)."""
        hit = self._excluded.get(uri)
        if hit is None:
            path = uri_to_path(uri)
            hit = self._secrets.is_excluded(path.as_posix() if path is not None else uri)
            if len(self._excluded) > 4096:
                self._excluded.clear()
            self._excluded[uri] = hit
        return hit

    def record(self, uri: str, before: bytes, start: int, end: int, text: str | bytes) -> None:
        """Fold one change (bytes [start, end) of `before` replaced by `text`) into the history."""
        if self.excluded(uri):
            return
        data = text.encode("utf-8", "surrogatepass") if isinstance(text, str) else text
        if start == end and not data:
            return
        lo, hi = _line_span(before, start, end)
        with self._lock:
            hunks = self._docs.get(uri)
            last = hunks[-1] if hunks else None
            if last is not None and _overlaps(last, lo, hi):
                # The change touches the latest hunk's lines: widen the hunk and apply it.
                lo2, hi2 = min(lo, last.start), max(hi, last.end)
                old = before[lo2:last.start] + last.old + before[last.end:hi2]
                new = before[lo2:start] + data + before[end:hi2]
                if old.count(b"\n") <= MAX_HUNK_LINES and new.count(b"\n") <= MAX_HUNK_LINES:
                    line = last.line - before.count(b"\n", lo2, last.start)
                    self._drop_last(uri)
                    self._push(uri, Hunk(lo2, line, old, new, *_context(before, lo2, hi2)))
                    return
            old = before[lo:hi]
            new = before[lo:start] + data + before[end:hi]
            self._push(uri, Hunk(lo, before.count(b"\n", 0, lo), old, new,
                                 *_context(before, lo, hi)))

    def record_replace_all(self, uri: str, before: bytes, after: bytes) -> None:
        """A whole-text change: recorded as the span where the two texts differ."""
        head = 0
        limit = min(len(before), len(after))
        while head < limit and before[head] == after[head]:
            head += 1
        tail = 0
        while tail < limit - head and before[-1 - tail] == after[-1 - tail]:
            tail += 1
        self.record(uri, before, head, len(before) - tail, after[head:len(after) - tail])

    def hunks(self, uri: str) -> list[Hunk]:
        """The document's hunks, oldest first."""
        return list(self._docs.get(uri, ()))

    def forget(self, uri: str) -> None:
        """Drop a document's history (it was closed)."""
        with self._lock:
            for hunk in self._docs.pop(uri, ()):
                self._bytes -= hunk.cost

    def render(self, uri: str, path: str, max_tokens: int, bytes_per_token: float = 3.5,
               redact: bool = True) -> list[str]:
        """The newest hunks as unified diffs, oldest first, within `max_tokens` (estimated)."""
        from analysis.secrets import redact as mask

        out: list[str] = []
        budget = max_tokens * bytes_per_token
        for hunk in reversed(self.hunks(uri)):
            if hunk.old == hunk.new:
                continue
            if hunk.shown is not None and hunk.shown[0] == path and redact:
                text = hunk.shown[1]
            else:
                text = hunk.render(path)
                if redact:
                    text = mask(text, path).text
                    hunk.shown = (path, text)  # a hunk never changes once recorded
            cost = len(text.encode("utf-8", "surrogatepass"))
            if cost > budget:
                break
            budget -= cost
            out.append(text)
        out.reverse()
        return out

    # -- bookkeeping (under the lock) --

    def _drop_last(self, uri: str) -> None:
        hunks = self._docs[uri]
        self._bytes -= hunks.pop().cost

    def _push(self, uri: str, hunk: Hunk) -> None:
        if hunk.cost > MAX_HUNK_BYTES or hunk.old == hunk.new:
            return
        self._seq += 1
        hunk.seq = self._seq
        hunks = self._docs.setdefault(uri, [])
        self._docs.move_to_end(uri)
        hunks.append(hunk)
        self._bytes += hunk.cost
        while len(hunks) > MAX_ENTRIES:
            self._bytes -= hunks.pop(0).cost
        while self._bytes > self.max_bytes and self._docs:
            oldest_uri = min(self._docs, key=lambda u: self._docs[u][0].seq
                             if self._docs[u] else -1)
            victims = self._docs[oldest_uri]
            if victims:
                self._bytes -= victims.pop(0).cost
            if not victims:
                del self._docs[oldest_uri]
