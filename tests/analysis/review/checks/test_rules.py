"""Every rule against its fixtures: positive files mark each expected finding with a comment
`expect: CODE` on its line (or `expect-next-line: CODE` on the line before), and must produce
exactly those; negative files must produce none."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from analysis.documents.document import Document
from analysis.review.checks import all_rules, analyze

FIXTURES = Path(__file__).parents[3] / "fixtures" / "checks"
EXTENSIONS = {"python": ".py", "javascript": ".js", "typescript": ".ts", "go": ".go"}
_EXPECT = re.compile(r"expect: (SC\d{3})")
# For findings on a line that cannot carry a comment without changing the verdict (SC302 takes
# a comment on the `except` line as intent), the marker goes on the line before.
_EXPECT_NEXT = re.compile(r"expect-next-line: (SC\d{3})")


def _load(path: Path) -> Document:
    return Document(path.as_uri(), path.read_text("utf-8"), path=str(path))


def _fixtures(kind: str) -> list[Path]:
    return sorted(p for p in FIXTURES.glob(f"SC*/{kind}.*") if p.suffix != ".snap")


def _id(path: Path) -> str:
    return f"{path.parent.name}-{path.name}"


@pytest.mark.parametrize("path", _fixtures("positive"), ids=_id)
def test_positive_fixture_finds_exactly_the_marked_lines(path: Path) -> None:
    code = path.parent.name
    doc = _load(path)
    assert not doc.has_errors(), "fixture must be valid code"
    lines = doc.text.splitlines()
    expected = {(n, m.group(1)) for n, line in enumerate(lines, 1)
                for m in _EXPECT.finditer(line) if m.group(1) == code}
    expected |= {(n + 1, m.group(1)) for n, line in enumerate(lines, 1)
                 for m in _EXPECT_NEXT.finditer(line) if m.group(1) == code}
    assert expected, "a positive fixture needs at least one `expect:` marker"
    found = {(f.location.line, f.code) for f in analyze(doc, codes={code})}
    assert found == expected


@pytest.mark.parametrize("path", _fixtures("negative"), ids=_id)
def test_negative_fixture_finds_nothing(path: Path) -> None:
    code = path.parent.name
    doc = _load(path)
    assert not doc.has_errors(), "fixture must be valid code"
    assert [f"{f.location.line}: {f.message}" for f in analyze(doc, codes={code})] == []


@pytest.mark.parametrize("rule", all_rules(), ids=lambda r: r.code)
def test_each_rule_has_fixtures_for_each_language(rule) -> None:
    for language in rule.languages:
        ext = EXTENSIONS.get(language)
        if ext is None:
            continue  # tsx shares the TypeScript queries and fixtures
        for kind in ("positive", "negative"):
            assert (FIXTURES / rule.code / f"{kind}{ext}").is_file(), (language, kind)


@pytest.mark.parametrize("rule", all_rules(), ids=lambda r: r.code)
def test_rule_documentation_has_the_fixed_sections(rule) -> None:
    doc = rule.doc()
    for section in ("## What it does", "## Why is this bad?", "## Example", "## Fix safety"):
        assert section in doc, section
    assert "```" in doc  # the example is code
    assert re.fullmatch(r"SC[123]\d\d", rule.code)
    assert re.fullmatch(r"[a-z]+(-[a-z]+)*", rule.name)
    assert rule.summary and rule.message


def test_codes_and_names_are_unique_and_grouped_by_stage() -> None:
    rules = all_rules()
    assert len({r.code for r in rules}) == len(rules) >= 15
    assert len({r.name for r in rules}) == len(rules)
    stages = {r.code[2] for r in rules}
    assert stages == {"1", "2", "3"}
    covered = {lang for r in rules for lang in r.languages}
    assert {"python", "javascript", "typescript", "go"} <= covered
