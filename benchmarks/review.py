"""Benchmark `stagecoder review` on a large real tree, next to `ruff check` on the same tree.

Default tree: this interpreter's standard library. Both tools run as a user runs them (a fresh
process, no cache), each `--repeat` times; the best wall time counts. Then the review cache: a
cold run that fills an empty cache and a warm re-run on the unchanged tree (the same report is
checked). Each of those two is timed twice: the process's wall time, and the command's own run
(the time `main()` takes once the interpreter has started and imported stagecoder, about 0.3 s on
the project's machines, the same for both). Prints the figures and ends with one JSON line:
files, wall_s, files_per_s, findings, problems, ruff_wall_s, ratio (stagecoder wall time / ruff
wall time), cache_cold_s, cache_warm_s (process walls), cache_cold_run_s, cache_warm_run_s
(the command's run), cache_speedup (cold run / warm run), cache_speedup_process, cores.

    python benchmarks/review.py [TREE] [--repeat N] [--jobs N]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from analysis.documents.discover import discover  # noqa: E402
from analysis.review.run import available_cores  # noqa: E402


def _timed(cmd: list[str], cwd: Path) -> tuple[float, subprocess.CompletedProcess[str]]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    started = time.perf_counter()
    done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    return time.perf_counter() - started, done


# Runs `stagecoder review` in-process and writes how long `main()` took (imports excluded).
_DRIVER = ("import sys, time\nimport lsp_server.cli.review\nfrom lsp_server.cli import main\n"
           "t = time.perf_counter()\ncode = main(sys.argv[2:])\n"
           "open(sys.argv[1], 'w').write(repr(time.perf_counter() - t))\nsys.exit(code)\n")


def _cache_runs(cmd: list[str], scratch: Path, report: Path
                ) -> tuple[tuple[float, float], tuple[float, float]]:
    """(process wall, command run) of a review that fills an empty cache, and of the warm
    re-run on the unchanged tree (which must write the same report)."""
    timing = scratch / "run_s"
    args = [c for c in cmd[3:] if c != "--no-cache"] + ["--cache-dir", str(scratch / "cache")]
    driven = [sys.executable, "-c", _DRIVER, str(timing), *args]
    cold, _ = _timed(driven, scratch)
    cold_run, first = float(timing.read_text()), report.read_text()
    warm, _ = _timed(driven, scratch)
    if report.read_text() != first:
        raise SystemExit("the warm run's report differs from the cold run's")
    return (cold, cold_run), (warm, float(timing.read_text()))


def _ruff() -> str | None:
    beside = Path(sys.executable).with_name("ruff")
    return str(beside) if beside.exists() else shutil.which("ruff")


def main() -> int:
    """Run both tools on the tree and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("tree", nargs="?", default=sysconfig.get_paths()["stdlib"])
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--jobs", type=int, default=None)
    args = parser.parse_args()
    tree = Path(args.tree).resolve()
    found = list(discover([str(tree)], tree))
    files = sum(1 for f in found if f.problem is None)
    cores = available_cores()
    print(f"tree: {tree} ({files} files to review, {cores} cores)")

    with tempfile.TemporaryDirectory() as scratch:
        report = Path(scratch) / "report.json"
        cmd = [sys.executable, "-m", "lsp_server", "review", str(tree), "--format", "json",
               "--no-progress", "--no-cache", "-o", str(report)]
        if args.jobs:
            cmd += ["--jobs", str(args.jobs)]
        walls = []
        for _ in range(args.repeat):
            wall, done = _timed(cmd, Path(scratch))
            if done.returncode not in (0, 1, 2) or not report.exists():
                print(done.stderr[-2000:], file=sys.stderr)
                return 1
            walls.append(wall)
        findings = len(json.loads(report.read_text())["findings"])
        problems = sum(1 for line in done.stderr.splitlines() if ": error: " in line)
        cold_warm = _cache_runs(cmd, Path(scratch), report)
    wall = min(walls)
    print(f"stagecoder review: {wall:.2f} s wall, {files / wall:.0f} files/s, "
          f"{findings} findings, {problems} files not reviewed")

    ruff = _ruff()
    ruff_wall = None
    if ruff is None:
        print("ruff: not installed, no baseline")
    else:
        ruff_cmd = [ruff, "check", str(tree), "--isolated", "--no-cache", "--exit-zero",
                    "--output-format", "concise", "--quiet"]
        ruff_wall = min(_timed(ruff_cmd, tree)[0] for _ in range(args.repeat))
        print(f"ruff check:        {ruff_wall:.2f} s wall, {files / ruff_wall:.0f} files/s "
              f"(default rules)")
        print(f"ratio: stagecoder takes {wall / ruff_wall:.1f}x ruff's wall time")
    (cold, cold_run), (warm, warm_run) = cold_warm
    print(f"review cache:      cold (filling it) {cold_run:.2f} s run, {cold:.2f} s process; "
          f"warm (unchanged tree) {warm_run:.3f} s run, {warm:.2f} s process: "
          f"{cold_run / warm_run:.1f}x faster run, {cold / warm:.1f}x process")
    figures = {
        "files": files, "wall_s": round(wall, 3), "files_per_s": round(files / wall, 1),
        "findings": findings, "problems": problems,
        "ruff_wall_s": round(ruff_wall, 3) if ruff_wall else None,
        "ratio": round(wall / ruff_wall, 2) if ruff_wall else None,
        "cache_cold_s": round(cold, 3), "cache_warm_s": round(warm, 3),
        "cache_cold_run_s": round(cold_run, 3), "cache_warm_run_s": round(warm_run, 3),
        "cache_speedup": round(cold_run / warm_run, 1),
        "cache_speedup_process": round(cold / warm, 1), "cores": cores,
    }
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
