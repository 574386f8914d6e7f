"""Apply safe fixes to a file's text, and write the result back without losing anyone's edits.

Fixing runs in passes: apply every safe fix that does not overlap another, re-parse, re-check,
repeat (a fix can unlock the next). A pass whose result does not parse is thrown away. Writing
goes through a temporary file in the same directory and `os.replace`, after checking that the
file on disk is still byte-for-byte what was read: an edit made meanwhile (an editor, a
formatter) is never overwritten.
"""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from collections.abc import Callable
from dataclasses import dataclass

from analysis.documents.document import Document
from analysis.documents.reader import declared_encoding, read_bounded
from analysis.review.findings import Finding, apply_fixes

MAX_PASSES = 10


@dataclass(frozen=True, slots=True)
class FixOutcome:
    """The fixed text (None: nothing changed), fixes applied, findings left, and a note."""

    source: bytes | None
    applied: int
    findings: list[Finding]
    note: str | None = None


def fix_document(
    document: Document, findings: list[Finding], check: Callable[[Document], list[Finding]]
) -> FixOutcome:
    """Apply safe fixes pass by pass; `check` re-analyzes a document."""
    if document.tree is None:
        return FixOutcome(None, 0, findings)
    if document.has_errors():
        return FixOutcome(None, 0, findings, "not fixed: the file has syntax errors")
    if document.decode_errors:
        return FixOutcome(None, 0, findings, "not fixed: the file is not valid UTF-8")
    encoding = declared_encoding(document.source) if document.language == "python" else None
    if encoding not in (None, "utf-8"):  # it was read through its codec; fixes write UTF-8
        return FixOutcome(None, 0, findings,
                          f"not fixed: the file declares the {encoding} encoding")
    source, applied, note = document.source, 0, None
    current, doc = findings, document
    for _ in range(MAX_PASSES):
        safe = [f.fix for f in current if f.fix is not None and f.fix.is_safe]
        if not safe:
            break
        new_source, count = apply_fixes(source, safe)
        new_doc = Document.from_bytes(doc.uri, new_source, doc.language_id or None)
        if new_doc.has_errors():
            note = "some fixes were not applied: they would have broken the syntax"
            break
        source, doc, applied = new_source, new_doc, applied + count
        current = check(doc)
    return FixOutcome(source if applied else None, applied, current, note)


def file_identity(path: str) -> tuple[int, int, int]:
    """(inode, size, mtime_ns) of a file, for noticing that it changed."""
    st = os.stat(path)
    return st.st_ino, st.st_size, st.st_mtime_ns


def write_if_unchanged(
    path: str, new: bytes, original: bytes, identity: tuple[int, int, int]
) -> str | None:
    """Replace the file with `new` if it still holds `original`; None, or why it was not written."""
    target = os.path.realpath(path)  # write through a symlink, do not replace the link
    directory = os.path.dirname(target) or "."
    try:
        mode = stat.S_IMODE(os.stat(target).st_mode)
        fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(target)}.", suffix=".tmp",
                                   dir=directory)
    except OSError as exc:
        return f"not fixed: cannot write next to it ({exc.strerror or exc})"
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(new)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, mode)
        # Re-read through the bounded reader: a file swapped for a FIFO or a device, or grown
        # past what was read, is "changed", never read without end.
        if file_identity(target) != identity or \
                read_bounded(target, len(original)).data != original:
            os.unlink(tmp)
            return "not fixed: the file changed on disk during the run (run again)"
        os.replace(tmp, target)
    except BaseException as exc:  # whatever stops the write, leave no temporary file behind
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if not isinstance(exc, OSError):
            raise
        return f"not fixed: writing failed ({exc.strerror or exc})"
    return None
