"""The JSON format: an array of findings, each with file, positions, fix and any explanation."""

from __future__ import annotations

from collections.abc import Sequence

import msgspec

from analysis.findings import Fix, Location, Severity
from analysis.review import FileResult
from lsp_server.report import Explanations


class JsonFinding(msgspec.Struct, rename="camel", frozen=True):
    """One finding as the JSON report shows it (fix edits in UTF-8 byte offsets)."""

    code: str
    message: str
    severity: Severity
    filename: str
    location: Location
    end_location: Location
    fix: Fix | None
    explanation: str | None = None
    suggestion: str | None = None


def render(results: Sequence[FileResult], explanations: Explanations, **_: object) -> str:
    """A JSON array, pretty-printed, in the order of the results."""
    out: list[JsonFinding] = []
    for result in results:
        for i, f in enumerate(result.findings):
            note = explanations.get((result.path, i))
            out.append(JsonFinding(
                f.code, f.message, f.severity, result.path, f.location, f.end_location, f.fix,
                note.explanation if note else None, note.suggestion if note else None,
            ))
    return msgspec.json.format(msgspec.json.encode(out), indent=2).decode() + "\n"
