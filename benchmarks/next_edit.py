"""Next edits: server-side time per request (model excluded) and a replay on real edits.

Timing: the engine (generation/next_edit/engine.py) in process, with an instant model, on a
5,000-line file of real Python whose history holds 25 hunks. Each round types one character
somewhere (recorded in the history, as didChange does) and asks for the next edit at a fresh
spot; the model answers at once with the region rewritten (a name renamed on the cursor's
line), so every request runs region, excerpt masking, history rendering, prompt, diff and the
stages on the edit. The baseline is the same with an empty history. Figures: server_p50_ms,
server_p95_ms (target p95 <= 15 ms) and their no-history baseline.

Replay: pairs of consecutive changes between two adjacent releases of pinned PyPI packages
(sdists fetched into the benchmark cache at run time, as benchmarks/_precision_corpus.py does).
Per file that changed, the line diff's hunks are taken in order; for each neighbouring pair,
the first is the history (recorded as one change to the old file) and the second the target.
The cursor is put at the target's first line; an oracle model answers the region as it reads
after the target hunk (the true rewrite), so the figure measures diffing and the stages, not a
model: `exact_rate` is the share of pairs where the edit shown turns the document into exactly
the target text. Pairs whose target does not fit the editable region are counted apart
(`outside_region`), as are the reasons an edit was missed.

    python benchmarks/next_edit.py [--rounds N] [--no-replay] [--max-pairs N]

The last line is JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import difflib
import json
import random
import statistics
import sys
from collections.abc import AsyncIterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import msgspec  # noqa: E402

from analysis.documents.document import Document  # noqa: E402
from analysis.settings import NextEditSettings, Settings  # noqa: E402
from benchmarks._corpus import python_file  # noqa: E402
from benchmarks._precision_corpus import FetchError, Package, ensure  # noqa: E402
from generation.completion.engine import CompletionEngine  # noqa: E402
from generation.next_edit.engine import NextEditEngine  # noqa: E402
from generation.next_edit.formats import Prompt  # noqa: E402
from generation.next_edit.region import region_at  # noqa: E402

URI = "file:///bench/next_edit.py"
# Adjacent releases (old, new) of pinned packages: the replay's real edits.
RELEASES: tuple[tuple[Package, Package], ...] = (
    (Package("pypi", "packaging", "24.0", "python"),
     Package("pypi", "packaging", "24.1", "python")),
    (Package("pypi", "attrs", "23.1.0", "python"), Package("pypi", "attrs", "23.2.0", "python")),
)


class OracleModel:
    """Answers every prompt with `answer` (set before each request), fenced as the instruct
    format expects, in one piece (no model time)."""

    def __init__(self) -> None:
        self.answer = ""

    @contextlib.asynccontextmanager
    async def stream(self, prompt: Prompt, *, max_tokens: int) -> AsyncIterator[AsyncIterator[str]]:
        yield self._pieces()

    async def _pieces(self) -> AsyncIterator[str]:
        yield f"```\n{self.answer}```"


def engine_with(model: OracleModel) -> NextEditEngine:
    settings = msgspec.structs.replace(Settings(), next_edit=NextEditSettings(debounce_ms=0))
    return NextEditEngine(CompletionEngine(settings, lambda s: None),  # type: ignore[arg-type,return-value]
                          lambda s: model)  # type: ignore[arg-type,return-value]


def region_after(engine: NextEditEngine, doc: Document, cursor: int, target: bytes) -> str | None:
    """The region at `cursor` as it reads in `target` (None: no region, or the change lies
    outside it)."""
    request = engine.prepare(doc.snapshot(), cursor)
    if request is None:
        return None
    r = request.region
    tail = len(doc.source) - r.end
    if target[:r.start] != doc.source[:r.start] or tail > len(target) - r.start or \
            target[len(target) - tail:] != doc.source[r.end:]:
        return None
    return target[r.start:len(target) - tail].decode("utf-8", "replace")


# ---------------------------------------------------------------------- timing


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def timing(rounds: int, history_entries: int) -> list[float]:
    """Server-side ms per request on a 5,000-line file with `history_entries` hunks."""
    rng = random.Random(7)
    model = OracleModel()
    engine = engine_with(model)
    text = python_file(5000)
    doc = Document(URI, text, "python", 1)
    lines = [i for i in range(doc.line_count) if doc.line_text(i).startswith("        ")
             and doc.line_text(i).strip()]
    version = 1

    def type_at(line: int) -> int:
        nonlocal version
        at = doc.line_span(line)[1]
        before = doc.source
        version += 1
        doc.replace_bytes(at, at, " ", version=version)
        engine.record(URI, before, at, at, " ")
        return at

    for line in rng.sample(lines, history_entries):  # 25 separate hunks
        type_at(line)
    assert len(engine.history.hunks(URI)) == history_entries
    times: list[float] = []
    for _ in range(rounds):
        line = rng.choice(lines)
        if history_entries:
            type_at(line)
        start, end = doc.line_span(line)
        cursor = start + 8
        word = doc.source[start:end].split()[0].decode("utf-8", "replace")
        # The oracle's region, read without the engine (its context cache stays cold).
        region_now = region_at(doc, cursor).original
        model.answer = region_now.replace(word, word + "_x", 1)  # a rename on the line
        engine.shown.forget(URI)
        outcome = await engine.suggest_for(doc, cursor)
        times.append(outcome.server_ms)
    return times


# ---------------------------------------------------------------------- replay


def hunks_of(old: list[str], new: list[str]) -> list[tuple[int, int, int, int]]:
    """The line diff's changed runs (i1, i2, j1, j2), in order."""
    matcher = difflib.SequenceMatcher(None, old, new, autojunk=False)
    return [(i1, i2, j1, j2) for tag, i1, i2, j1, j2 in matcher.get_opcodes() if tag != "equal"]


def release_pairs(old_root: Path, new_root: Path) -> list[tuple[str, str, str, str, int]]:
    """(name, before, document, target, target_line) for each neighbouring pair of hunks."""
    out = []
    for old_path in sorted(old_root.rglob("*.py")):
        rel = old_path.relative_to(old_root)
        new_path = new_root / rel
        if not new_path.is_file():
            continue
        try:
            a = old_path.read_text(encoding="utf-8").splitlines(keepends=True)
            b = new_path.read_text(encoding="utf-8").splitlines(keepends=True)
        except UnicodeDecodeError:
            continue
        hunks = hunks_of(a, b)
        for k in range(len(hunks) - 1):
            h1, h2 = hunks[k], hunks[k + 1]
            # Old file; with the first hunk applied (the history); with both (the target).
            doc = a[:h1[0]] + b[h1[2]:h1[3]] + a[h1[1]:]
            shift = (h1[3] - h1[2]) - (h1[1] - h1[0])
            target = doc[:h2[0] + shift] + b[h2[2]:h2[3]] + doc[h2[1] + shift:]
            out.append((str(rel), "".join(a), "".join(doc), "".join(target), h2[0] + shift))
    return out


async def replay(max_pairs: int) -> dict[str, object]:
    model = OracleModel()
    counts: collections.Counter[str] = collections.Counter()
    packages: list[str] = []
    for old_pkg, new_pkg in RELEASES:
        try:
            old_root, new_root = ensure(old_pkg), ensure(new_pkg)
        except FetchError as exc:
            print(f"skipped {old_pkg.name}: {exc}", file=sys.stderr)
            continue
        packages.append(f"{old_pkg.name} {old_pkg.version}->{new_pkg.version}")
        for name, before, text, target, line in release_pairs(old_root, new_root):
            if counts["pairs"] >= max_pairs:
                break
            counts["pairs"] += 1
            engine = engine_with(model)
            uri = f"file:///replay/{old_pkg.name}/{name}"
            engine.history.record_replace_all(uri, before.encode(), text.encode())
            doc = Document(uri, text, "python", 2)
            cursor = doc.line_span(min(line, doc.line_count - 1))[0]
            answer = region_after(engine, doc, cursor, target.encode())
            if answer is None:
                counts["outside_region"] += 1
                continue
            model.answer = answer
            outcome = await engine.suggest_for(doc, cursor)
            edit = outcome.edit
            if edit is None:
                last = outcome.decisions[-1] if outcome.decisions else None
                counts[f"missed:{last.stage if last else 'none'}"] += 1
                continue
            applied = doc.source[:edit.start] + edit.text.encode() + doc.source[edit.end:]
            if applied == target.encode():
                counts["exact"] += 1
            else:
                counts["other_edit"] += 1
    scored = counts["pairs"] - counts["outside_region"]
    return {"packages": packages, "pairs": counts["pairs"], "scored": scored,
            "exact": counts["exact"], "outside_region": counts["outside_region"],
            "other_edit": counts["other_edit"],
            "missed": {k.split(":", 1)[1]: v for k, v in counts.items()
                       if k.startswith("missed:")},
            "exact_rate": round(counts["exact"] / scored, 4) if scored else None}


async def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=300)
    parser.add_argument("--max-pairs", type=int, default=400)
    parser.add_argument("--no-replay", action="store_true")
    args = parser.parse_args(argv)
    if args.rounds < 1 or args.max_pairs < 1:
        parser.error("--rounds and --max-pairs must be at least 1")
    with_history = await timing(args.rounds, 25)
    baseline = await timing(args.rounds, 0)
    figures: dict[str, object] = {
        "file_lines": 5000, "history_entries": 25, "rounds": args.rounds,
        "server_p50_ms": round(statistics.median(with_history), 3),
        "server_p95_ms": round(percentile(with_history, 0.95), 3),
        "no_history_p50_ms": round(statistics.median(baseline), 3),
        "no_history_p95_ms": round(percentile(baseline, 0.95), 3),
    }
    print(f"server-side per request, 5,000 lines, 25 history hunks: "
          f"p50 {figures['server_p50_ms']} ms, p95 {figures['server_p95_ms']} ms "
          f"(no history: p50 {figures['no_history_p50_ms']}, p95 {figures['no_history_p95_ms']})")
    if not args.no_replay:
        result = await replay(args.max_pairs)
        print(f"replay on {', '.join(result['packages']) or 'no package'}: "  # type: ignore[arg-type]
              f"{result['exact']}/{result['scored']} exact ({result['exact_rate']}); "
              f"outside the region {result['outside_region']}, other edit "
              f"{result['other_edit']}, missed {result['missed']}")
        figures["replay"] = result
        figures["replay_exact_rate"] = result["exact_rate"]
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main()))
