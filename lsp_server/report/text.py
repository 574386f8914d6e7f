"""The text format: `path:line:col: CODE message`, one finding a line, then a summary line."""

from __future__ import annotations

from collections.abc import Sequence

from analysis.review.run import FileResult
from lsp_server.report import Explanations


def render(results: Sequence[FileResult], explanations: Explanations, **_: object) -> str:
    """Lines for people and for editors' quickfix lists (`errorformat` %f:%l:%c: %m)."""
    lines: list[str] = []
    count = fixable = fixed = 0
    files = 0
    for result in results:
        fixed += result.fixed
        files += bool(result.findings)
        for i, f in enumerate(result.findings):
            count += 1
            fixable += bool(f.fix and f.fix.is_safe)
            lines.append(f"{result.path}:{f.location.line}:{f.location.column}: {f.code} "
                         f"{f.message}")
            note = explanations.get((result.path, i))
            if note and note.explanation:
                lines.extend("    " + part for part in note.explanation.strip().splitlines())
            if note and note.suggestion:
                lines.append("    suggested rewrite:")
                lines.extend("        " + part for part in note.suggestion.rstrip().splitlines())
    lines.append(_summary(count, files, fixable, fixed))
    return "\n".join(lines) + "\n"


def _summary(count: int, files: int, fixable: int, fixed: int) -> str:
    parts = []
    if fixed:
        parts.append(f"Fixed {fixed} finding{'s' if fixed != 1 else ''}.")
    if count == 0:
        parts.append("No findings." if not fixed else "No findings remain.")
    else:
        text = f"Found {count} finding{'s' if count != 1 else ''} in {files} " \
               f"file{'s' if files != 1 else ''}"
        if fixable:
            text += f" ({fixable} fixable with --fix)"
        parts.append(text + ".")
    return " ".join(parts)
