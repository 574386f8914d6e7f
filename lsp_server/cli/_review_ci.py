"""`stagecoder review` at CI scale: --diff, the cache, --shard and --merge (README "Review in
CI"). The flags are added to the review parser here and read by `lsp_server.cli.review`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from analysis.project import Project
from analysis.review.cache import CacheError, ReviewCache, default_cache_dir
from analysis.review.changes import ChangesError, changed_lines
from analysis.review.run import FileResult, Selection, Shard
from lsp_server.report import Format, ShardInfo

EXIT_CLEAN, EXIT_FINDINGS, EXIT_ERROR = 0, 1, 2

EPILOG = """\
CI:
  --diff REF reviews only the files changed since REF (git diff REF; `origin/main...HEAD` for
  what a branch changed) and reports, and exits on, only the findings on added or modified
  lines. Results are cached by file content, path, settings, rules and stagecoder version in
  DIR/review.sqlite (DIR: --cache-dir, $STAGECODER_CACHE_DIR, $XDG_CACHE_HOME/stagecoder or
  ~/.cache/stagecoder; at most 64 MiB); --no-cache (and --fix) skip it. --shard I/N reviews one
  of N stable parts of the files; `stagecoder review --merge shard-*.sarif` joins the shards'
  JSON or SARIF reports into the report of an unsharded run (its exit status is the
  unsharded run's).
"""


class CiError(Exception):
    """A CI option cannot be honoured (one line for the user, exit 2)."""


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The CI flags of `stagecoder review`."""
    ci = p.add_argument_group("CI")
    ci.add_argument("--diff", metavar="REF",
                    help="only the files changed since the git revision REF, and only the "
                    "findings on their added or modified lines")
    ci.add_argument("--shard", metavar="I/N", type=_shard,
                    help="review shard I of N (a stable split of the files by path)")
    ci.add_argument("--merge", action="store_true",
                    help="the PATHs are JSON or SARIF reports of shards: write them as one")
    ci.add_argument("--no-cache", action="store_true",
                    help="check every file again (the cache is neither read nor written)")
    ci.add_argument("--cache-dir", metavar="DIR", type=Path,
                    help=f"where the cache lives (default: {default_cache_dir()})")


def _shard(text: str) -> Shard:
    try:
        return Shard.parse(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def selection_for(args: argparse.Namespace, project: Project) -> Selection | None:
    """The files and findings the run keeps (None: all of them); CiError if git cannot say."""
    if args.diff is not None and args.fix:
        raise CiError("--diff and --fix cannot be combined (a fix may touch unchanged lines)")
    if args.diff is None and args.shard is None:
        return None
    changes = None
    if args.diff is not None:
        try:
            changes = changed_lines(args.diff, str(Path.cwd()))
        except ChangesError as exc:
            raise CiError(str(exc)) from None
    return Selection(shard=args.shard, changes=changes)


def open_cache(args: argparse.Namespace) -> ReviewCache | None:
    """The review cache, unless --no-cache or --fix (a warning, and none, if it cannot open)."""
    if args.no_cache or args.fix:
        return None
    try:
        return ReviewCache(args.cache_dir or default_cache_dir())
    except CacheError as exc:
        _err(f"warning: {exc}; reviewing without it")
        return None


def close_cache(cache: ReviewCache | None) -> None:
    """Write what the run added to the cache (a warning if that fails)."""
    if cache is None:
        return
    try:
        cache.close()
    except CacheError as exc:
        _err(f"warning: {exc}")


def shard_info(args: argparse.Namespace, selection: Selection | None,
               results: list[FileResult]) -> ShardInfo | None:
    """What a shard's JSON or SARIF report says about its place in the whole run."""
    if selection is None or args.shard is None:
        return None
    order = {r.path: selection.positions[r.path] for r in results
             if r.path in selection.positions}
    return ShardInfo(args.shard.index, args.shard.count, order)


def run_merge(args: argparse.Namespace) -> int:
    """`review --merge REPORT...`: one report, and the exit status an unsharded run gives."""
    from lsp_server.report.merge import MergeError, merge_reports

    texts = []
    for name in args.paths:
        try:
            texts.append((name, Path(name).read_text(encoding="utf-8")))
        except (OSError, UnicodeDecodeError) as exc:
            _err(f"error: cannot read {name}: {getattr(exc, 'strerror', None) or exc}")
            return EXIT_ERROR
    try:
        merged = merge_reports(texts)
    except MergeError as exc:
        _err(f"error: {exc}")
        return EXIT_ERROR
    if args.format not in (Format.TEXT, merged.format):
        _err(f"error: --merge writes the reports' own format ({merged.format}), not "
             f"{args.format}")
        return EXIT_ERROR
    if args.output:
        try:
            Path(args.output).write_text(merged.text, encoding="utf-8")
        except OSError as exc:
            _err(f"error: cannot write {args.output}: {exc.strerror or exc}")
            return EXIT_ERROR
    else:
        sys.stdout.write(merged.text)
        sys.stdout.flush()
    if merged.errors:
        return EXIT_ERROR
    return EXIT_FINDINGS if merged.findings else EXIT_CLEAN


def _err(message: str) -> None:
    print(f"stagecoder: {message}", file=sys.stderr, flush=True)
