"""The SARIF 2.1.0 format: one run, every rule described, results with regions and fixes.

Columns are counted in code points (`columnKind: unicodeCodePoints`); fix regions use byte
offsets, which SARIF allows alongside line/column regions. Per-file messages become
`toolExecutionNotifications` in the invocation, each with the file's location: files that could
not be reviewed are level error (and make `executionSuccessful` false), remarks such as invalid
UTF-8 are level warning. A shard's log (`--shard I/N`) has `properties.stagecoderShard` in its
run (see `lsp_server.report.ShardInfo`, keyed by artifact URI); `--merge` takes it out again.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from urllib.parse import quote

import msgspec

from analysis.review.checks import all_rules
from analysis.review.findings import Finding, Severity
from analysis.review.run import FileResult
from lsp_server import __version__
from lsp_server.report import Explanations, ShardInfo

SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
_LEVEL = {Severity.ERROR: "error", Severity.WARNING: "warning", Severity.INFO: "note",
          Severity.HINT: "note"}


def render(results: Sequence[FileResult], explanations: Explanations, *,
           root_uri: str | None = None, version: str = __version__,
           shard: ShardInfo | None = None, **_: object) -> str:
    """A SARIF log (JSON text). `root_uri` (file:///.../) anchors the relative paths."""
    rules = list(all_rules())
    index = {rule.code: i for i, rule in enumerate(rules)}
    sarif_results = [
        _result(result.path, f, index, explanations.get((result.path, i)))
        for result in results for i, f in enumerate(result.findings)
    ]
    notifications = [_notification(r.path, "error", r.problem) for r in results if r.problem]
    notifications += [_notification(r.path, "warning", note) for r in results for note in r.notes]
    run: dict[str, Any] = {
        "tool": {"driver": {
            "name": "stagecoder",
            "version": version,
            "rules": [_rule(rule) for rule in rules],
        }},
        "columnKind": "unicodeCodePoints",
        "invocations": [{
            "executionSuccessful": not any(r.problem for r in results),
            "toolExecutionNotifications": notifications,
        }],
        "results": sarif_results,
    }
    if root_uri:
        run["originalUriBaseIds"] = {"%SRCROOT%": {"uri": root_uri.rstrip("/") + "/"}}
    if shard is not None:
        named = {r.path for r in results if r.findings or r.problem or r.notes}
        order = {_artifact(path)["uri"]: place for path, place in shard.order.items()
                 if path in named}
        run["properties"] = {"stagecoderShard": msgspec.to_builtins(
            msgspec.structs.replace(shard, order=order))}
    log = {"$schema": SCHEMA, "version": "2.1.0", "runs": [run]}
    return msgspec.json.format(msgspec.json.encode(log), indent=2).decode() + "\n"


def _rule(rule: Any) -> dict[str, Any]:
    return {
        "id": rule.code,
        "name": rule.name,
        "shortDescription": {"text": rule.summary},
        "fullDescription": {"text": rule.doc()},
        "help": {"text": rule.doc(), "markdown": rule.doc()},
        "defaultConfiguration": {"level": _LEVEL[rule.severity]},
        "properties": {"fixSafety": rule.fix_safety, "languages": list(rule.languages),
                       "preview": rule.preview},
    }


def _artifact(path: str) -> dict[str, str]:
    posix = path.replace("\\", "/")
    if posix.startswith("/"):
        return {"uri": "file://" + quote(posix)}
    return {"uri": quote(posix), "uriBaseId": "%SRCROOT%"}


def _notification(path: str, level: str, text: str) -> dict[str, Any]:
    return {"level": level, "message": {"text": text},
            "locations": [{"physicalLocation": {"artifactLocation": _artifact(path)}}]}


def _result(path: str, f: Finding, index: dict[str, int], note: Any) -> dict[str, Any]:
    out: dict[str, Any] = {
        "ruleId": f.code,
        "level": _LEVEL[f.severity],
        "message": {"text": f.message},
        "locations": [{"physicalLocation": {
            "artifactLocation": _artifact(path),
            "region": {
                "startLine": f.location.line, "startColumn": f.location.column,
                "endLine": f.end_location.line, "endColumn": f.end_location.column,
            },
        }}],
    }
    if f.code in index:
        out["ruleIndex"] = index[f.code]
    if f.fix is not None:
        out["fixes"] = [{
            "description": {"text": f.fix.title or "Fix"},
            "artifactChanges": [{
                "artifactLocation": _artifact(path),
                "replacements": [{
                    "deletedRegion": {"byteOffset": e.start, "byteLength": e.end - e.start},
                    "insertedContent": {"text": e.content},
                } for e in f.fix.edits],
            }],
        }]
        out["properties"] = {"fixApplicability": f.fix.applicability.value}
    if note is not None:
        props = out.setdefault("properties", {})
        props.update({k: v for k, v in (("explanation", note.explanation),
                                        ("suggestedRewrite", note.suggestion)) if v})
    return out
