"""All conversions between LSP types and the engine's types live here."""

from __future__ import annotations

from typing import Any

from lsprotocol import types

from analysis.checks import rule_for
from analysis.document import Document, Encoding
from analysis.findings import Finding, Fix, Severity


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
    """An LSP range for a byte span."""
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


def diagnostic_fix(diagnostic: types.Diagnostic) -> DiagnosticFix | None:
    """(version, title, safe, edits) from a diagnostic's `data`, or None when it has no fix."""
    data = diagnostic.data
    if diagnostic.source != DIAGNOSTIC_SOURCE or not isinstance(data, dict):
        return None
    fix: Any = data.get("fix")
    try:
        edits = [types.TextEdit(
            range=types.Range(start=types.Position(line=int(a), character=int(b)),
                              end=types.Position(line=int(c), character=int(d))),
            new_text=str(text)) for a, b, c, d, text in fix["edits"]]
        return int(data["version"]), str(fix["title"]), bool(fix["safe"]), edits
    except (KeyError, TypeError, ValueError):
        return None  # not ours, or mangled by the client: no action rather than a wrong one


def edits_to_workspace_edit(uri: str, edits: list[types.TextEdit]) -> types.WorkspaceEdit:
    """A workspace edit changing one document."""
    return types.WorkspaceEdit(changes={uri: edits})
