"""Batch review: project settings, files analyzed in parallel on every core, safe fixes applied.

`review_paths` is the engine behind `stagecoder review`: it discovers files
(analysis.documents.discover),
reviews each one in a worker process (`review_file`: read, analyze, optionally fix and write
back), and hands each `FileResult` to a callback as it completes (for a progress bar). A bad file
never stops the run: its result carries a `problem` sentence instead of findings. Files are read
through `analysis.documents.reader` (regular files only, `maxFileBytes`, the line-length guard).
Pool workers
die with their parent: a worker never goes on fixing files for a run that no one is waiting for.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import sys
import tomllib
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

import msgspec

from analysis.documents.discover import Found, discover
from analysis.documents.document import Document
from analysis.documents.reader import CONFIG_MAX_BYTES, DEFAULT_MAX_BYTES, read_bounded
from analysis.documents.store import read_source
from analysis.review.checks import analyze, analyze_report
from analysis.review.findings import Finding
from analysis.review.fixing import file_identity, fix_document, write_if_unchanged
from analysis.settings import ReviewSettings, Settings, pyproject_settings, settings_from

SEQUENTIAL_BELOW = 8  # fewer files than this: a process pool costs more than it saves
PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>


class FileResult(msgspec.Struct, rename="camel", omit_defaults=True, frozen=True):
    """What reviewing one file gave: findings, or the problem that stopped it, plus notes."""

    path: str
    findings: list[Finding] = msgspec.field(default_factory=list)
    problem: str | None = None  # the file was not reviewed (an error: exit code 2)
    notes: list[str] = msgspec.field(default_factory=list)  # reviewed, with remarks
    fixed: int = 0  # safe fixes applied and written


@dataclass(slots=True)
class Project:
    """Where settings came from and what they are."""

    root: Path
    settings: Settings = field(default_factory=Settings)
    config: Path | None = None
    problems: list[str] = field(default_factory=list)


def load_project(start: Path, config: Path | None = None) -> Project:
    """Settings from `config`, else the nearest pyproject.toml with `[tool.stagecoder]`."""
    candidates = [config] if config else [d / "pyproject.toml"
                                          for d in [start.resolve(), *start.resolve().parents]]
    for candidate in candidates:
        if candidate is None or (config is None and not candidate.is_file()):
            continue
        read = read_bounded(candidate, CONFIG_MAX_BYTES)
        if read.data is None:
            return Project(start if config else candidate.parent, config=candidate,
                           problems=[read.problem or f"{candidate}: cannot read"])
        try:
            data = tomllib.loads(read.data.decode("utf-8"))
        except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            return Project(candidate.parent, config=candidate,
                           problems=[f"{candidate}: cannot read settings ({exc})"])
        section = data.get("tool", {}).get("stagecoder")
        if section is None and config is None:
            continue
        settings, found = settings_from(pyproject_settings(_hoist_review(section or {})))
        problems = [f"{candidate}: [tool.stagecoder] `{p.key}`: {p.message}" for p in found]
        return Project(candidate.parent, settings, candidate, problems)
    return Project(start)


# Review keys accepted directly under [tool.stagecoder] (as ruff takes `select` under [tool.ruff]).
_REVIEW_KEYS = ("select", "ignore", "exclude", "per-path-ignores", "per_path_ignores")


def _hoist_review(section: dict) -> dict:
    """Move top-level review keys into the `review` table; keys in `review` itself win."""
    top = {k: v for k, v in section.items() if k in _REVIEW_KEYS}
    if not top:
        return section
    rest = {k: v for k, v in section.items() if k not in top}
    review = rest.get("review")
    rest["review"] = {**top, **review} if isinstance(review, dict) else top
    return rest


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
        report = analyze_report(doc, review, path=rel)
        findings = report.findings
        if report.truncated:  # cut short (budget, nesting): say so, keep what was found
            notes.append(f"{path}: {report.truncated}")
        if not fix:
            return FileResult(path, findings, notes=notes)
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
) -> list[FileResult]:
    """Review every file under `paths`; results (problems included) in discovery order."""
    review = project.settings.review
    max_file_bytes = project.settings.max_file_bytes
    found: list[Found] = list(discover(paths, project.root, review.exclude))
    if on_total:
        on_total(len(found))
    results: list[FileResult | None] = [None] * len(found)
    todo: list[tuple[int, str]] = []
    for i, item in enumerate(found):
        if item.problem:
            results[i] = FileResult(item.path, problem=item.problem)
            if on_result:
                on_result(results[i])  # type: ignore[arg-type]
        else:
            todo.append((i, item.path))
    jobs = max(1, jobs or available_cores())
    if jobs == 1 or len(todo) < SEQUENTIAL_BELOW:
        for i, path in todo:
            results[i] = review_file(path, review, project.root, fix,
                                     max_file_bytes=max_file_bytes)
            if on_result:
                on_result(results[i])  # type: ignore[arg-type]
    else:
        _run_pool(todo, review, project.root, fix, max_file_bytes, jobs, results, on_result)
    return [r for r in results if r is not None]


def _run_pool(todo: list[tuple[int, str]], review: ReviewSettings, root: Path, fix: bool,
              max_file_bytes: int, jobs: int, results: list[FileResult | None],
              on_result: Callable[[FileResult], None] | None) -> None:
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
                results[i] = result
                if on_result:
                    on_result(result)
