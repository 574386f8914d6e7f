"""`stagecoder review --merge`: the JSON or SARIF reports of a sharded run as one report.

Shards' reports (`--shard I/N`) say where each file they name stands in the whole walk
(`ShardInfo`); the merge puts every finding, error and warning back in that order, so the merged
report is the one an unsharded run writes (byte for byte, given the same checkout path and
version). Every shard 1..N must be there exactly once. Reports without shard information are
concatenated in the order given.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence
from typing import Any

import msgspec

from lsp_server.report import Format

SHARD_KEY = "stagecoderShard"


class MergeError(Exception):
    """The reports cannot be merged (a sentence for the user)."""


class Merged(msgspec.Struct, frozen=True):
    """The merged report, its format, and what it holds for the exit status."""

    format: Format
    text: str
    findings: int
    errors: int


def _decode(name: str, text: str) -> dict[str, Any]:
    try:
        value = msgspec.json.decode(text)
    except msgspec.DecodeError as exc:
        raise MergeError(f"{name}: not a JSON or SARIF report ({exc})") from None
    if not isinstance(value, dict):
        raise MergeError(f"{name}: not a JSON or SARIF report")
    return value


def _format_of(name: str, report: dict[str, Any]) -> Format:
    if isinstance(report.get("runs"), list):
        if len(report["runs"]) != 1 or not isinstance(report["runs"][0], dict):
            raise MergeError(f"{name}: a SARIF log from stagecoder has exactly one run")
        return Format.SARIF
    if all(isinstance(report.get(k), list) for k in ("findings", "errors", "warnings")):
        return Format.JSON
    raise MergeError(f"{name}: not a JSON or SARIF report from stagecoder review")


def _orders(names: Sequence[str], shards: list[Any]) -> dict[str, int] | None:
    """The merged place map of complete shard information; None when no report has any."""
    if all(s is None for s in shards):
        return None
    if any(not isinstance(s, dict) for s in shards):
        raise MergeError("cannot merge sharded and unsharded reports")
    counts = {s.get("count") for s in shards}
    if len(counts) != 1:
        raise MergeError(f"the reports come from runs of different shard counts: {counts}")
    count = counts.pop()
    seen: dict[int, str] = {}
    for name, s in zip(names, shards, strict=True):
        index = s.get("index")
        if index in seen:
            raise MergeError(f"{name} and {seen[index]} are both shard {index}/{count}")
        seen[index] = name
    missing = [i for i in range(1, int(count or 0) + 1) if i not in seen]
    if missing:
        raise MergeError(f"shard {missing[0]}/{count} is missing")
    order: dict[str, int] = {}
    for s in shards:
        order.update(s.get("order") or {})
    return order


def _sorted(items: list[tuple[int, dict[str, Any]]], order: dict[str, int] | None,
            place_of: Any) -> list[dict[str, Any]]:
    """Items in the walk's order (a stable sort keeps each file's own order)."""
    if order is None:
        return [item for _, item in items]
    return [item for _, item in sorted(
        items, key=lambda pair: (order.get(place_of(pair[1]), math.inf), pair[0]))]


def _json(names: Sequence[str], reports: list[dict[str, Any]]) -> Merged:
    order = _orders(names, [r.get("shard") for r in reports])
    out: dict[str, Any] = {}
    for key in ("findings", "errors", "warnings"):
        items = [(n, item) for n, item in enumerate(x for r in reports for x in r[key])]
        out[key] = _sorted(items, order, lambda item: item.get("filename"))
    text = msgspec.json.format(msgspec.json.encode(out), indent=2).decode() + "\n"
    return Merged(Format.JSON, text, len(out["findings"]), len(out["errors"]))


def _uri_of(item: dict[str, Any]) -> str | None:
    try:
        return item["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
    except (KeyError, IndexError, TypeError):
        return None


def _sarif(names: Sequence[str], reports: list[dict[str, Any]]) -> Merged:
    runs = [r["runs"][0] for r in reports]
    drivers = {msgspec.json.encode(run.get("tool")) for run in runs}
    if len(drivers) != 1:
        raise MergeError("the SARIF logs come from different stagecoder versions or rule sets")
    order = _orders(names, [(run.get("properties") or {}).get(SHARD_KEY) for run in runs])
    log = copy.deepcopy(reports[0])
    run = log["runs"][0]
    results = [(n, x) for n, x in enumerate(x for r in runs for x in r.get("results", []))]
    run["results"] = _sorted(results, order, _uri_of)
    notes = [x for r in runs for inv in r.get("invocations", [])
             for x in inv.get("toolExecutionNotifications", [])]
    errors = [(n, x) for n, x in enumerate(notes) if x.get("level") == "error"]
    others = [(n, x) for n, x in enumerate(notes) if x.get("level") != "error"]
    run["invocations"] = [{
        "executionSuccessful": all(inv.get("executionSuccessful", True)
                                   for r in runs for inv in r.get("invocations", [])),
        "toolExecutionNotifications": (_sorted(errors, order, _uri_of)
                                       + _sorted(others, order, _uri_of)),
    }]
    properties = run.get("properties") or {}
    properties.pop(SHARD_KEY, None)
    if properties:
        run["properties"] = properties
    else:
        run.pop("properties", None)
    text = msgspec.json.format(msgspec.json.encode(log), indent=2).decode() + "\n"
    return Merged(Format.SARIF, text, len(run["results"]), len(errors))


def merge_reports(reports: Sequence[tuple[str, str]]) -> Merged:
    """One report from (name, text) pairs of JSON or SARIF reports (MergeError otherwise)."""
    if not reports:
        raise MergeError("--merge needs the reports to merge")
    names = [name for name, _ in reports]
    decoded = [_decode(name, text) for name, text in reports]
    formats = {_format_of(name, report) for name, report in zip(names, decoded, strict=True)}
    if len(formats) != 1:
        raise MergeError("the reports are of different formats (JSON and SARIF)")
    fmt = formats.pop()
    return _json(names, decoded) if fmt is Format.JSON else _sarif(names, decoded)
