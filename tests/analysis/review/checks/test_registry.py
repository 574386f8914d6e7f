"""Rule selection (select/ignore prefixes, per-path ignores), suppression comments, odd input."""

from __future__ import annotations

from analysis.documents.document import Document
from analysis.review.checks import analyze, selected_codes, unknown_selectors
from analysis.settings import ReviewSettings, Settings

SOURCE = 'def f(list):\n    return list is "x"\n'


def _codes(review: ReviewSettings, path: str | None = None) -> set[str]:
    doc = Document("file:///p/x.py", SOURCE, path="x.py")
    return {f.code for f in analyze(doc, review, path=path)}


def test_all_rules_run_by_default() -> None:
    assert _codes(ReviewSettings()) == {"SC202", "SC305"}


def test_select_and_ignore_take_prefixes() -> None:
    assert _codes(ReviewSettings(select=["SC2"])) == {"SC202"}
    assert _codes(ReviewSettings(ignore=["sc30"])) == {"SC202"}
    assert _codes(ReviewSettings(select=["ALL"], ignore=["SC202"])) == {"SC305"}


def test_per_path_ignores_match_globs_relative_to_the_root() -> None:
    review = ReviewSettings(per_path_ignores={"tests/**": ["SC2"]})
    assert _codes(review, "tests/unit/x.py") == {"SC305"}
    assert _codes(review, "src/x.py") == {"SC202", "SC305"}


def test_settings_object_is_accepted_too() -> None:
    settings = Settings(review=ReviewSettings(select=["SC305"]))
    doc = Document("file:///p/x.py", SOURCE, path="x.py")
    assert [f.code for f in analyze(doc, settings)] == ["SC305"]


def test_unknown_selectors_are_reported() -> None:
    review = ReviewSettings(select=["SC1", "XY9"], per_path_ignores={"a": ["SC999"]})
    assert unknown_selectors(review) == ["XY9", "SC999"]
    assert "SC101" in selected_codes(review)


def test_suppression_comment_by_code_and_blanket() -> None:
    doc = Document("file:///p/x.py",
                   'def f(list):  # stagecoder: ignore[SC202]\n'
                   '    return list is "x"  # stagecoder: ignore\n'
                   'def g(id):  # stagecoder: ignore[SC305]\n    return id\n', path="x.py")
    assert [(f.location.line, f.code) for f in analyze(doc)] == [(3, "SC202")]


def test_plain_text_and_oversized_documents_give_no_findings() -> None:
    assert analyze(Document("file:///p/x.txt", "x is 'a'\n", path="x.txt")) == []
    big = Document("file:///p/x.py", SOURCE * 10, path="x.py", max_bytes=20)
    assert big.too_large and analyze(big) == []


def test_findings_are_sorted_and_positions_count_code_points() -> None:
    doc = Document("file:///p/x.py", 's = "é"; t = (s is "ü")\n', path="x.py")
    [finding] = analyze(doc)
    assert (finding.location.line, finding.location.column) == (1, 15)
    assert finding.range.start == len('s = "é"; t = ('.encode())
