"""Batch review: project settings, files analyzed in parallel on every core, safe fixes applied.

`review_paths` is the engine behind `stagecoder review`: it discovers files
(analysis.documents.discover, the walker the workspace index uses too) for a `Project` (its
settings from analysis.project), reviews each one in a worker process (`review_file`: read,
analyze, optionally fix and write back), and hands each `FileResult` to a callback as it completes
(for a progress bar). A bad file never stops the run: its result carries a `problem` sentence
instead of findings. Files are read through `analysis.documents.reader` (regular files only,
`maxFileBytes`, the line-length guard). Pool workers die with their parent: a worker never goes
on fixing files for a run that no one is waiting for.

At CI scale (README "Review in CI"): a `ReviewCache` answers for files whose bytes, path,
settings and rules were reviewed before (`analysis.review.cache`; never with `fix`); a
`Selection` keeps one shard of the files (`Shard`: a stable hash of the path relative to the
project root) and, with `Changes` from `git diff`, only the changed files and the findings on
their changed lines, and records each reported file's place in the whole walk so that the
shards' reports can be merged back into the unsharded order.
"""

from __future__ import annotations

import contextlib
import ctypes
import hashlib
import os
import signal
import sys
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

import msgspec

from analysis.budget import Budget
from analysis.documents.discover import Found, discover
from analysis.documents.document import Document
from analysis.documents.reader import DEFAULT_MAX_BYTES, read_bounded
from analysis.documents.store import read_source
from analysis.project import Project
from analysis.review.cache import ReviewCache, entry_key, fingerprint
from analysis.review.changes import Changes
from analysis.review.checks import analyze, analyze_report
from analysis.review.findings import Finding
from analysis.review.fixing import file_identity, fix_document, write_if_unchanged
from analysis.settings import ReviewSettings

SEQUENTIAL_BELOW = 8  # fewer files than this: a process pool costs more than it saves
PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>


class FileResult(msgspec.Struct, rename="camel", omit_defaults=True, frozen=True):
    """What reviewing one file gave: findings, or the problem that stopped it, plus notes."""

    path: str
    findings: list[Finding] = msgspec.field(default_factory=list)
    problem: str | None = None  # the file was not reviewed (an error: exit code 2)
    notes: list[str] = msgspec.field(default_factory=list)  # reviewed, with remarks
    fixed: int = 0  # safe fixes applied and written
    partial: bool = False  # the rules ran out of time (review.timeBudget): not cached


class Shard(msgspec.Struct, frozen=True):
    """Shard `index` of `count` (1-based, as CI matrices number their jobs)."""

    index: int
    count: int

    @classmethod
    def parse(cls, text: str) -> Shard:
        """`I/N` -> Shard; ValueError with a sentence for anything else."""
        left, sep, right = text.partition("/")
        if not (sep and left.strip().isdigit() and right.strip().isdigit()):
            raise ValueError(f"expected I/N (such as 1/4), not {text!r}")
        index, count = int(left), int(right)
        if not 1 <= index <= count:
            raise ValueError(f"{text}: I must be between 1 and N")
        return cls(index, count)

    def takes(self, relative: str) -> bool:
        """Whether this shard reviews the file at `relative` (a posix path from the root)."""
        digest = hashlib.sha256(relative.encode("utf-8", "surrogateescape")).digest()
        return int.from_bytes(digest[:8], "big") % self.count == self.index - 1


@dataclass(slots=True)
class Selection:
    """Which of the discovered files a run reviews and which findings it reports."""

    shard: Shard | None = None
    changes: Changes | None = None  # --diff: changed files only, findings on changed lines
    positions: dict[str, int] = field(default_factory=dict)  # filled: path -> place in the walk

    def keeps(self, item: Found, root: Path) -> bool:
        """Whether the run reviews `item` (a problem is reported by the shard it hashes to; a
        path named on the command line that cannot be reviewed is reported with --diff too)."""
        named = item.explicit and item.problem is not None
        if self.changes is not None and not named and not self.changes.changed(item.path):
            return False
        return self.shard is None or self.shard.takes(_relative(item.path, root))

    def report(self, result: FileResult) -> FileResult:
        """`result` less the findings outside the changed lines (with --diff)."""
        changes = self.changes
        if changes is None or not result.findings:
            return result
        kept = [f for f in result.findings
                if changes.touches(result.path, f.location.line, f.end_location.line)]
        return result if len(kept) == len(result.findings) else msgspec.structs.replace(
            result, findings=kept)


def review_file(path: str, review: ReviewSettings, root: Path, fix: bool = False, *,
                max_file_bytes: int = DEFAULT_MAX_BYTES) -> FileResult:
    """Read, analyze and (with `fix`) repair one file; never raises for a bad file."""
    try:
        identity = file_identity(path) if fix else None
    except OSError:
        identity = None
    uri = "file://" + quote(os.path.abspath(path))  # no resolve(): spares a syscall per part
    loaded = read_source(Path(path), uri, max_bytes=max_file_bytes, shown=path)
    doc = loaded.document
    if doc is None:
        return FileResult(path, problem=loaded.problem)
    notes = [loaded.problem] if loaded.problem else []
    if doc.spec is None:
        return FileResult(path, notes=[f"{path}: skipped, no grammar for this file type"])
    rel = _relative(path, root)
    try:
        budget = Budget(review.time_budget)
        report = analyze_report(doc, review, path=rel, budget=budget)
        findings = report.findings
        if report.truncated:  # cut short (budget, nesting): say so, keep what was found
            notes.append(f"{path}: {report.truncated}")
        if not fix:  # a result the clock cut short is not cached: a quieter run may finish it
            return FileResult(path, findings, notes=notes, partial=budget.expired())
        return _fix(path, doc, findings, review, rel, identity, notes)
    except Exception as exc:  # a bug in a rule must not end the whole run
        return FileResult(path, problem=f"{path}: internal error while reviewing ({exc!r})")


def _fix(path: str, doc: Document, findings: list[Finding], review: ReviewSettings, rel: str,
         identity: tuple[int, int, int] | None, notes: list[str]) -> FileResult:
    outcome = fix_document(doc, findings, lambda d: analyze(d, review, path=rel))
    if outcome.note:
        notes.append(f"{path}: {outcome.note}")
    if outcome.source is None or identity is None:
        return FileResult(path, findings, notes=notes)
    if _parent_gone():
        os._exit(1)  # the run was killed: write nothing more to the user's files
    with _writing():
        refused = write_if_unchanged(path, outcome.source, doc.source, identity)
    if refused:
        notes.append(f"{path}: {refused}")
        return FileResult(path, findings, notes=notes)
    return FileResult(path, outcome.findings, notes=notes, fixed=outcome.applied)


def _relative(path: str, root: Path) -> str:
    absolute = os.path.abspath(path)
    try:
        return Path(absolute).relative_to(os.path.abspath(root)).as_posix()
    except ValueError:
        return Path(path).as_posix()


def available_cores() -> int:
    """CPU cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


# --------------------------------------------------------------------------- parallel run

_WORKER: tuple[ReviewSettings, Path, bool, int] | None = None
_PARENT: int | None = None  # in a pool worker: the pid of the process that started it
_WRITE = {"busy": False, "doomed": False}  # a write in progress defers the parent-death exit


def _init_worker(review: bytes, root: str, fix: bool, max_file_bytes: int, parent: int) -> None:
    global _WORKER, _PARENT
    _WORKER = (msgspec.json.decode(review, type=ReviewSettings), Path(root), fix, max_file_bytes)
    _PARENT = parent
    signal.signal(signal.SIGTERM, _on_parent_death)
    if sys.platform.startswith("linux"):
        # The kernel sends SIGTERM when the parent dies, even by kill -9. (It tracks the parent
        # thread; the pool starts its workers from the thread that submits work: the main one.)
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, int(signal.SIGTERM),
                                                    0, 0, 0)
    if _parent_gone():  # it died before prctl took effect
        os._exit(1)


def _on_parent_death(signum: int, frame: object) -> None:
    # A SystemExit would be caught by the pool's worker loop, which then blocks on a queue that
    # no one feeds: leave at once, unless a file is being replaced (then right after it).
    if _WRITE["busy"]:
        _WRITE["doomed"] = True
    else:
        os._exit(128 + signum)


def _parent_gone() -> bool:
    return _PARENT is not None and os.getppid() != _PARENT


@contextlib.contextmanager
def _writing() -> Iterator[None]:
    """Hold off a SIGTERM while a file is replaced, so no temporary file is left behind."""
    _WRITE["busy"] = True
    try:
        yield
    finally:
        _WRITE["busy"] = False
        if _WRITE["doomed"]:
            os._exit(128 + signal.SIGTERM)


def _review_chunk(chunk: list[tuple[int, str]]) -> list[tuple[int, FileResult]]:
    assert _WORKER is not None
    review, root, fix, max_file_bytes = _WORKER
    out: list[tuple[int, FileResult]] = []
    for i, path in chunk:
        if _parent_gone():  # no one will read the results: stop before touching another file
            os._exit(1)
        out.append((i, review_file(path, review, root, fix, max_file_bytes=max_file_bytes)))
    return out


def review_paths(
    paths: Sequence[str | Path],
    project: Project,
    *,
    fix: bool = False,
    jobs: int | None = None,
    on_total: Callable[[int], None] | None = None,
    on_result: Callable[[FileResult], None] | None = None,
    cache: ReviewCache | None = None,
    selection: Selection | None = None,
) -> list[FileResult]:
    """Review every file under `paths` (those `selection` keeps); results (problems included)
    in discovery order. `cache` answers for files reviewed before (not with `fix`)."""
    review = project.settings.review
    max_file_bytes = project.settings.max_file_bytes
    found: list[Found] = list(discover(paths, project.root, review.exclude))
    places = list(range(len(found)))
    if selection is not None:
        places = [i for i in places if selection.keeps(found[i], project.root)]
        found = [found[i] for i in places]
        selection.positions = {item.path: place for item, place in zip(found, places, strict=True)}
    if on_total:
        on_total(len(found))
    results: list[FileResult | None] = [None] * len(found)

    def done(i: int, result: FileResult) -> None:
        results[i] = selection.report(result) if selection is not None else result
        if on_result:
            on_result(results[i])  # type: ignore[arg-type]

    todo: list[tuple[int, str]] = []
    for i, item in enumerate(found):
        if item.problem:
            done(i, FileResult(item.path, problem=item.problem))
        else:
            todo.append((i, item.path))
    keys: dict[int, tuple[bytes, tuple[int, int, int]]] = {}
    if cache is not None and not fix:
        todo = _from_cache(todo, project, cache, keys, done)
    jobs = max(1, jobs or available_cores())
    fresh: dict[int, FileResult] = {}

    def reviewed(i: int, result: FileResult) -> None:
        fresh[i] = result
        done(i, result)

    if jobs == 1 or len(todo) < SEQUENTIAL_BELOW:
        for i, path in todo:
            reviewed(i, review_file(path, review, project.root, fix,
                                    max_file_bytes=max_file_bytes))
    else:
        _run_pool(todo, review, project.root, fix, max_file_bytes, jobs, reviewed)
    if cache is not None and keys:
        _to_cache(cache, keys, fresh)
    return [r for r in results if r is not None]


def _identity(path: str) -> tuple[int, int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_ino, st.st_size, st.st_mtime_ns


def _from_cache(todo: list[tuple[int, str]], project: Project, cache: ReviewCache,
                keys: dict[int, tuple[bytes, tuple[int, int, int]]],
                done: Callable[[int, FileResult], None]) -> list[tuple[int, str]]:
    """Answer what the cache holds; the rest (with their keys noted in `keys`) is left to do."""
    run = fingerprint(project.settings)
    for i, path in todo:
        identity = _identity(path)
        data = read_bounded(path, project.settings.max_file_bytes).data
        if data is not None and identity is not None:
            keys[i] = (entry_key(run, path, data), identity)
    hits = cache.get_many((key for key, _ in keys.values()), FileResult)
    left = []
    for i, path in todo:
        hit = hits.get(keys[i][0]) if i in keys else None
        if hit is None:
            left.append((i, path))
        else:
            del keys[i]
            done(i, hit)
    return left


def _to_cache(cache: ReviewCache, keys: dict[int, tuple[bytes, tuple[int, int, int]]],
              fresh: dict[int, FileResult]) -> None:
    """Keep the new results of files that did not change while they were reviewed."""
    for i, (key, identity) in keys.items():
        result = fresh.get(i)
        if (result is not None and result.problem is None and not result.partial
                and _identity(result.path) == identity):
            cache.put(key, result)


def _run_pool(todo: list[tuple[int, str]], review: ReviewSettings, root: Path, fix: bool,
              max_file_bytes: int, jobs: int, reviewed: Callable[[int, FileResult], None]
              ) -> None:
    size = max(1, min(32, len(todo) // (jobs * 8)))
    chunks = [todo[k : k + size] for k in range(0, len(todo), size)]
    initargs = (msgspec.json.encode(review), str(root), fix, max_file_bytes, os.getpid())
    with ProcessPoolExecutor(jobs, initializer=_init_worker, initargs=initargs) as pool:
        futures = {pool.submit(_review_chunk, chunk): chunk for chunk in chunks}
        for future in as_completed(futures):
            try:
                done = future.result()
            except BrokenProcessPool as exc:  # a worker died (killed, out of memory)
                done = [(i, FileResult(p, problem=f"{p}: worker process died ({exc})"))
                        for i, p in futures[future]]
            for i, result in done:
                reviewed(i, result)
