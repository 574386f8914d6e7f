"""What a check reports: `Finding`s with an optional `Fix` made of byte-offset `Edit`s.

Everything here is plain data (msgspec Structs), so findings cross process boundaries (the
parallel review) and become LSP diagnostics or report entries without re-running a check.
Offsets are UTF-8 byte offsets into the document's source; `Location`s are 1-based line and
column, the column counted in code points, for people and report formats.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum

import msgspec


class Applicability(StrEnum):
    """How far a fix can be trusted."""

    SAFE = "safe"  # keeps behaviour: `--fix` applies it
    UNSAFE = "unsafe"  # may change behaviour: offered in the editor, never applied by `--fix`


class Severity(StrEnum):
    """How loud a finding is (mapped onto LSP, SARIF and GitHub levels by the front ends)."""

    ERROR = "error"
    WARNING = "warning"
    INFO = "info"
    HINT = "hint"


class Edit(msgspec.Struct, rename="camel", omit_defaults=True, frozen=True):
    """Replace source[start:end] (bytes) with `content` (empty: delete; start == end: insert)."""

    start: int
    end: int
    content: str = ""


class Fix(msgspec.Struct, rename="camel", omit_defaults=True, frozen=True):
    """Edits that resolve a finding, sorted and non-overlapping, with how safe they are."""

    edits: tuple[Edit, ...]
    applicability: Applicability = Applicability.SAFE
    title: str = ""

    @classmethod
    def safe(cls, title: str, *edits: Edit) -> Fix:
        """A fix that keeps behaviour."""
        return cls(tuple(sorted(edits, key=_edit_key)), Applicability.SAFE, title)

    @classmethod
    def unsafe(cls, title: str, *edits: Edit) -> Fix:
        """A fix that may change behaviour."""
        return cls(tuple(sorted(edits, key=_edit_key)), Applicability.UNSAFE, title)

    @property
    def is_safe(self) -> bool:
        """True when `--fix` may apply it."""
        return self.applicability is Applicability.SAFE

    @property
    def span(self) -> tuple[int, int]:
        """The byte span that the fix's edits touch."""
        return self.edits[0].start, max(e.end for e in self.edits)


class Location(msgspec.Struct, rename="camel", frozen=True):
    """A 1-based line and column (column in code points)."""

    line: int
    column: int


class TextRange(msgspec.Struct, rename="camel", frozen=True):
    """A byte span [start, end) of the source."""

    start: int
    end: int


class Finding(msgspec.Struct, rename="camel", omit_defaults=True, frozen=True):
    """One problem a rule found: rule id, message, severity, where, and maybe a fix."""

    code: str
    message: str
    range: TextRange
    location: Location
    end_location: Location
    severity: Severity = Severity.WARNING
    fix: Fix | None = None


def _edit_key(edit: Edit) -> tuple[int, int]:
    return edit.start, edit.end


def apply_edits(source: bytes, edits: Iterable[Edit]) -> bytes:
    """Apply non-overlapping edits to bytes (any order given; applied back to front)."""
    out = source
    last = len(source) + 1
    for edit in sorted(edits, key=_edit_key, reverse=True):
        if edit.end > last:
            raise ValueError(f"overlapping edits at byte {edit.start}")
        out = out[: edit.start] + edit.content.encode("utf-8", "surrogatepass") + out[edit.end :]
        last = edit.start
    return out


def apply_fixes(source: bytes, fixes: Iterable[Fix]) -> tuple[bytes, int]:
    """Apply fixes whose spans do not overlap an earlier one; the new bytes and how many applied."""
    chosen: list[Edit] = []
    taken: list[tuple[int, int]] = []
    applied = 0
    for fix in sorted(fixes, key=lambda f: f.span):
        lo, hi = fix.span
        if any((lo < t_hi and t_lo < hi) or lo == t_lo for t_lo, t_hi in taken):
            continue  # overlaps a fix already chosen: the next pass picks it up
        taken.append((lo, hi))
        chosen.extend(fix.edits)
        applied += 1
    return apply_edits(source, chosen), applied
