"""Labelled precision of `stagecoder review` on real code that no one here wrote.

Reviews the pinned corpus (benchmarks/_precision_corpus.py: packages from PyPI, npm and Debian at
fixed versions, fetched into a cache, never committed) and matches every finding against the
hand labels in benchmarks/data/review_labels.jsonl (TP: a real defect or a fix worth a
maintainer's time; noise: true but not worth it; FP: wrong; each with a one-line reason). Prints,
per rule and for the default rule set: findings per 1,000 lines reviewed and labelled precision
(TP / labelled) and FP rate (FP / labelled), against the bars (precision >= 0.7, FP <= 0.1).

With `--before DIR` (a checkout of older rules, e.g. `git archive HEAD | tar -x -C DIR`) the same
corpus is reviewed with those rules in the same run and both sets of figures are printed. New
findings without a label are listed (`--unlabelled N` per rule, with the code around them) so
they get labelled. The last line is one JSON object with the figures.

    python benchmarks/review_precision.py [--before DIR] [--jobs N] [--unlabelled N]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LABELS = ROOT / "benchmarks" / "data" / "review_labels.jsonl"
PRECISION_BAR = 0.7
FP_BAR = 0.1
LABELS_KINDS = ("TP", "noise", "FP")


@dataclass(frozen=True, slots=True)
class Hit:
    """One finding in the corpus, keyed as labels are."""

    package: str  # Package.key, e.g. "attrs-23.2.0"
    path: str  # relative to the package's code root, "/"-separated
    line: int
    code: str
    message: str

    @property
    def key(self) -> tuple[str, str, int, str]:
        """What a label is matched on."""
        return self.package, self.path, self.line, self.code


@dataclass(slots=True)
class Run:
    """What one set of rules found on the corpus."""

    name: str
    hits: list[Hit] = field(default_factory=list)
    lines: int = 0
    files: int = 0
    skipped: Counter[str] = field(default_factory=Counter)  # why files were not reviewed
    preview: frozenset[str] = frozenset()  # codes of rules off by default


def load_labels(path: Path = LABELS) -> dict[tuple[str, str, int, str], dict]:
    """The labels by (package key, path, line, code)."""
    out: dict[tuple[str, str, int, str], dict] = {}
    if not path.is_file():
        return out
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not raw.strip():
            continue
        entry = json.loads(raw)
        if entry["label"] not in LABELS_KINDS:
            raise SystemExit(f"{path}:{number}: label must be one of {LABELS_KINDS}")
        key = (f"{entry['package']}-{entry['version']}", entry["path"], entry["line"],
               entry["code"])
        out[key] = entry
    return out


# --------------------------------------------------------------------------- reviewing

_DRIVER = r"""
import json, os, sys
from pathlib import Path
sys.path.insert(0, os.environ["STAGECODER_ROOT"])
from analysis.documents.languages import spec_for
from analysis.review.checks import all_rules
from analysis.review.run import review_paths
try:
    from analysis.project import Project
except ImportError:  # older checkouts kept it beside review_paths
    from analysis.review.run import Project
from analysis.settings import ReviewSettings, Settings

args = json.loads(sys.argv[1])
review = ReviewSettings()
if "preview" in ReviewSettings.__struct_fields__:
    review = ReviewSettings(preview=True)  # every rule: preview rules are measured too
preview = sorted(r.code for r in all_rules() if getattr(r, "preview", False))
out = {"preview": preview, "packages": {}}
for key, directory in args["packages"].items():
    root = Path(directory)
    project = Project(root, Settings(review=review))
    files = []
    for result in review_paths([str(root)], project, jobs=args["jobs"]):
        rel = Path(result.path).resolve().relative_to(root.resolve()).as_posix()
        spec = spec_for(None, result.path)
        skipped = result.problem or next(
            (n for n in result.notes if "not reviewed" in n or "skipped" in n), None)
        lines = 0
        if spec is not None and skipped is None:
            lines = Path(result.path).read_bytes().count(b"\n")
        files.append({"path": rel, "language": spec.name if spec else None, "lines": lines,
                      "skipped": skipped,
                      "findings": [[f.location.line, f.code, f.message] for f in result.findings]})
    out["packages"][key] = files
print(json.dumps(out))
"""


def review_corpus(name: str, checkout: Path, packages: dict[str, Path], jobs: int) -> Run:
    """Review every package with the rules of `checkout` (in a subprocess, so two checkouts
    never mix in one interpreter)."""
    env = {**os.environ, "STAGECODER_ROOT": str(checkout), "PYTHONPATH": str(checkout)}
    payload = json.dumps({"packages": {k: str(v) for k, v in packages.items()}, "jobs": jobs})
    with tempfile.TemporaryDirectory() as scratch:
        done = subprocess.run([sys.executable, "-c", _DRIVER, payload], cwd=scratch, env=env,
                              capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"review with {checkout} failed:\n{done.stderr[-3000:]}")
    data = json.loads(done.stdout.strip().splitlines()[-1])
    run = Run(name, preview=frozenset(data["preview"]))
    for key, files in data["packages"].items():
        for entry in files:
            if entry["skipped"]:
                reason = entry["skipped"].split(": ", 1)[-1].split(",")[0]
                run.skipped[reason[:60]] += 1
                continue
            if entry["language"] is None:
                continue
            run.files += 1
            run.lines += entry["lines"]
            run.hits.extend(Hit(key, entry["path"], line, code, message)
                            for line, code, message in entry["findings"])
    return run


# --------------------------------------------------------------------------- figures


def figures(run: Run, labels: dict[tuple[str, str, int, str], dict]) -> dict:
    """Per-rule and overall figures of one run."""
    by_rule: dict[str, list[Hit]] = defaultdict(list)
    for hit in run.hits:
        by_rule[hit.code].append(hit)
    rules = {}
    for code in sorted(by_rule):
        rules[code] = _score(by_rule[code], labels, run.lines)
        rules[code]["preview"] = code in run.preview
    default = [h for h in run.hits if h.code not in run.preview]
    return {"lines": run.lines, "files": run.files, "rules": rules,
            "default": _score(default, labels, run.lines),
            "all": _score(run.hits, labels, run.lines)}


def _score(hits: list[Hit], labels: dict, lines: int) -> dict:
    counts = Counter(labels[h.key]["label"] for h in hits if h.key in labels)
    labelled = sum(counts.values())
    return {
        "findings": len(hits),
        "per_kloc": round(1000 * len(hits) / lines, 3) if lines else 0.0,
        "labelled": labelled, "tp": counts["TP"], "noise": counts["noise"], "fp": counts["FP"],
        "precision": round(counts["TP"] / labelled, 3) if labelled else None,
        "fp_rate": round(counts["FP"] / labelled, 3) if labelled else None,
    }


def meets_bar(score: dict) -> bool:
    """True when labelled precision and FP rate are within the bars (nothing labelled: True)."""
    if not score["labelled"]:
        return True
    return score["precision"] >= PRECISION_BAR and score["fp_rate"] <= FP_BAR


def _print_run(name: str, figs: dict) -> None:
    print(f"\n== {name}: {figs['files']} files, {figs['lines']:,} lines reviewed")
    print(f"{'rule':8} {'set':8} {'findings':>8} {'/KLOC':>7} {'labelled':>8} {'TP':>4} "
          f"{'noise':>5} {'FP':>4} {'prec':>6} {'FP%':>6}  bar")
    for code, s in figs["rules"].items():
        _row(code, "preview" if s["preview"] else "default", s)
    _row("default", "", figs["default"])
    _row("all", "", figs["all"])


def _row(name: str, kind: str, s: dict) -> None:
    prec = "-" if s["precision"] is None else f"{s['precision']:.2f}"
    fp = "-" if s["fp_rate"] is None else f"{s['fp_rate']:.2f}"
    bar = "ok" if meets_bar(s) else "BELOW"
    print(f"{name:8} {kind:8} {s['findings']:>8} {s['per_kloc']:>7.2f} {s['labelled']:>8} "
          f"{s['tp']:>4} {s['noise']:>5} {s['fp']:>4} {prec:>6} {fp:>6}  {bar}")


def _context(packages: dict[str, Path], hit: Hit, around: int = 3) -> str:
    path = packages[hit.package] / hit.path
    lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    lo, hi = max(0, hit.line - 1 - around), min(len(lines), hit.line + around)
    return "\n".join(f"      {'>' if n + 1 == hit.line else ' '} {n + 1:5} {lines[n]}"
                     for n in range(lo, hi))


def list_unlabelled(run: Run, labels: dict, packages: dict[str, Path], per_rule: int) -> int:
    """Print up to `per_rule` unlabelled findings of each rule (evenly spread); their count."""
    missing = [h for h in run.hits if h.key not in labels]
    by_rule: dict[str, list[Hit]] = defaultdict(list)
    for hit in sorted(missing, key=lambda h: h.key):
        by_rule[hit.code].append(hit)
    if missing:
        print(f"\n{len(missing)} findings have no label (label them in {LABELS.name}):")
    for code, hits in sorted(by_rule.items()):
        step = max(1, len(hits) // per_rule) if per_rule else len(hits) + 1
        shown = hits[::step][:per_rule]
        print(f"  {code}: {len(hits)} unlabelled" + (", for example:" if shown else ""))
        for hit in shown:
            print(f"    {json.dumps(_stub(hit))}")
            print(_context(packages, hit))
    return len(missing)


def _stub(hit: Hit) -> dict:
    name, version = hit.package.rsplit("-", 1) if not hit.package.startswith("golang-") \
        else _debian_split(hit.package)
    return {"package": name, "version": version, "path": hit.path, "line": hit.line,
            "code": hit.code, "label": "", "reason": "", "message": hit.message}


def _debian_split(key: str) -> tuple[str, str]:
    head, revision = key.rsplit("-", 1)
    name, upstream = head.rsplit("-", 1)
    return name, f"{upstream}-{revision}"


def main() -> int:
    """Fetch the corpus, review it (before and after), print the figures."""
    sys.path.insert(0, str(ROOT))
    from benchmarks._precision_corpus import CORPUS, FetchError, ensure

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", type=Path, help="a checkout with the older rules")
    parser.add_argument("--jobs", type=int, default=None)
    parser.add_argument("--unlabelled", type=int, default=3, metavar="N",
                        help="show up to N unlabelled findings per rule (default 3)")
    parser.add_argument("--unlabelled-of", choices=("after", "before"), default="after",
                        help="whose unlabelled findings to list (default: the current rules')")
    args = parser.parse_args()
    jobs = args.jobs or len(os.sched_getaffinity(0))
    packages = {}
    for package in CORPUS:
        try:
            packages[package.key] = ensure(package)
        except FetchError as exc:  # a registry that is down costs its packages, not the run
            print(f"skipped {package.key}: cannot fetch it: {exc}", file=sys.stderr)
    if not packages:
        print("cannot fetch any package of the corpus", file=sys.stderr)
        return 2
    labels = load_labels()
    print(f"corpus: {len(packages)} packages; {len(labels)} labels in {LABELS.relative_to(ROOT)}")
    runs = []
    if args.before is not None:
        runs.append(review_corpus("before", args.before.resolve(), packages, jobs))
    runs.append(review_corpus("after", ROOT, packages, jobs))
    result: dict = {}
    for run in runs:
        figs = figures(run, labels)
        _print_run(run.name, figs)
        if run.skipped:
            print("   not reviewed: " + ", ".join(f"{n} ({why})" for why, n in
                                                  run.skipped.most_common()))
        result[run.name] = figs
    listed = runs[0] if args.unlabelled_of == "before" else runs[-1]
    unlabelled = list_unlabelled(listed, labels, packages, args.unlabelled)
    figs = result["after"]
    below = [c for c, s in figs["rules"].items() if not s["preview"] and not meets_bar(s)]
    print(f"\ndefault set: precision {figs['default']['precision']}, FP rate "
          f"{figs['default']['fp_rate']}; rules below the bar: {', '.join(below) or 'none'}")
    summary = {
        "lines": figs["lines"], "files": figs["files"],
        "findings": figs["default"]["findings"], "per_kloc": figs["default"]["per_kloc"],
        "precision": figs["default"]["precision"], "fp_rate": figs["default"]["fp_rate"],
        "labelled": figs["default"]["labelled"], "unlabelled": unlabelled,
        "rules_below_bar": below,
        "per_rule": {c: {k: s[k] for k in ("findings", "per_kloc", "precision", "fp_rate",
                                            "preview")} for c, s in figs["rules"].items()},
    }
    if "before" in result:
        b = result["before"]
        summary["before"] = {"lines": b["lines"], "findings": b["all"]["findings"],
                             "per_kloc": b["all"]["per_kloc"],
                             "precision": b["all"]["precision"], "fp_rate": b["all"]["fp_rate"],
                             "labelled": b["all"]["labelled"]}
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
