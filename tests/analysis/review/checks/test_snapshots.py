"""Snapshots of what each rule shows the user on its positive fixtures (ruff-style), the declared
fix applicabilities, and fixes that keep the document's line ending.

Every positive fixture `tests/fixtures/checks/CODE/positive.EXT` has a snapshot beside it,
`positive.EXT.snap`: each finding's range (line:col-line:col, 1-based, columns in code points),
severity, message, and its fix (applicability, title, the diff it makes). A changed message,
range or fix fails the test with a diff. Rules whose fixes exist also get a CRLF variant of the
fixture (`positive.EXT.crlf.snap`, the same file with CRLF line breaks), where a fix that
inserts a bare LF shows up as a line without its `\\r`.

    STAGECODER_UPDATE_SNAPSHOTS=1 pytest tests/analysis/review/checks/test_snapshots.py

rewrites the snapshots (then read the diff in git before committing it).
"""

from __future__ import annotations

import difflib
import os
from pathlib import Path

import pytest

from analysis.documents.document import Document
from analysis.review.checks import all_rules, analyze, rule_for
from analysis.review.findings import Finding, apply_edits

FIXTURES = Path(__file__).parents[3] / "fixtures" / "checks"
UPDATE = bool(os.environ.get("STAGECODER_UPDATE_SNAPSHOTS"))


def _fixtures(kind: str) -> list[Path]:
    return sorted(p for p in FIXTURES.glob(f"SC*/{kind}.*") if p.suffix != ".snap")


def _crlf_cases() -> list[Path]:
    """Positive fixtures of the rules that offer fixes (their CRLF variant is snapshotted)."""
    return [p for p in _fixtures("positive")
            if (rule := rule_for(p.parent.name)) is not None and rule.fix_applicabilities]


def _id(path: Path) -> str:
    return f"{path.parent.name}-{path.name}"


def _document(path: Path, crlf: bool = False) -> Document:
    data = path.read_bytes()
    if crlf:
        data = data.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
    return Document.from_bytes(path.as_uri(), data, None, path=str(path))


def _shown(line: str) -> str:
    """A diff line with its line ending made visible (`\\r` written out), the LF dropped."""
    return line.removesuffix("\n").replace("\r", "\\r")


def render_finding(doc: Document, finding: Finding) -> list[str]:
    """The lines a snapshot holds for one finding."""
    loc, end = finding.location, finding.end_location
    out = [f"{loc.line}:{loc.column}-{end.line}:{end.column} {finding.code} "
           f"[{finding.severity.value}] {finding.message}"]
    if finding.fix is None:
        return out
    fix = finding.fix
    out.append(f"  fix ({fix.applicability.value}): {fix.title}")
    before = doc.source.decode("utf-8").splitlines(keepends=True)
    after = apply_edits(doc.source, fix.edits).decode("utf-8").splitlines(keepends=True)
    diff = difflib.unified_diff(before, after, n=0, lineterm="")
    out.extend(f"    {_shown(line)}" for line in list(diff)[2:])  # no ---/+++ header
    return out


def render(path: Path, crlf: bool = False) -> str:
    """The snapshot text of one fixture: a header, then every finding of the fixture's rule."""
    code = path.parent.name
    rule = rule_for(code)
    assert rule is not None, code
    doc = _document(path, crlf)
    findings = analyze(doc, codes={code})
    endings = ", CRLF line endings" if crlf else ""
    lines = [f"# {code} {rule.name}: {path.name}{endings} ({len(findings)} findings)"]
    for finding in findings:
        lines.extend(render_finding(doc, finding))
    return "\n".join(lines) + "\n"


def _check(snapshot: Path, actual: str) -> None:
    if UPDATE:
        snapshot.write_text(actual, encoding="utf-8")
        return
    assert snapshot.is_file(), \
        f"no snapshot {snapshot.name}: run with STAGECODER_UPDATE_SNAPSHOTS=1 and review it"
    expected = snapshot.read_text(encoding="utf-8")
    if actual != expected:
        diff = "\n".join(difflib.unified_diff(
            expected.splitlines(), actual.splitlines(), f"{snapshot.name} (snapshot)",
            f"{snapshot.name} (now)", lineterm=""))
        pytest.fail(f"rendered findings differ from the snapshot:\n{diff}", pytrace=False)


@pytest.mark.parametrize("path", _fixtures("positive"), ids=_id)
def test_positive_fixture_matches_its_snapshot(path: Path) -> None:
    _check(path.with_name(path.name + ".snap"), render(path))


@pytest.mark.parametrize("path", _crlf_cases(), ids=_id)
def test_crlf_variant_matches_its_snapshot_and_keeps_crlf(path: Path) -> None:
    actual = render(path, crlf=True)
    _check(path.with_name(path.name + ".crlf.snap"), actual)
    doc = _document(path, crlf=True)
    for finding in analyze(doc, codes={path.parent.name}):
        if finding.fix is None:
            continue
        fixed = apply_edits(doc.source, finding.fix.edits)
        bare = fixed.replace(b"\r\n", b"").count(b"\n")
        assert bare == 0, f"{finding.location.line}: the fix leaves {bare} bare LF line breaks"


def test_every_snapshot_belongs_to_a_fixture() -> None:
    fixtures = {p.name for p in _fixtures("positive")}
    for snap in FIXTURES.glob("SC*/*.snap"):
        owner = snap.name.removesuffix(".snap").removesuffix(".crlf")
        assert (snap.parent / owner).is_file() and owner.startswith("positive."), snap
        assert owner in fixtures


@pytest.mark.parametrize("rule", all_rules(), ids=lambda r: r.code)
def test_fixes_have_a_declared_applicability(rule) -> None:
    """Every fix a rule makes on its fixtures (LF and CRLF) has an applicability the rule
    declares; a rule that declares fixes produces at least one, and one that declares none
    produces none."""
    seen = set()
    for path in sorted(FIXTURES.glob(f"{rule.code}/*.*")):
        if path.suffix == ".snap":
            continue
        for crlf in (False, True):
            for finding in analyze(_document(path, crlf), codes={rule.code}):
                if finding.fix is not None:
                    assert finding.fix.applicability in rule.fix_applicabilities, \
                        (path.name, finding.location.line, finding.fix.applicability)
                    assert finding.fix.title, "a fix needs a title"
                    seen.add(finding.fix.applicability)
    assert seen == set(rule.fix_applicabilities), \
        f"declared {sorted(rule.fix_applicabilities)}, fixtures produce {sorted(seen)}"
