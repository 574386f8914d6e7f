"""The GitHub format: workflow commands that GitHub Actions shows as annotations on the diff."""

from __future__ import annotations

from collections.abc import Sequence

from analysis.review.checks import rule_for
from analysis.review.findings import Severity
from analysis.review.run import FileResult
from lsp_server.report import Explanations

_LEVEL = {Severity.ERROR: "error", Severity.WARNING: "warning", Severity.INFO: "notice",
          Severity.HINT: "notice"}


def _data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _property(text: str) -> str:
    return _data(text).replace(":", "%3A").replace(",", "%2C")


def render(results: Sequence[FileResult], explanations: Explanations, **_: object) -> str:
    """One `::level file=...,line=...::message` command per finding and per file message."""
    lines: list[str] = []
    for result in results:
        if result.problem:
            lines.append(f"::error file={_property(result.path)},title=stagecoder::"
                         f"{_data(result.problem)}")
        lines.extend(f"::warning file={_property(result.path)},title=stagecoder::{_data(note)}"
                     for note in result.notes)
        for i, f in enumerate(result.findings):
            rule = rule_for(f.code)
            title = f"{f.code} {rule.name}" if rule else f.code
            message = f.message
            note = explanations.get((result.path, i))
            if note and note.explanation:
                message += "\n\n" + note.explanation.strip()
            props = (f"file={_property(result.path)},line={f.location.line},"
                     f"endLine={f.end_location.line},title={_property(title)}")
            if f.location.line == f.end_location.line:  # columns only make sense on one line
                props = (f"file={_property(result.path)},line={f.location.line},"
                         f"col={f.location.column},endColumn={f.end_location.column},"
                         f"title={_property(title)}")
            lines.append(f"::{_LEVEL[f.severity]} {props}::{_data(message)}")
    return "".join(line + "\n" for line in lines)
