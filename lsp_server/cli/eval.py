"""`stagecoder eval [PATH]`: how well the configured model completes this repository's own code,
with the stages on and off side by side.

Holes are cut from the source files under PATH (the walker review uses: .gitignore, the default
and configured excludes; files that look like secrets, and `context.exclude`, are never read
for a hole nor sent to the model), completed by the configured completion model through the
engine the editor uses, and scored (generation/completion/evaluate.py). The report is a table,
or JSON with --json.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import Any

import msgspec

from analysis.documents.discover import discover
from analysis.documents.store import read_source
from analysis.secrets import SecretFilter
from analysis.settings import Settings
from generation.completion.engine import CompletionEngine
from generation.completion.evaluate import EvalReport, Side, cut_holes, evaluate, report
from generation.completion.fim_model import model_factory
from lsp_server.cli._common import CliError, project_for, with_model_overrides

MAX_HOLES = 10_000


def register(sub: argparse._SubParsersAction) -> None:
    """Add the `eval` subcommand."""
    p = sub.add_parser(
        "eval",
        help="measure the configured model on holes cut from your code, stages on and off",
        description="Cut holes from the source files under PATH (default: the current folder) "
        "with tree-sitter (a line's rest, a block's statements, a function body), complete "
        "each with the configured completion model through the stages, and report exact "
        "match, edit similarity, syntax validity, naming flags and latency, with the stages "
        "on and off side by side. Secret-looking and excluded files are never read for a "
        "hole. Exit 0 with a report, 2 on an error (no files, model unreachable).",
    )
    p.add_argument("path", nargs="?", default=".", help="a folder or file (default: .)")
    p.add_argument("--holes", type=int, default=50, help="holes to cut (default: 50)")
    p.add_argument("--seed", type=int, default=0, help="which holes (default: 0)")
    p.add_argument("--url", help="completion endpoint URL (default: settings)")
    p.add_argument("--model", help="model name (default: settings, else the server's first)")
    p.add_argument("--candidates", type=int, help="candidates per request (default: settings)")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.add_argument("--no-progress", action="store_true",
                   help="no progress bar (it is shown only when stderr is a terminal anyway)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Cut, complete, score and print; 2 (one line on stderr) when nothing can be measured."""
    try:
        if not 1 <= args.holes <= MAX_HOLES:
            raise CliError(f"--holes must be between 1 and {MAX_HOLES:,}, got {args.holes}")
        if args.candidates is not None and args.candidates < 1:
            raise CliError(f"--candidates must be at least 1, got {args.candidates}")
        target = Path(args.path)
        if not target.exists():
            raise CliError(f"{args.path}: no such file or folder")
        project = project_for(target)
    except CliError as exc:
        print(f"stagecoder: {exc}", file=sys.stderr)
        return 2
    settings = with_model_overrides(project.settings, args)
    docs, skipped = _documents(target, project.root, settings)
    holes = cut_holes(docs, args.holes, args.seed)
    if not holes:
        print(f"stagecoder: no holes to cut under {args.path} (no source file that parses "
              "cleanly, outside the excludes)", file=sys.stderr)
        return 2
    engine = CompletionEngine(settings, model_factory())
    rows, errors = asyncio.run(_evaluate(holes, settings, engine, _progress(args, len(holes))))
    if not rows:
        print(f"stagecoder: the model answered none of the {len(holes)} requests (is the "
              f"completion server at {settings.completion.url} up?)", file=sys.stderr)
        return 2
    result = report(rows, errors, len({h.path for h in holes}), args.seed, skipped)
    if args.json:
        sys.stdout.write(msgspec.json.encode(result).decode() + "\n")
    else:
        _print_table(result)
    return 0


def _documents(target: Path, root: Path, settings: Settings) -> tuple[list[Any], list[str]]:
    """(path, Document) of every source file to cut holes from, and the files skipped."""
    secrets = SecretFilter(settings.context.exclude)
    docs: list[Any] = []
    skipped: list[str] = []
    for found in discover([target], root, settings.context.exclude):
        if found.problem is not None:
            skipped.append(found.problem)
            continue
        if secrets.is_excluded(found.path, root):
            continue  # never read, never sent: not even as a hole
        loaded = read_source(Path(found.path), max_bytes=settings.max_file_bytes)
        if loaded.document is None:
            skipped.append(loaded.problem or f"{found.path}: cannot read")
            continue
        docs.append((str(Path(found.path).resolve()), loaded.document))
    return docs, skipped


class _Bar:
    """A rich progress bar on stderr, or nothing."""

    def __init__(self, total: int, show: bool) -> None:
        self.progress: Any = None
        if show:
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

            self.progress = Progress("[progress.description]{task.description}", BarColumn(),
                                     MofNCompleteColumn(), TimeElapsedColumn(),
                                     console=Console(stderr=True), transient=True)
            self.task = self.progress.add_task("completing", total=total)

    def update(self, done: int) -> None:
        if self.progress is not None:
            self.progress.update(self.task, completed=done)


def _progress(args: argparse.Namespace, total: int) -> _Bar:
    return _Bar(total, sys.stderr.isatty() and not args.no_progress)


async def _evaluate(holes, settings: Settings, engine: CompletionEngine, bar: _Bar):
    try:
        if bar.progress is not None:
            bar.progress.start()
        return await evaluate(holes, settings, engine, bar.update)
    finally:
        if bar.progress is not None:
            bar.progress.stop()
        await engine.aclose()


def _print_table(result: EvalReport) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"stagecoder eval: {result.holes} holes from {result.files} files "
                  f"(seed {result.seed})")
    table.add_column("holes")
    table.add_column("metric")
    table.add_column("stages on", justify="right")
    table.add_column("stages off", justify="right")
    groups: list[tuple[str, Side, Side]] = [("all", result.stages_on, result.stages_off)]
    groups += [(kind, sides["on"], sides["off"]) for kind, sides in result.by_kind.items()]
    for label, on, off in groups:
        for i, (name, key, fmt) in enumerate(_METRICS):
            table.add_row(label if i == 0 else "", name, fmt.format(getattr(on, key)),
                          fmt.format(getattr(off, key)), end_section=i == len(_METRICS) - 1)
    console = Console(highlight=False)
    console.print(table)
    lat = result.latency_ms
    console.print(f"latency: request p50 {lat['requestP50']} ms, p95 {lat['requestP95']} ms; "
                  f"server-side p50 {lat['serverP50']} ms, p95 {lat['serverP95']} ms",
                  markup=False)
    if result.errors:
        console.print(f"{result.errors} request(s) got no answer from the model", markup=False)
    for line in result.skipped:
        console.print(f"skipped: {line}", markup=False)


_METRICS = (("exact match", "exact_match", "{:.3f}"), ("edit similarity", "edit_similarity",
                                                        "{:.1f}"),
            ("syntax valid", "syntax_valid", "{:.3f}"), ("naming flags", "naming_flags",
                                                         "{:.3f}"),
            ("shown", "shown", "{:.3f}"))
