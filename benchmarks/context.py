"""Benchmark: completion-context build time on a 5,000-line file with a 500-file workspace index.

Usage: python benchmarks/context.py [--files 500] [--lines 5000] [--keystrokes 400]
                                    [--tokenizer PATH] [--memory-files N]
The workspace is real code: the first 500 modules of the running interpreter's standard library,
indexed with tree-sitter tag queries; the current file is 5,000 lines of real Python. Each round
types one character into a function body (an incremental edit, a new document version, so no
cached result can answer) and times `ContextBuilder.build` there; cursors jump to a new body
every 20 keystrokes. Wall-clock and on-CPU (thread) times are both reported: on a shared
machine the wall-clock tail mostly measures other processes. Baseline in the same run: slicing
bytes around the cursor (no tree, no related snippets), what a context-free prompt costs.
`--memory-files N` also indexes N files (standard library modules copied under distinct names)
and reports the process RSS.
Ends with one line of JSON: p50_ms, p95_ms, index_files, ...
"""

from __future__ import annotations

import argparse
import gc
import json
import random
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from analysis.context.builder import ContextBuilder  # noqa: E402
from analysis.context.tokens import counter_for  # noqa: E402
from analysis.documents.document import Document  # noqa: E402
from analysis.documents.store import path_to_uri  # noqa: E402
from analysis.index.workspace_index import SymbolIndex  # noqa: E402
from analysis.settings import ContextSettings  # noqa: E402
from benchmarks._corpus import python_file, stdlib_dir  # noqa: E402
from generation.completion.prompts import build_fim_prompt  # noqa: E402

TYPED = "total = compute(item, "
SKIP = ("test", "idlelib", "site-packages", "lib2to3", "tkinter", "turtledemo", "__pycache__")


def workspace_files(count: int) -> list[Path]:
    """The first `count` standard-library modules (tests and GUI packages left out)."""
    found: list[Path] = []
    for path in sorted(stdlib_dir().rglob("*.py")):
        rel = path.relative_to(stdlib_dir()).as_posix()
        if any(part in rel for part in SKIP):
            continue
        found.append(path)
        if len(found) >= count:
            break
    return found


def cursor_lines(doc: Document, count: int, rng: random.Random) -> list[int]:
    """Lines inside function bodies (8-space statements), spread over the file."""
    lines = [i for i in range(doc.line_count) if doc.line_text(i).startswith("        ")
             and doc.line_text(i).strip() and not doc.line_text(i).strip().startswith("#")]
    return sorted(rng.sample(lines, min(count, len(lines))))


def percentile(values: list[float], q: float) -> float:
    """The q-quantile (nearest rank) of `values`."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def baseline(doc: Document, offset: int, budget: int) -> str:
    """Bytes around the cursor, 3/4 before and 1/4 after, at ~3.5 bytes per token."""
    span = int(budget * 3.5)
    before = doc.source[max(0, offset - span * 3 // 4):offset].decode("utf-8", "ignore")
    after = doc.source[offset:offset + span // 4].decode("utf-8", "ignore")
    return f"<｜fim▁begin｜>{before}<｜fim▁hole｜>{after}<｜fim▁end｜>"


def rss_mb() -> float:
    """Resident set size of this process in MB (Linux)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def memory_figure(count: int) -> dict[str, float]:
    """Index `count` files (stdlib modules copied under distinct names); RSS before and after."""
    sources = workspace_files(2000)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for i in range(count):
            src = sources[i % len(sources)]
            folder = root / f"pkg{i // 100}"
            folder.mkdir(exist_ok=True)
            shutil.copyfile(src, folder / f"m{i}_{src.name}")
        gc.collect()
        before = rss_mb()
        index = SymbolIndex()
        started = time.perf_counter()
        index.build([root])
        seconds = time.perf_counter() - started
        gc.collect()
        after = rss_mb()
        return {"memory_files": len(index), "memory_definitions": index.symbol_count,
                "rss_before_mb": round(before, 1), "rss_after_mb": round(after, 1),
                "index_mb": round(after - before, 1), "memory_build_s": round(seconds, 1)}


def main() -> int:
    """Run the benchmark and print its figures, JSON last."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--files", type=int, default=500)
    parser.add_argument("--lines", type=int, default=5000)
    parser.add_argument("--keystrokes", type=int, default=400)
    parser.add_argument("--budget", type=int, default=2048)
    parser.add_argument("--tokenizer", help="tokenizer.json or model folder (default: estimate)")
    parser.add_argument("--memory-files", type=int, default=0)
    args = parser.parse_args()

    files = workspace_files(args.files)
    index = SymbolIndex()
    index.roots = (stdlib_dir().resolve().as_posix(),)
    started = time.perf_counter()
    index.index_paths(files)
    build_s = time.perf_counter() - started
    print(f"index: {len(index)} files, {index.symbol_count} definitions in {build_s:.1f} s")

    text = python_file(args.lines)
    doc = Document(path_to_uri(stdlib_dir() / "bench_current.py"), text, "python")
    print(f"file: {doc.line_count} lines, {len(doc.source)} bytes")
    counter = counter_for(args.tokenizer)
    builder = ContextBuilder(index, ContextSettings(budget_tokens=args.budget), counter)
    rng = random.Random(0)
    per_cursor = 20
    lines = cursor_lines(doc, max(1, args.keystrokes // per_cursor), rng)

    build_ms: list[float] = []
    cpu_ms: list[float] = []
    prompt_ms: list[float] = []
    base_ms: list[float] = []
    related: list[int] = []
    for line in lines:
        offset = doc.line_span(line)[1]
        for i in range(per_cursor):
            doc.replace_bytes(offset, offset, TYPED[i % len(TYPED)], doc.version + 1)
            offset += 1
            c0 = time.thread_time()
            t0 = time.perf_counter()
            ctx = builder.build(doc, offset)
            t1 = time.perf_counter()
            cpu_ms.append((time.thread_time() - c0) * 1e3)
            build_fim_prompt(ctx, counter)
            t2 = time.perf_counter()
            baseline(doc, offset, args.budget)
            t3 = time.perf_counter()
            build_ms.append((t1 - t0) * 1e3)
            prompt_ms.append((t2 - t1) * 1e3)
            base_ms.append((t3 - t2) * 1e3)
            related.append(len(ctx.related))
    figures: dict[str, float] = {
        "p50_ms": round(statistics.median(build_ms), 3),
        "p95_ms": round(percentile(build_ms, 0.95), 3),
        "cpu_p50_ms": round(statistics.median(cpu_ms), 3),
        "cpu_p95_ms": round(percentile(cpu_ms, 0.95), 3),
        "prompt_p50_ms": round(statistics.median(prompt_ms), 3),
        "baseline_p50_ms": round(statistics.median(base_ms), 3),
        "index_files": len(index),
        "index_definitions": index.symbol_count,
        "index_build_s": round(build_s, 2),
        "file_lines": doc.line_count,
        "builds": len(build_ms),
        "related_mean": round(statistics.mean(related), 2),
    }
    print(f"context build: p50 {figures['p50_ms']} ms, p95 {figures['p95_ms']} ms over "
          f"{len(build_ms)} keystrokes ({figures['related_mean']} related snippets on average)")
    print(f"  on-CPU time (immune to other processes on a busy machine): p50 "
          f"{figures['cpu_p50_ms']} ms, p95 {figures['cpu_p95_ms']} ms")
    print(f"prompt assembly: p50 {figures['prompt_p50_ms']} ms; baseline byte slicing: p50 "
          f"{figures['baseline_p50_ms']} ms")
    if args.memory_files:
        figures |= memory_figure(args.memory_files)
        print(f"memory: {figures['memory_files']} files, {figures['memory_definitions']} "
              f"definitions: RSS {figures['rss_before_mb']} -> {figures['rss_after_mb']} MB "
              f"(+{figures['index_mb']} MB) in {figures['memory_build_s']} s")
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
