"""The default rule set's labelled precision stays above its bar (precision >= 0.7, FP <= 0.1).

Always runs (no network): benchmarks/data/excerpts/ holds unmodified line ranges of packages in
the precision corpus (as `<path>.excerpt`; sources and licences in its NOTICE.md), and
benchmarks/data/excerpt_labels.jsonl labels every finding the old and the new rules make
there. The default rules must produce only labelled findings there, and meet the bar. The old
rules' false positives (an `else` after `return`, optional calls, a misparse) are labelled
too: a rule that regresses into one of them fails the bar here.

When the corpus is in the cache (`python benchmarks/review_precision.py` fetches it), the same
bar is checked on all of it; without the cache that test skips.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from analysis.documents.document import Document
from analysis.review.checks import all_rules, analyze, preview_codes
from analysis.settings import ReviewSettings
from benchmarks import review_precision as bench
from benchmarks._precision_corpus import CORPUS, package_dir

DATA = Path(bench.__file__).parent / "data"
EXCERPTS = DATA / "excerpts"


def _excerpt_labels() -> dict[tuple[str, str, int, str], dict]:
    entries = [json.loads(line) for line in
               (DATA / "excerpt_labels.jsonl").read_text(encoding="utf-8").splitlines() if line]
    return {(e["package"], e["path"], e["line"], e["code"]): e for e in entries}


def _excerpt_hits(review: ReviewSettings) -> list[bench.Hit]:
    hits = []
    for entry in json.loads((EXCERPTS / "manifest.json").read_text(encoding="utf-8")):
        # Stored as `<path>.excerpt` so that linters and test collectors leave them alone.
        stored = EXCERPTS / entry["package"] / f"{entry['path']}.excerpt"
        document = Document.from_bytes(stored.as_uri(), stored.read_bytes(),
                                       path=entry["path"])
        hits.extend(bench.Hit(entry["package"], entry["path"], f.location.line, f.code,
                              f.message) for f in analyze(document, review))
    return hits


def _below_bar(hits: list[bench.Hit], labels: dict) -> dict[str, dict]:
    by_rule: dict[str, list[bench.Hit]] = {}
    for hit in hits:
        by_rule.setdefault(hit.code, []).append(hit)
    scores = {code: bench._score(found, labels, 1) for code, found in by_rule.items()}
    return {code: s for code, s in scores.items() if not bench.meets_bar(s)}


def test_every_default_finding_on_the_excerpts_is_labelled_and_meets_the_bar() -> None:
    labels = _excerpt_labels()
    hits = _excerpt_hits(ReviewSettings())
    unlabelled = [h for h in hits if h.key not in labels]
    assert unlabelled == [], "label these in benchmarks/data/excerpt_labels.jsonl"
    assert not {h.code for h in hits} & preview_codes()
    assert _below_bar(hits, labels) == {}
    overall = bench._score(hits, labels, 1)
    assert overall["labelled"] >= 4 and bench.meets_bar(overall), overall


def test_the_old_false_positives_would_fail_the_bar() -> None:
    """The labels hold the old rules' false positives for default rules, so the check above can
    fail: scoring those findings as if a rule made them again puts the rule below its bar."""
    labels = _excerpt_labels()
    default = {r.code for r in all_rules()} - preview_codes()
    fps = [bench.Hit(k[0], k[1], k[2], k[3], "") for k, e in labels.items()
           if e["label"] == "FP" and k[3] in default]
    assert {h.code for h in fps} >= {"SC103", "SC301"}
    assert set(_below_bar(fps, labels)) == {h.code for h in fps}


def test_preview_findings_on_the_excerpts_are_labelled_too() -> None:
    labels = _excerpt_labels()
    hits = _excerpt_hits(ReviewSettings(preview=True))
    assert [h for h in hits if h.key not in labels] == []


def test_the_corpus_labels_are_well_formed() -> None:
    keys = {p.key for p in CORPUS}
    kinds = Counter()
    for raw in (DATA / "review_labels.jsonl").read_text(encoding="utf-8").splitlines():
        entry = json.loads(raw)
        assert f"{entry['package']}-{entry['version']}" in keys, entry
        assert entry["label"] in bench.LABELS_KINDS and entry["reason"].strip(), entry
        kinds[entry["label"]] += 1
    assert sum(kinds.values()) >= 200 and kinds["TP"] and kinds["FP"] and kinds["noise"]


@pytest.mark.timeout(300)
def test_default_rules_meet_the_bar_on_the_cached_corpus() -> None:
    packages = {p.key: package_dir(p) for p in CORPUS}
    if not all((d / ".complete").is_file() for d in packages.values()):
        pytest.skip("the corpus is not in the cache: run `python benchmarks/review_precision.py`")
    from benchmarks._precision_corpus import ensure

    roots = {p.key: ensure(p) for p in CORPUS}
    run = bench.review_corpus("now", bench.ROOT, roots, jobs=2)
    figures = bench.figures(run, bench.load_labels())
    default = {c: s for c, s in figures["rules"].items() if not s["preview"]}
    assert {c: s for c, s in default.items() if not bench.meets_bar(s)} == {}
    assert all(s["labelled"] == s["findings"] for s in default.values()), \
        "default-rule findings without a label: run the benchmark and label them"
    assert bench.meets_bar(figures["default"])
