"""Snapshots of what `stagecoder review` prints in each format, and SARIF schema validation.

Run with STAGECODER_UPDATE_SNAPSHOTS=1 to rewrite the snapshot files (then review them by eye).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import jsonschema
import pytest

from analysis.review.run import FileResult, Project, review_paths
from lsp_server.report import Explanation, Format, render

FIXTURES = Path(__file__).parents[1] / "fixtures" / "report"
PROJECT = FIXTURES / "project"
SCHEMA = FIXTURES / "sarif-schema-2.1.0.json"  # vendored OASIS schema (see its .NOTE.md)
SNAPSHOTS = {Format.TEXT: "text.txt", Format.JSON: "json.json", Format.SARIF: "sarif.json",
             Format.GITHUB: "github.txt"}


@pytest.fixture(scope="module")
def results() -> list[FileResult]:
    cwd = os.getcwd()
    os.chdir(PROJECT)
    try:
        found = review_paths(["."], Project(PROJECT), jobs=1)
    finally:
        os.chdir(cwd)
    return [*found, FileResult("missing.py", problem="missing.py: no such file or directory")]


def _render(fmt: Format, results: list[FileResult]) -> str:
    options = {"root_uri": "file:///project/", "version": "0.0.0-test"} \
        if fmt is Format.SARIF else {}
    return render(fmt, results, **options)


@pytest.mark.parametrize("fmt", list(Format))
def test_snapshot(fmt: Format, results: list[FileResult]) -> None:
    snapshot = FIXTURES / SNAPSHOTS[fmt]
    actual = _render(fmt, results)
    if os.environ.get("STAGECODER_UPDATE_SNAPSHOTS"):
        snapshot.write_text(actual, encoding="utf-8")
    assert actual == snapshot.read_text(encoding="utf-8")


def test_text_lines_have_the_documented_shape(results: list[FileResult]) -> None:
    lines = _render(Format.TEXT, results).splitlines()
    assert lines[0] == "app.py:1:22: SC303 default value `{}` of `cache` is created once and " \
                       "shared between calls"
    assert lines[-1].startswith("Found ") and "fixable with --fix" in lines[-1]


def test_sarif_validates_against_the_2_1_0_schema(results: list[FileResult]) -> None:
    schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
    log = json.loads(_render(Format.SARIF, results))
    validator = jsonschema.validators.validator_for(schema)(schema)
    errors = sorted(validator.iter_errors(log), key=lambda e: list(e.path))
    assert [f"{list(e.path)}: {e.message}" for e in errors] == []
    run = log["runs"][0]
    assert run["invocations"][0]["executionSuccessful"] is False  # missing.py
    notes = run["invocations"][0]["toolExecutionNotifications"]
    assert [(n["level"], n["locations"][0]["physicalLocation"]["artifactLocation"]["uri"])
            for n in notes] == [("error", "missing.py"), ("warning", "latin1.py")]
    rule_ids = {r["id"] for r in run["tool"]["driver"]["rules"]}
    assert {r["ruleId"] for r in run["results"]} <= rule_ids
    spaced = [r for r in run["results"]
              if "spaced" in r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]]
    assert spaced[0]["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] == \
        "spaced%20name.ts"


def test_explanations_appear_in_text_json_and_sarif(results: list[FileResult]) -> None:
    note = {("app.py", 0): Explanation("Defaults are shared.", "def load(path, cache=None):")}
    text = render(Format.TEXT, results, note)
    assert "    Defaults are shared.\n    suggested rewrite:\n        def load(path, cache=None):" \
        in text
    entries = json.loads(render(Format.JSON, results, note))["findings"]
    assert entries[0]["explanation"] == "Defaults are shared."
    assert entries[1]["explanation"] is None
    sarif = json.loads(render(Format.SARIF, results, note))
    assert sarif["runs"][0]["results"][0]["properties"]["explanation"] == "Defaults are shared."


def test_json_carries_the_per_file_errors_and_warnings(results: list[FileResult]) -> None:
    report = json.loads(_render(Format.JSON, results))
    assert report["errors"] == [{"filename": "missing.py",
                                 "message": "missing.py: no such file or directory"}]
    assert report["warnings"] == [{"filename": "latin1.py", "message": "latin1.py: invalid "
                                   "UTF-8, undecodable bytes shown as U+FFFD"}]


def test_github_escapes_message_and_properties() -> None:
    from analysis.review.findings import Finding, Location, TextRange

    finding = Finding("SC305", "50% off,\nnext: line", TextRange(0, 1), Location(1, 1),
                      Location(1, 2))
    out = render(Format.GITHUB, [FileResult("a,b:c.py", [finding])])
    assert out == ("::warning file=a%2Cb%3Ac.py,line=1,col=1,endColumn=2,"
                   "title=SC305 is-literal::50%25 off,%0Anext: line\n")
