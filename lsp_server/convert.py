"""All conversions between LSP types and the engine's types live here.

Every range that leaves the server is made here from byte offsets that are first clamped into
the document and ordered, so no diagnostic, quick fix or edit can point outside its document;
ranges that come back from the client (a quick fix stored in a diagnostic's `data`) are checked
against the document before they are used.
"""

from __future__ import annotations

from typing import Any

from lsprotocol import types

from analysis.documents.document import Document, Encoding
from analysis.review.checks import rule_for
from analysis.review.findings import Finding, Fix, Severity


def lsp_range_to_bytes(
    doc: Document, rng: types.Range, encoding: Encoding
) -> tuple[int, int, bool]:
    """Byte span of an LSP range and whether any end was clamped into the document."""
    start, c1 = doc.offset_at(rng.start.line, rng.start.character, encoding)
    end, c2 = doc.offset_at(rng.end.line, rng.end.character, encoding)
    return min(start, end), max(start, end), c1 or c2


def offset_to_position(doc: Document, offset: int, encoding: Encoding) -> types.Position:
    """An LSP position for a byte offset."""
    pos = doc.position_at(offset, encoding)
    return types.Position(line=pos.line, character=pos.character)


def bytes_to_lsp_range(doc: Document, start: int, end: int, encoding: Encoding) -> types.Range:
    """An LSP range for a byte span, clamped into the document (a stale or reversed span
    becomes the nearest range inside it rather than one the client would reject)."""
    size = len(doc.source)
    start, end = min(max(start, 0), size), min(max(end, 0), size)
    if end < start:
        start, end = end, start
    return types.Range(
        start=offset_to_position(doc, start, encoding),
        end=offset_to_position(doc, end, encoding),
    )


# --------------------------------------------------------------------------- review findings

_SEVERITY = {
    Severity.ERROR: types.DiagnosticSeverity.Error,
    Severity.WARNING: types.DiagnosticSeverity.Warning,
    Severity.INFO: types.DiagnosticSeverity.Information,
    Severity.HINT: types.DiagnosticSeverity.Hint,
}
DIAGNOSTIC_SOURCE = "stagecoder"


def range_inside(doc: Document, rng: types.Range, encoding: Encoding) -> bool:
    """True when both ends of an LSP range are real positions in the document, start first."""
    start, c1 = doc.offset_at(rng.start.line, rng.start.character, encoding)
    end, c2 = doc.offset_at(rng.end.line, rng.end.character, encoding)
    return not (c1 or c2) and start <= end


def fix_to_text_edits(doc: Document, fix: Fix, encoding: Encoding) -> list[types.TextEdit]:
    """LSP text edits for a fix's byte-offset edits."""
    return [types.TextEdit(range=bytes_to_lsp_range(doc, e.start, e.end, encoding),
                           new_text=e.content) for e in fix.edits]


def finding_to_diagnostic(doc: Document, finding: Finding, encoding: Encoding) -> types.Diagnostic:
    """A diagnostic for a finding; its fix travels in `data` as ready LSP edits.

    `data` = {"version": document version, "fix": {"title", "safe", "edits": [[l1, c1, l2, c2,
    text], ...]}}: a code action turns it into a WorkspaceEdit without re-running the check.
    """
    rule = rule_for(finding.code)
    data = None
    if finding.fix is not None:
        edits = [[e.range.start.line, e.range.start.character, e.range.end.line,
                  e.range.end.character, e.new_text]
                 for e in fix_to_text_edits(doc, finding.fix, encoding)]
        data = {"version": doc.version, "fix": {
            "title": finding.fix.title, "safe": finding.fix.is_safe, "edits": edits}}
    return types.Diagnostic(
        range=bytes_to_lsp_range(doc, finding.range.start, finding.range.end, encoding),
        message=finding.message,
        severity=_SEVERITY[finding.severity],
        code=finding.code,
        source=DIAGNOSTIC_SOURCE,
        tags=[types.DiagnosticTag.Unnecessary] if rule is not None and rule.unnecessary else None,
        data=data,
    )


DiagnosticFix = tuple[int, str, bool, list[types.TextEdit]]


def diagnostic_fix(diagnostic: types.Diagnostic, doc: Document | None = None,
                   encoding: Encoding = "utf-16") -> DiagnosticFix | None:
    """(version, title, safe, edits) from a diagnostic's `data`, or None when it has no fix
    (or, given the document, when an edit's range is not inside it)."""
    data = diagnostic.data
    if diagnostic.source != DIAGNOSTIC_SOURCE or not isinstance(data, dict):
        return None
    fix: Any = data.get("fix")
    try:
        edits = [types.TextEdit(
            range=types.Range(start=types.Position(line=int(a), character=int(b)),
                              end=types.Position(line=int(c), character=int(d))),
            new_text=str(text)) for a, b, c, d, text in fix["edits"]]
        found = int(data["version"]), str(fix["title"]), bool(fix["safe"]), edits
    except (KeyError, TypeError, ValueError):
        return None  # not ours, or mangled by the client: no action rather than a wrong one
    if doc is not None and not all(range_inside(doc, e.range, encoding) for e in edits):
        return None
    return found


def edits_to_workspace_edit(uri: str, edits: list[types.TextEdit]) -> types.WorkspaceEdit:
    """A workspace edit changing one document."""
    return types.WorkspaceEdit(changes={uri: edits})
