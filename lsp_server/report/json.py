"""The JSON format: the findings, each with file, positions, fix and any explanation, plus the
per-file errors (files not reviewed: exit status 2) and warnings (files reviewed with a remark).

    {"findings": [{"code", "message", "severity", "filename", "location", "endLocation", "fix",
                   "explanation", "suggestion"}, ...],
     "errors": [{"filename", "message"}, ...], "warnings": [{"filename", "message"}, ...]}

A shard's report (`--shard I/N`) also has `"shard": {"index", "count", "order"}` (see
`lsp_server.report.ShardInfo`); `--merge` takes it out again.
"""

from __future__ import annotations

from collections.abc import Sequence

import msgspec

from analysis.review.findings import Fix, Location, Severity
from analysis.review.run import FileResult
from lsp_server.report import Explanations, ShardInfo


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


class JsonFileMessage(msgspec.Struct, rename="camel", frozen=True):
    """An error or warning about one file: the sentence stderr shows, and the file it is about."""

    filename: str
    message: str


class JsonReport(msgspec.Struct, rename="camel", frozen=True, omit_defaults=True):
    """The whole report: findings, then what went wrong (errors) or deserves a note (warnings)."""

    findings: list[JsonFinding]
    errors: list[JsonFileMessage]
    warnings: list[JsonFileMessage]
    shard: ShardInfo | None = None  # only in a shard's report


def render(results: Sequence[FileResult], explanations: Explanations, *,
           shard: ShardInfo | None = None, **_: object) -> str:
    """A JSON object, pretty-printed, everything in the order of the results."""
    findings: list[JsonFinding] = []
    errors: list[JsonFileMessage] = []
    warnings: list[JsonFileMessage] = []
    for result in results:
        if result.problem:
            errors.append(JsonFileMessage(result.path, result.problem))
        warnings.extend(JsonFileMessage(result.path, note) for note in result.notes)
        for i, f in enumerate(result.findings):
            note = explanations.get((result.path, i))
            findings.append(JsonFinding(
                f.code, f.message, f.severity, result.path, f.location, f.end_location, f.fix,
                note.explanation if note else None, note.suggestion if note else None,
            ))
    if shard is not None:  # the places of the files this report names, by filename
        named = {f.filename for f in findings} | {m.filename for m in (*errors, *warnings)}
        shard = msgspec.structs.replace(
            shard, order={k: v for k, v in shard.order.items() if k in named})
    report = JsonReport(findings, errors, warnings, shard)
    return msgspec.json.format(msgspec.json.encode(report), indent=2).decode() + "\n"
