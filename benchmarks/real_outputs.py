"""Replay of published raw outputs of real code models through the stages, next to the raw output.

Data (benchmarks/data/real_outputs/, sources and licences in its README): raw fill-in-the-middle
generations that other projects published, with the tasks they answered.
- humaneval: HumanEval single-line infilling (Python, unit tests), raw outputs of two base and
  two instruction-tuned models. Figure: pass@1, the task's tests run on prompt + completion +
  suffix in a subprocess with a timeout.
- cceval: CrossCodeEval line completion (Python, TypeScript; the prompts are cut from the middle
  of real files, so the "file" starts and ends mid-code), raw outputs of six models. Figures:
  exact match and edit similarity to the ground-truth line; the published post-processors'
  outputs for the same raw outputs are shown too (the best of them per row).
Every figure is printed for the raw output, its first line, and the staged text, per model and
language, from the same run. All cases go through `stagecoder stages --batch`: one process, the
editor's own path (`prepare_at`). The last line is JSON.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from rapidfuzz import fuzz

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "benchmarks" / "data" / "real_outputs"
VARIANTS = ("raw", "first_line", "staged")
TEST_TIMEOUT_S = 10.0


def load(path: Path, limit: int | None) -> list[dict]:
    """The rows of a gzipped JSONL file (the first `limit`)."""
    if not path.exists():
        return []
    with gzip.open(path, "rt", encoding="utf-8") as f:
        rows = [json.loads(line) for line in f if line.strip()]
    return rows[:limit] if limit else rows


def first_line(raw: str, keep_newline: bool) -> str:
    """The usual truncation: the output up to its first line break (kept for a line hole)."""
    cut = raw.find("\n")
    if cut == -1:
        return raw
    return raw[: cut + 1] if keep_newline else raw[:cut]


def stage_all(cases: list[dict]) -> list[dict]:
    """Run every case through `stagecoder stages --batch` (one process)."""
    with tempfile.TemporaryDirectory() as tmp:
        batch = Path(tmp) / "cases.jsonl"
        batch.write_text("".join(json.dumps(c, ensure_ascii=False) + "\n" for c in cases),
                         encoding="utf-8")
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        proc = subprocess.run([sys.executable, "-m", "lsp_server", "stages", "--batch",
                               str(batch)], capture_output=True, text=True, env=env, cwd=tmp,
                              timeout=1800)
    results = [json.loads(line) for line in proc.stdout.splitlines() if line.strip()]
    if len(results) != len(cases):
        raise SystemExit(f"stages --batch answered {len(results)} of {len(cases)} cases "
                         f"(exit {proc.returncode}): {proc.stderr.strip()[-500:]}")
    return results


def passes(program: str, timeout: float = TEST_TIMEOUT_S) -> bool:
    """True when a program exits 0 within the timeout (run isolated, in a scratch folder)."""
    with tempfile.TemporaryDirectory() as tmp:
        try:
            proc = subprocess.run([sys.executable, "-I", "-c", program], cwd=tmp,
                                  capture_output=True, timeout=timeout,
                                  env={"PATH": os.environ.get("PATH", "")})
        except subprocess.TimeoutExpired:
            return False
    return proc.returncode == 0


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")


def humaneval(rows: list[dict]) -> dict[tuple[str, str], dict[str, list[bool]]]:
    """pass@1 per (language, model) and variant."""
    cases, keys = [], []
    for row in rows:
        for model, raw in row["outputs"].items():
            cases.append({"id": f"{row['task_id']}|{model}", "text": row["prompt"] + row["suffix"],
                          "language": "python", "offset": len(row["prompt"]), "raw": raw})
            keys.append((row, model, raw))
    staged = stage_all(cases)
    programs: dict[str, bool] = {}
    wanted: list[tuple[tuple[str, str], str, str]] = []
    for (row, model, raw), result in zip(keys, staged, strict=True):
        texts = {"raw": raw, "first_line": first_line(raw, keep_newline=True),
                 "staged": result.get("text") or ""}
        for variant, text in texts.items():
            program = (row["prompt"] + text + row["suffix"] + "\n" + row["test"]
                       + f"\ncheck({row['entry_point']})\n")
            programs.setdefault(program, False)
            wanted.append((("python", model), variant, program))
    with ThreadPoolExecutor(max_workers=max(2, os.cpu_count() or 2)) as pool:
        outcomes = dict(zip(programs, pool.map(passes, programs), strict=True))
    table: dict[tuple[str, str], dict[str, list[bool]]] = defaultdict(lambda: defaultdict(list))
    for key, variant, program in wanted:
        table[key][variant].append(outcomes[program])
    return table


def cceval(rows: list[dict]) -> dict[tuple[str, str], dict[str, list[tuple[bool, float]]]]:
    """(exact match, edit similarity) per (language, model) and variant."""
    cases, keys = [], []
    for row in rows:
        for model, raw in row["outputs"].items():
            cases.append({"id": f"{row['task_id']}|{model}", "text": row["prefix"] + row["suffix"],
                          "path": row["path"], "offset": len(row["prefix"]), "raw": raw})
            keys.append((row, model, raw))
    staged = stage_all(cases)
    table: dict[tuple[str, str], dict[str, list[tuple[bool, float]]]] = defaultdict(
        lambda: defaultdict(list))
    for (row, model, raw), result in zip(keys, staged, strict=True):
        truth = row["groundtruth"].strip()
        texts = {"raw": raw, "first_line": first_line(raw, keep_newline=False),
                 "staged": result.get("text") or ""}
        published = row.get("published", {}).get(model, {})
        for variant, text in [*texts.items(), *(("published:" + k, v)
                                                for k, v in published.items())]:
            pred = text.strip()
            table[(row["language"], model)][variant].append(
                (pred == truth, fuzz.ratio(pred, truth)))
    return table


def _mean(values: Iterable[float]) -> float:
    values = list(values)
    return round(sum(values) / len(values), 3) if values else float("nan")


def report(he: dict, cc: dict) -> dict:
    """Print the side-by-side tables; the figures and the shortfalls as a dict."""
    figures: dict = {}
    shortfalls: list[str] = []
    if he:
        print("humaneval single-line infilling: pass@1 (tests run)")
        print(f"  {'language/model':42s} {'n':>4s} {'raw':>6s} {'1st line':>8s} {'staged':>7s}")
    for (language, model), by in sorted(he.items()):
        rates = {v: _mean(by[v]) for v in VARIANTS}
        print(f"  {language + '/' + model:42s} {len(by['raw']):4d} {rates['raw']:6.3f} "
              f"{rates['first_line']:8.3f} {rates['staged']:7.3f}")
        for variant in VARIANTS:
            figures[f"humaneval_{language}_{_slug(model)}_{variant}_pass_at_1"] = rates[variant]
        if rates["staged"] < max(rates["raw"], rates["first_line"]):
            shortfalls.append(f"humaneval {language}/{model}")
    if cc:
        print("cceval line completion: exact match / edit similarity")
        print(f"  {'language/model':42s} {'n':>4s} {'raw':>13s} {'1st line':>13s} "
              f"{'staged':>13s} {'best published':>18s}")
    for (language, model), by in sorted(cc.items()):
        em = {v: _mean(float(e) for e, _ in rows) for v, rows in by.items()}
        es = {v: _mean(s for _, s in rows) for v, rows in by.items()}
        published = [v for v in by if v.startswith("published:")]
        best = max(published, key=lambda v: (em[v], es[v])) if published else None
        cells = " ".join(f"{em[v]:.3f}/{es[v]:5.1f}  " for v in VARIANTS)
        tail = f"{em[best]:.3f}/{es[best]:5.1f} ({best[10:]})" if best else ""
        print(f"  {language + '/' + model:42s} {len(by['raw']):4d} {cells} {tail}")
        for variant in VARIANTS:
            figures[f"cceval_{language}_{_slug(model)}_{variant}_exact_match"] = em[variant]
            figures[f"cceval_{language}_{_slug(model)}_{variant}_edit_similarity"] = es[variant]
        if best:
            figures[f"cceval_{language}_{_slug(model)}_best_published_exact_match"] = em[best]
        if em["staged"] < max(em["raw"], em["first_line"]):
            shortfalls.append(f"cceval {language}/{model}")
    for name, table, metric in (("humaneval", he, "pass_at_1"), ("cceval", cc, "exact_match")):
        languages = sorted({lang for lang, _ in table})
        for language in languages:
            for variant in VARIANTS:
                pooled = [x if isinstance(x, bool) else x[0] for (lang, _), by in table.items()
                          if lang == language for x in by[variant]]
                figures[f"{name}_{language}_{variant}_{metric}"] = _mean(float(x) for x in pooled)
    figures["shortfalls"] = shortfalls
    figures["staged_at_least_baselines"] = not shortfalls
    return figures


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DATA, help="folder of the data files")
    parser.add_argument("--limit", type=int, default=None,
                        help="first N tasks of each file (of each language)")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    he_rows = load(args.data / "humaneval_single_line.jsonl.gz", args.limit)
    cc_rows = load(args.data / "cceval_line.jsonl.gz", None)
    if args.limit:  # the first tasks of each language
        cc_rows = [r for lang in sorted({r["language"] for r in cc_rows})
                   for r in [x for x in cc_rows if x["language"] == lang][:args.limit]]
    if not he_rows and not cc_rows:
        raise SystemExit(f"no data under {args.data}")
    figures = report(humaneval(he_rows) if he_rows else {}, cceval(cc_rows) if cc_rows else {})
    figures["wall_s"] = round(time.perf_counter() - started, 1)
    if figures["shortfalls"]:
        print("staged below a baseline for: " + ", ".join(figures["shortfalls"]))
    print(json.dumps(figures))
    return figures


if __name__ == "__main__":
    main()
