"""Staged checks on a predicted edit: the completion stages, run on the edited lines.

An edit (bytes [start, end) of the document replaced by `text`) is judged on the whole lines it
touches, so that a change inside a name or a call is read as the line it makes:

1. **re-typing**: an edit whose text is what is already there, or an insertion that repeats the
   text right beside it, is dropped;
2. **structure**: the document with the lines replaced must parse with no new error node around
   them (analysis/documents/trial.py, the same trial parser as completions, with a replaced span);
3. **naming**: every name the new lines use must resolve (generation/completion/stages/naming.py:
   the file's names, its imports, builtins, the workspace index); a close misspelling is
   repaired, an unknown name drops the edit;
4. **boundary**: where the edit writes a function body, the boundary stage adds guard clauses
   as for completions (kept only if the guarded lines still parse).

The outcome is the final edit (after repairs, again as small as its changed characters) and
each stage's decision, or no edit and the reason it was dropped.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from analysis.documents.trial import TrialParser
from analysis.settings import StageSettings
from generation.completion.pipeline import Decision, StageInputs
from generation.completion.stages import boundary, naming
from generation.next_edit.diffing import minimal_edits


@dataclass(frozen=True, slots=True)
class ByteEdit:
    """Bytes [start, end) of the document replaced by `text`."""

    start: int
    end: int
    text: str


@dataclass(slots=True)
class CheckedEdit:
    """An edit after the stages: the edit to show (None: dropped) and what each stage did."""

    edit: ByteEdit | None
    decisions: list[Decision] = field(default_factory=list)

    @property
    def reason(self) -> str:
        """Why the edit was dropped (the last decision), or ""."""
        return "" if self.edit is not None or not self.decisions else (
            f"{self.decisions[-1].stage}: {self.decisions[-1].detail}")


def _lines_around(src: bytes, start: int, end: int) -> tuple[int, int]:
    """The whole lines holding [start, end), without the last line's break."""
    lo = src.rfind(b"\n", 0, start) + 1
    nl = src.find(b"\n", end)
    hi = len(src) if nl == -1 else nl
    if hi < end:
        hi = end
    return lo, hi


def check_edit(inputs: StageInputs, edit: ByteEdit, settings: StageSettings) -> CheckedEdit:
    """Run the stages on `edit`; `inputs` are the stage inputs at the start of the edit's
    first line (`prepare_at` there), whose names, scopes and convention the checks use."""
    doc = inputs.doc
    src = doc.source
    out = CheckedEdit(None)
    data = edit.text.encode("utf-8", "surrogatepass")
    if src[edit.start:edit.end] == data:
        out.decisions.append(Decision("retype", "dropped", "the edit re-types what is there"))
        return out
    if edit.start == edit.end and data and (src[edit.end:edit.end + len(data)] == data
                                            or src[max(0, edit.start - len(data)):edit.start]
                                            == data):
        out.decisions.append(Decision("retype", "dropped", "the edit repeats the text beside it"))
        return out
    lo, hi = _lines_around(src, edit.start, edit.end)
    head = src[lo:edit.start].decode("utf-8", "surrogatepass")
    tail = src[edit.end:hi].decode("utf-8", "surrogatepass")
    lines = head + edit.text + tail
    trials = TrialParser(doc, lo, hi)
    trial = trials.trial(lines)
    if not trial.ok:
        new = trial.errors_after - trial.errors_before
        detail = (f"the edit breaks the parse ({max(new, 0)} new error nodes, "
                  f"{trial.errors_inside} inside the edit)")
        out.decisions.append(Decision("structure", "dropped", detail))
        return out
    out.decisions.append(Decision("structure", "kept", "the edited lines parse"))
    if settings.naming and trial.tree is not None:
        named = naming.run(lines, lo, trial, inputs.known, inputs.convention, inputs.in_scope,
                           inputs.members_of, doc.language, inputs.workspace_names)
        if named.unresolved:
            out.decisions.append(Decision("naming", "dropped", named.detail))
            return out
        out.decisions.append(Decision("naming", named.decision, named.detail))
        if named.text != lines:
            retrial = trials.trial(named.text)
            if retrial.ok:
                lines, trial = named.text, retrial
    if settings.boundary_checks and trial.tree is not None:
        guarded = boundary.run(doc, inputs.hole, lines, trial)
        if guarded.text != lines:
            retrial = trials.trial(guarded.text)
            if retrial.ok:
                lines = guarded.text
                out.decisions.append(Decision("boundary", guarded.decision, guarded.detail))
            else:
                out.decisions.append(Decision("boundary", "reverted", "guard did not parse"))
        else:
            out.decisions.append(Decision("boundary", guarded.decision, guarded.detail))
    old_lines = src[lo:hi].decode("utf-8", "surrogatepass")
    pieces = minimal_edits(old_lines, lines)
    if not pieces:
        out.decisions.append(Decision("retype", "dropped", "nothing left to change"))
        return out
    first, last = pieces[0], pieces[-1]
    start = lo + len(old_lines[:first.start].encode("utf-8", "surrogatepass"))
    end = lo + len(old_lines[:last.end].encode("utf-8", "surrogatepass"))
    # One edit from the first change to the last (the stages may have changed several places).
    grown = len(lines) - len(old_lines)
    text = lines[first.start:last.end + grown]
    out.edit = ByteEdit(start, end, text)
    return out
