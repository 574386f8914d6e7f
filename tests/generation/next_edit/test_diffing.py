"""Diffing the model's rewrite against the region: minimal edits, line by line (difflib)."""

from __future__ import annotations

from generation.next_edit.diffing import TextEdit, apply, minimal_edits, to_bytes

REGION = "def area(r):\n    return 3.14 * r * r\n\n\nprint(area(2))\n"


def test_equal_text_has_no_edit() -> None:
    assert minimal_edits(REGION, REGION) == []


def test_a_change_inside_a_line_is_only_the_characters_that_differ() -> None:
    new = REGION.replace("area(2)", "area(radius=2)")
    edits = minimal_edits(REGION, new)
    at = REGION.index("2))")
    assert edits == [TextEdit(at, at, "radius=")]
    assert apply(REGION, edits) == new


def test_a_run_of_changed_lines_is_one_edit_from_first_to_last_difference() -> None:
    new = REGION.replace("def area(r)", "def area(radius)").replace("r * r", "radius * radius")
    edits = minimal_edits(REGION, new)
    assert len(edits) == 1 and apply(REGION, edits) == new
    assert REGION[edits[0].start:edits[0].end] == "r):\n    return 3.14 * r * r"
    assert edits[0].text == "radius):\n    return 3.14 * radius * radius"


def test_inserted_and_deleted_lines_are_whole_lines() -> None:
    new = REGION.replace("\n\n\nprint", "\n\ndef perimeter(r):\n    return 2 * 3.14 * r\n\n\nprint")
    edits = minimal_edits(REGION, new)
    assert len(edits) == 1 and apply(REGION, edits) == new
    assert edits[0].text.count("def perimeter") == 1 and edits[0].start == edits[0].end
    gone = REGION.replace("    return 3.14 * r * r\n", "")
    deletion = minimal_edits(REGION, gone)
    head = len("def area(r):\n")
    assert deletion == [TextEdit(head, head + len("    return 3.14 * r * r\n"), "")]


def test_two_separate_changes_stay_two_edits_far_apart_lines_never_joined() -> None:
    new = REGION.replace("def area", "def surface").replace("print(area", "print(surface")
    edits = minimal_edits(REGION, new)
    assert len(edits) == 2 and apply(REGION, edits) == new
    assert all("\n" not in REGION[e.start:e.end] for e in edits)


def test_byte_offsets_of_an_edit_after_non_ascii_text() -> None:
    text = "naïve = 1\nx = naïve\n"
    new = "naïve = 1\nx = naïve + 1\n"
    (edit,) = minimal_edits(text, new)
    start, end = to_bytes(text, 100, edit)
    at = 100 + len(text.rstrip("\n").encode())
    assert (start, end) == (at, at)
    assert edit.text == " + 1"
