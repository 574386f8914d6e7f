"""Staged checks on a predicted edit: each stage drops or repairs a bad edit; good ones pass."""

from __future__ import annotations

from analysis.context.builder import ContextBuilder
from analysis.documents.document import Document
from analysis.scope.names import KnownNames
from analysis.settings import StageSettings
from generation.completion.pipeline import prepare_at
from generation.next_edit.checks import ByteEdit, CheckedEdit, check_edit

SOURCE = ("import math\n\n\ndef area(radius):\n    return math.pi * radius * radius\n\n\n"
          "def perimeter(r):\n    return 2 * math.pi * r\n")


def check(source: str, old: str, new: str, settings: StageSettings | None = None,
          language: str = "python", uri: str = "file:///w/shapes.py") -> CheckedEdit:
    doc = Document(uri, source, language, 1)
    start = source.encode().index(old.encode())
    end = start + len(old.encode())
    line_start = source.encode().rfind(b"\n", 0, start) + 1
    _, inputs = prepare_at(doc, line_start, ContextBuilder(), KnownNames())
    assert inputs is not None
    return check_edit(inputs, ByteEdit(start, end, new), settings or StageSettings())


def test_a_good_edit_passes_every_stage_unchanged() -> None:
    out = check(SOURCE, "def perimeter(r):\n    return 2 * math.pi * r",
                "def perimeter(radius):\n    return 2 * math.pi * radius")
    assert out.edit is not None and out.reason == ""
    assert out.edit.text == "radius):\n    return 2 * math.pi * radius"  # trimmed to words
    assert SOURCE.encode()[out.edit.start:out.edit.end] == b"r):\n    return 2 * math.pi * r"
    assert [d.stage for d in out.decisions] == ["structure", "naming", "boundary"]


def test_an_edit_that_breaks_the_parse_is_dropped() -> None:
    out = check(SOURCE, "def perimeter(r):", "def perimeter(r:")
    assert out.edit is None
    assert out.reason.startswith("structure: the edit breaks the parse")


def test_an_edit_with_an_unknown_name_is_dropped() -> None:
    out = check(SOURCE, "2 * math.pi * r", "2 * math.pi * diameter_in_furlongs")
    assert out.edit is None
    assert out.reason == "naming: unknown diameter_in_furlongs"


def test_a_misspelled_name_is_repaired_like_in_completions() -> None:
    out = check(SOURCE, "return 2 * math.pi * r", "return 2 * math.pi * r + radis")
    # `radis` is not visible in perimeter (radius is area's parameter): dropped, not repaired.
    assert out.edit is None and "radis" in out.reason
    local = SOURCE.replace("def perimeter(r):", "def perimeter(r, offset):")
    fixed = check(local, "return 2 * math.pi * r", "return 2 * math.pi * r + ofset")
    assert fixed.edit is not None and fixed.edit.text.endswith("+ offset")


def test_an_edit_that_re_types_what_is_there_is_dropped() -> None:
    same = check(SOURCE, "def perimeter(r):", "def perimeter(r):")
    assert same.edit is None and same.reason == "retype: the edit re-types what is there"
    line = "    return 2 * math.pi * r\n"
    at = SOURCE.encode().index(line.encode()) + len(line)  # right after that line
    doc = Document("file:///w/shapes.py", SOURCE + "\n", "python", 1)
    _, inputs = prepare_at(doc, at, ContextBuilder(), KnownNames())
    assert inputs is not None
    repeat = check_edit(inputs, ByteEdit(at, at, line), StageSettings())
    assert repeat.edit is None and repeat.reason == "retype: the edit repeats the text beside it"


def test_a_written_body_gets_the_boundary_guard() -> None:
    source = "def first(values):\n    pass\n"
    out = check(source, "    pass", "    return values[0]")
    assert out.edit is not None
    assert "if not values:" in out.edit.text and "return values[0]" in out.edit.text
    assert any(d.stage == "boundary" and d.action == "guarded" for d in out.decisions)
    off = check(source, "    pass", "    return values[0]", StageSettings(boundary_checks=False))
    assert off.edit is not None and off.edit.text == "return values[0]"


def test_plain_text_edits_skip_the_syntax_stages() -> None:
    out = check("Meeting notes\nbudget: 10\n", "10", "12", language="plaintext",
                uri="file:///w/notes.txt")
    assert out.edit is not None and out.edit.text == "12"
