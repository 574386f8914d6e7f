"""`stagecoder review PATH...`: batch code review for developers and CI (the LSP's rules)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import msgspec

from analysis.documents.store import path_to_uri
from analysis.project import Project, load_project
from analysis.review.cache import ReviewCache
from analysis.review.checks import unknown_selectors
from analysis.review.run import FileResult, Selection, available_cores, review_paths
from analysis.settings import Settings
from lsp_server.cli import _review_ci as ci
from lsp_server.report import Explanation, Format, render

EXIT_CLEAN, EXIT_FINDINGS, EXIT_ERROR = 0, 1, 2

EPILOG = """\
exit status:
  0  every path was reviewed and there are no findings (after --fix: none remain)
  1  every path was reviewed and there are findings
  2  something failed: a path does not exist or could not be read (permission, binary file,
     over the size limit, a line over 20,000 characters, symlink loop, a FIFO, socket or
     device), the configuration is invalid, or the review itself failed. 2 wins over 1.
     Findings are still reported for the files that were reviewed.
     Invalid UTF-8 is a warning (the file is reviewed with U+FFFD), not a failure; so is a
     model server that cannot be reached with --model (explanations are skipped).

configuration:
  [tool.stagecoder] in the nearest pyproject.toml: select, ignore, exclude (globs relative to
  that file's directory), per-path-ignores ({"glob" = ["SC2"]}); also under
  [tool.stagecoder.review]. --select/--ignore/--exclude add to it. Codes may be prefixes
  ("SC1" = all boundary rules, "ALL"). `# stagecoder: ignore[SC101]` on a line suppresses it.
  max-file-bytes (under [tool.stagecoder], default 5000000): larger files are skipped.
"""


def register(sub: argparse._SubParsersAction) -> None:
    """Add the `review` subcommand."""
    p = sub.add_parser(
        "review", help="review files: findings as text, JSON, SARIF or GitHub annotations",
        description="Run stagecoder's rules over files and directories (walked in parallel on "
        "every core; .gitignore and configured excludes are respected). Works offline: no "
        "model server is needed unless --model is given.",
        epilog=EPILOG + "\n" + ci.EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("paths", nargs="*", default=["."], metavar="PATH",
                   help="files or directories (default: .)")
    p.add_argument("--format", type=Format, choices=list(Format), default=Format.TEXT,
                   help="output format (default: text, `path:line:col: CODE message`)")
    p.add_argument("-o", "--output", metavar="FILE", help="write the report here, not stdout")
    p.add_argument("--fix", action="store_true",
                   help="apply safe fixes in place (atomically; files with syntax errors and "
                   "files that change during the run are left alone)")
    p.add_argument("--model", action="store_true",
                   help="ask the chat model for an explanation and a suggested rewrite per "
                   "finding (endpoint from [tool.stagecoder.chat])")
    p.add_argument("--model-limit", type=int, default=20, metavar="N",
                   help="explain at most N findings with --model (default 20)")
    p.add_argument("--select", metavar="CODES", help="comma-separated codes or prefixes to run")
    p.add_argument("--ignore", metavar="CODES", help="comma-separated codes or prefixes to skip")
    p.add_argument("--preview", action="store_true",
                   help="also run the preview rules (off by default: not yet precise enough on "
                   "real code; `preview = true` under [tool.stagecoder] does the same)")
    p.add_argument("--exclude", metavar="GLOBS", help="comma-separated globs to skip (adds to "
                   "the configured ones)")
    p.add_argument("--config", metavar="PYPROJECT", type=Path,
                   help="read settings from this file instead of the nearest pyproject.toml")
    p.add_argument("-j", "--jobs", type=int, default=None, metavar="N",
                   help=f"worker processes (default: every core, {available_cores()} here)")
    p.add_argument("--no-progress", action="store_true",
                   help="no progress bar (it is shown only when stderr is a terminal anyway)")
    ci.add_arguments(p)
    p.set_defaults(func=run)


def _split(value: str | None) -> list[str]:
    return [v.strip() for v in (value or "").split(",") if v.strip()]


def _apply_flags(project: Project, args: argparse.Namespace) -> None:
    review = project.settings.review
    changes: dict[str, Any] = {}
    if args.select:
        changes["select"] = _split(args.select)
    if args.ignore:
        changes["ignore"] = [*review.ignore, *_split(args.ignore)]
    if args.exclude:
        changes["exclude"] = [*review.exclude, *_split(args.exclude)]
    if args.preview:
        changes["preview"] = True
    if changes:
        project.settings = msgspec.structs.replace(
            project.settings, review=msgspec.structs.replace(review, **changes))


def run(args: argparse.Namespace) -> int:
    """Review the paths, print the report, return the exit status."""
    if args.merge:
        return ci.run_merge(args)
    project = load_project(Path.cwd(), args.config)
    _apply_flags(project, args)
    failed = bool(project.problems)
    for problem in project.problems:
        _err(f"error: {problem}")
    for entry in unknown_selectors(project.settings.review):
        _err(f"warning: `{entry}` matches no rule")
    try:
        selection = ci.selection_for(args, project)
    except ci.CiError as exc:
        _err(f"error: {exc}")
        return EXIT_ERROR
    cache = ci.open_cache(args)
    try:
        results = _review(args, project, cache, selection)
    finally:
        ci.close_cache(cache)
    failed |= any(r.problem for r in results)
    explanations: dict[tuple[str, int], Explanation] = {}
    if args.model:
        explanations, message = _explain(results, project.settings, args.model_limit)
        if message:
            _err(message)
    options: dict[str, Any] = {"shard": ci.shard_info(args, selection, results)}
    if args.format is Format.SARIF:
        options["root_uri"] = path_to_uri(project.root)
    report = render(args.format, results, explanations, **options)
    if args.output:
        try:
            Path(args.output).write_text(report, encoding="utf-8")
        except OSError as exc:
            _err(f"error: cannot write {args.output}: {exc.strerror or exc}")
            return EXIT_ERROR
    else:
        sys.stdout.write(report)
        sys.stdout.flush()
    if failed:
        return EXIT_ERROR
    return EXIT_FINDINGS if any(r.findings for r in results) else EXIT_CLEAN


def _review(args: argparse.Namespace, project: Project, cache: ReviewCache | None,
            selection: Selection | None) -> list[FileResult]:
    show_bar = sys.stderr.isatty() and not args.no_progress
    progress: Any = None
    if show_bar:
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

        progress = Progress("[progress.description]{task.description}", BarColumn(),
                            MofNCompleteColumn(), TimeElapsedColumn(),
                            console=Console(stderr=True), transient=True)
    task: list[Any] = []

    def on_total(total: int) -> None:
        if progress is not None:
            task.append(progress.add_task("reviewing", total=total))

    def on_result(result: FileResult) -> None:
        for message in ([f"error: {result.problem}"] if result.problem else []) + \
                [f"warning: {n}" for n in result.notes]:
            if progress is not None:
                progress.console.print(message, markup=False, highlight=False)
            else:
                _err(message)
        if progress is not None and task:
            progress.advance(task[0])

    with progress if progress is not None else nullcontext():
        return review_paths(args.paths, project, fix=args.fix, jobs=args.jobs,
                            on_total=on_total, on_result=on_result, cache=cache,
                            selection=selection)


def _explain(results: list[FileResult], settings: Settings, limit: int
             ) -> tuple[dict[tuple[str, int], Explanation], str | None]:
    """Explanations from the chat model; never fails the run (a message says what was skipped)."""
    import asyncio

    from analysis.documents.languages import spec_for
    from analysis.documents.reader import read_bounded
    from generation.chat.explain import Item, explain, snippet
    from generation.model.client import ModelClient
    from generation.model.errors import ModelError

    items: list[Item] = []
    total = sum(len(r.findings) for r in results)
    for result in results:
        if not result.findings:
            continue
        source = read_bounded(result.path, settings.max_file_bytes).data
        if source is None:  # gone or changed into something unreadable since it was reviewed
            continue
        spec = spec_for(None, result.path)
        for i, f in enumerate(result.findings):
            if len(items) < limit:
                items.append(Item((result.path, i), result.path, f.code, f.message,
                                  snippet(source, f.location.line, f.end_location.line),
                                  spec.name if spec else ""))
    if not items:
        return {}, None

    async def run_all() -> tuple[dict, ModelError | None]:
        # Explanations are batch work: the lowest priority on a shared server.
        async with ModelClient(settings.chat, priority=settings.priority.review) as client:
            return await explain(client, items)

    try:
        notes, error = asyncio.run(run_all())
    except ModelError as exc:
        return {}, f"warning: explanations skipped: {exc}"
    out = {key: Explanation(n.explanation, n.suggestion) for key, n in notes.items()}
    message = None
    if error is not None:
        message = f"warning: explanations stopped after {len(out)} of {len(items)}: {error}"
    elif total > len(items):
        message = f"note: explained the first {len(items)} of {total} findings (--model-limit)"
    return out, message  # type: ignore[return-value]


def _err(message: str) -> None:
    print(f"stagecoder: {message}", file=sys.stderr, flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    """Run `stagecoder review` with these arguments (tests and `python -m`)."""
    from lsp_server.cli import build_parser

    args = build_parser("review").parse_args(["review", *(argv or [])])
    return int(args.func(args))
