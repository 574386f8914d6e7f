"""The editable region around the cursor and the excerpt around it, as the model sees them.

The region is whole lines: REGION_ABOVE lines above the cursor's line to REGION_BELOW below it
(Copilot's window is about 2 above and 5 below); the excerpt adds up to CONTEXT_LINES lines on
each side (bounded in bytes). Text leaves masked (analysis/secrets.py `redact_window`; masking
keeps every character's place), and `masked` records where the region's text was changed by
the mask, so no edit may touch a secret the model only saw as `xxxx`.
"""

from __future__ import annotations

from dataclasses import dataclass

from analysis.documents.document import Document
from analysis.secrets import redact_window

REGION_ABOVE = 2
REGION_BELOW = 5
CONTEXT_LINES = 30
CONTEXT_BYTES = 6000  # each side of the region


@dataclass(frozen=True, slots=True)
class Region:
    """The editable region of one request: byte span, text as sent, and what surrounds it."""

    start: int  # bytes, in the document
    end: int
    cursor: int  # bytes, in the document
    text: str  # the region's text as the model sees it (masked)
    original: str  # the region's text as it is
    before: str  # excerpt text before the region (masked)
    after: str  # excerpt text after the region (masked)
    cursor_in_text: int  # characters into `text`
    starts_file: bool  # the excerpt begins at the start of the file
    ends_file: bool

    @property
    def masked(self) -> list[tuple[int, int]]:
        """Character spans of `text` that the mask changed (a secret is there)."""
        spans: list[tuple[int, int]] = []
        i, n = 0, len(self.text)
        while i < n:
            if self.text[i] != self.original[i]:
                j = i
                while j < n and self.text[j] != self.original[j]:
                    j += 1
                spans.append((i, j))
                i = j
            else:
                i += 1
        return spans


def region_at(doc: Document, cursor: int, path: str = "", above: int = REGION_ABOVE,
              below: int = REGION_BELOW) -> Region:
    """The region and excerpt around byte `cursor` of `doc`."""
    src = doc.source
    cursor = min(max(cursor, 0), len(src))
    line = doc.position_at(cursor, "utf-8").line
    first = max(0, line - above)
    last = line + below  # inclusive
    start = doc.line_span(first)[0] if first < doc.line_count else len(src)
    end = doc.line_span(last + 1)[0] if last + 1 < doc.line_count else len(src)
    ctx_start = start
    for _ in range(CONTEXT_LINES):
        if ctx_start == 0 or start - ctx_start > CONTEXT_BYTES:
            break
        ctx_start = src.rfind(b"\n", 0, ctx_start - 1) + 1
    ctx_end = end
    for _ in range(CONTEXT_LINES):
        if ctx_end >= len(src) or ctx_end - end > CONTEXT_BYTES:
            break
        nl = src.find(b"\n", ctx_end)
        ctx_end = len(src) if nl == -1 else nl + 1
    before_text, rest, _ = redact_window(src, ctx_start, start, ctx_end, path)
    region_chars = len(src[start:end].decode("utf-8", "replace"))
    text, after_text = rest[:region_chars], rest[region_chars:]
    original = src[start:end].decode("utf-8", "replace")
    return Region(start=start, end=end, cursor=cursor, text=text, original=original,
                  before=before_text, after=after_text,
                  cursor_in_text=len(src[start:cursor].decode("utf-8", "replace")),
                  starts_file=ctx_start == 0, ends_file=ctx_end >= len(src))
