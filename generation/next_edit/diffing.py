"""The model's rewritten region against the region as it is: minimal edits (difflib).

Lines are matched first (`difflib.SequenceMatcher` over lines, no junk heuristic), so an edit
never straddles unrelated lines; each run of changed lines is one edit, trimmed to the
characters that really differ (common prefix and suffix removed), widened to whole words where
a cut would fall inside one. Offsets are characters of the
region's text; `to_bytes` places an edit in the document.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class TextEdit:
    """Replace characters [start, end) with `text` (offsets into the text it was diffed on)."""

    start: int
    end: int
    text: str


def _common_prefix(a: str, b: str) -> int:
    n = min(len(a), len(b))
    i = 0
    while i < n and a[i] == b[i]:
        i += 1
    return i


def _common_suffix(a: str, b: str, limit: int) -> int:
    n = min(len(a), len(b)) - limit
    i = 0
    while i < n and a[-1 - i] == b[-1 - i]:
        i += 1
    return i


def minimal_edits(old: str, new: str) -> list[TextEdit]:
    """The edits that turn `old` into `new`, each as small as its changed lines allow."""
    if old == new:
        return []
    a = old.splitlines(keepends=True)
    b = new.splitlines(keepends=True)
    starts = [0]
    for line in a:
        starts.append(starts[-1] + len(line))
    matcher = difflib.SequenceMatcher(None, a, b, autojunk=False)
    edits: list[TextEdit] = []
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            continue
        before = "".join(a[i1:i2])
        after = "".join(b[j1:j2])
        head = _common_prefix(before, after)
        tail = _common_suffix(before, after, head)
        head, tail = _snap_to_words(before, after, head, tail)
        start = starts[i1] + head
        end = starts[i2] - tail
        edits.append(TextEdit(start, end, after[head:len(after) - tail]))
    return _merge_touching(edits)


def _word(ch: str) -> bool:
    return ch.isalnum() or ch == "_"


def _snap_to_words(before: str, after: str, head: int, tail: int) -> tuple[int, int]:
    """Widen a cut that falls inside a word to the word's edge (`area(r` -> `area(radius`
    replaces `r`, not inserts `adius`): an edit reads as whole names."""
    def changed_starts_word(h: int, t: int) -> bool:
        return any(_word(x[:1]) for x in (before[h:len(before) - t], after[h:len(after) - t]))

    while head > 0 and _word(before[head - 1]) and changed_starts_word(head, tail):
        head -= 1

    def changed_ends_word(h: int, t: int) -> bool:
        return any(x and _word(x[-1]) for x in (before[h:len(before) - t], after[h:len(after) - t]))

    while tail > 0 and _word(before[len(before) - tail]) and changed_ends_word(head, tail):
        tail -= 1
    return head, tail


def _merge_touching(edits: list[TextEdit]) -> list[TextEdit]:
    """Edits that meet (one ends where the next starts) become one."""
    out: list[TextEdit] = []
    for edit in edits:
        if out and out[-1].end == edit.start:
            prev = out.pop()
            edit = TextEdit(prev.start, edit.end, prev.text + edit.text)
        out.append(edit)
    return out


def apply(text: str, edits: list[TextEdit]) -> str:
    """`text` with non-overlapping `edits` applied."""
    out = text
    for edit in sorted(edits, key=lambda e: e.start, reverse=True):
        out = out[:edit.start] + edit.text + out[edit.end:]
    return out


def to_bytes(region_text: str, region_start: int, edit: TextEdit) -> tuple[int, int]:
    """The byte span in the document of an edit made on the region's text."""
    start = region_start + len(region_text[:edit.start].encode("utf-8", "surrogatepass"))
    end = start + len(region_text[edit.start:edit.end].encode("utf-8", "surrogatepass"))
    return start, end
