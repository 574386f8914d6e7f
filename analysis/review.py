"""Batch review: project settings, files analyzed in parallel on every core, safe fixes applied.

`review_paths` is the engine behind `stagecoder review`: it discovers files (analysis.walk),
reviews each one in a worker process (`review_file`: read, analyze, optionally fix and write
back), and hands each `FileResult` to a callback as it completes (for a progress bar). A bad file
never stops the run: its result carries a `problem` sentence instead of findings.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

import msgspec

from analysis.checks import analyze
from analysis.document import Document
from analysis.findings import Finding
from analysis.fixing import file_identity, fix_document, write_if_unchanged
from analysis.settings import ReviewSettings, Settings, pyproject_settings, settings_from
from analysis.walk import Found, discover
from analysis.workspace import read_source

SEQUENTIAL_BELOW = 8  # fewer files than this: a process pool costs more than it saves


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
        if candidate is None or not candidate.is_file():
            if config is not None:
                return Project(start, problems=[f"{config}: no such file"])
            continue
        try:
            data = tomllib.loads(candidate.read_text("utf-8"))
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
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


def review_file(path: str, review: ReviewSettings, root: Path, fix: bool = False) -> FileResult:
    """Read, analyze and (with `fix`) repair one file; never raises for a bad file."""
    try:
        identity = file_identity(path) if fix else None
    except OSError:
        identity = None
    uri = "file://" + quote(os.path.abspath(path))  # no resolve(): spares a syscall per part
    loaded = read_source(Path(path), uri, max_bytes=review.max_file_bytes)
    doc = loaded.document
    if doc is None:
        return FileResult(path, problem=loaded.problem)
    notes = [loaded.problem] if loaded.problem else []
    if doc.spec is None:
        return FileResult(path, notes=[f"{path}: skipped, no grammar for this file type"])
    rel = _relative(path, root)
    try:
        findings = analyze(doc, review, path=rel)
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

_WORKER: tuple[ReviewSettings, Path, bool] | None = None


def _init_worker(review: bytes, root: str, fix: bool) -> None:
    global _WORKER
    _WORKER = (msgspec.json.decode(review, type=ReviewSettings), Path(root), fix)


def _review_chunk(chunk: list[tuple[int, str]]) -> list[tuple[int, FileResult]]:
    assert _WORKER is not None
    review, root, fix = _WORKER
    return [(i, review_file(path, review, root, fix)) for i, path in chunk]


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
            results[i] = review_file(path, review, project.root, fix)
            if on_result:
                on_result(results[i])  # type: ignore[arg-type]
    else:
        _run_pool(todo, review, project.root, fix, jobs, results, on_result)
    return [r for r in results if r is not None]


def _run_pool(todo: list[tuple[int, str]], review: ReviewSettings, root: Path, fix: bool,
              jobs: int, results: list[FileResult | None],
              on_result: Callable[[FileResult], None] | None) -> None:
    size = max(1, min(32, len(todo) // (jobs * 8)))
    chunks = [todo[k : k + size] for k in range(0, len(todo), size)]
    with ProcessPoolExecutor(jobs, initializer=_init_worker,
                             initargs=(msgspec.json.encode(review), str(root), fix)) as pool:
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
