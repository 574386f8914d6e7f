"""Find the files to review: walk directories, honour .gitignore and excludes, survive bad paths.

Directories are walked in sorted order (deterministic output). `.gitignore` files apply to their
own directory and below, as git applies them, including those between the repository root and
the walked directory. Configured `exclude` globs are relative to the project root. Symlinked
directories are followed once; a link that leads back into its own ancestry is reported as a
loop. Files named explicitly are always reviewed (excludes apply to what a walk finds). FIFOs,
sockets and devices (or links to them) with a source file's name are reported, never yielded as
files to read.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pathspec

from analysis.documents.languages import spec_for
from analysis.documents.reader import (
    CONFIG_MAX_BYTES,
    kind_problem,
    read_text,
    special_problem,
    stat_problem,
)

# Directory names never walked into (as ruff's defaults, plus caches).
DEFAULT_EXCLUDES = (
    ".bzr", ".direnv", ".eggs", ".git", ".hg", ".mypy_cache", ".nox", ".pytest_cache",
    ".ruff_cache", ".svn", ".tox", ".venv", "__pycache__", "__pypackages__", "_build",
    "buck-out", "build", "dist", "node_modules", "site-packages", "venv",
)


@dataclass(frozen=True, slots=True)
class Found:
    """A file to review (`path` as the user will see it) or a path that could not be walked."""

    path: str
    problem: str | None = None  # set: the path is not reviewable; the sentence says why
    explicit: bool = False  # named on the command line (not found by a walk)


@dataclass(frozen=True, slots=True)
class _Ignore:
    base: Path
    spec: pathspec.GitIgnoreSpec


def discover(paths: Sequence[str | Path], root: Path, exclude: Sequence[str] = ()
             ) -> Iterator[Found]:
    """Every reviewable file under `paths` (or a problem per bad path), in a stable order."""
    excluded = pathspec.GitIgnoreSpec.from_lines([*exclude, *(f"{d}/" for d in DEFAULT_EXCLUDES)])
    root = Path(os.path.abspath(root))
    visited: set[tuple[int, int]] = set()
    for raw in paths:
        path = Path(raw)
        shown = str(raw)
        try:
            st = path.stat()
        except OSError as exc:
            yield Found(shown, stat_problem(shown, path, exc), explicit=True)
            continue
        if not stat.S_ISDIR(st.st_mode):
            yield Found(shown, kind_problem(shown, path, st.st_mode), explicit=True)
            continue
        ignores = _ancestor_ignores(path.resolve())
        visited.add((st.st_dev, st.st_ino))
        yield from _walk(path, shown, root, excluded, ignores, [(st.st_dev, st.st_ino)], visited)


def _ancestor_ignores(directory: Path) -> list[_Ignore]:
    """The .gitignore files from the repository root down to (and including) `directory`.

    Patterns that ignore `directory` itself are dropped: a directory named on the command line
    is reviewed (as ruff does), and only the rules about what lies inside it apply.
    """
    chain = [directory, *directory.parents]
    repo = next((d for d in chain if (d / ".git").exists()), None)
    if repo is None:
        return _read_ignore(directory)
    out: list[_Ignore] = []
    for d in reversed(chain[: chain.index(repo) + 1]):
        for ignore in _read_ignore(d):
            if d != directory:
                rel = directory.relative_to(d).as_posix() + "/"
                kept = [p for p in ignore.spec.patterns if not (p.include and p.match_file(rel))]
                ignore = _Ignore(d, pathspec.GitIgnoreSpec(kept))
            out.append(ignore)
    return out


def _read_ignore(directory: Path) -> list[_Ignore]:
    text, _ = read_text(directory / ".gitignore", CONFIG_MAX_BYTES)
    lines = text.splitlines() if text else []  # a missing or unreadable .gitignore ignores nothing
    return [_Ignore(directory, pathspec.GitIgnoreSpec.from_lines(lines))] if lines else []


def _ignored(path: Path, is_dir: bool, ignores: list[_Ignore]) -> bool:
    verdict = None
    for ignore in ignores:  # shallow to deep: the deepest file that has an opinion wins
        try:
            rel = path.relative_to(ignore.base).as_posix()
        except ValueError:
            continue
        result = ignore.spec.check_file(rel + "/" if is_dir else rel)
        if result.include is not None:
            verdict = result.include
    return bool(verdict)


def _excluded(path: Path, is_dir: bool, root: Path, excluded: pathspec.GitIgnoreSpec) -> bool:
    try:
        rel = path.relative_to(root).as_posix()
    except ValueError:
        rel = path.name
    return excluded.match_file(rel + "/" if is_dir else rel) or (
        is_dir and excluded.match_file(path.name + "/"))


def _not_regular(entry: os.DirEntry[str], shown: str, path: Path) -> str | None:
    """None for a regular file (or a link to one); else why this FIFO, socket or device is not."""
    try:
        if entry.is_file():  # the directory entry's type: no system call for a plain file
            return None
    except OSError as exc:
        return stat_problem(shown, path, exc)
    return special_problem(shown, path)


def _walk(
    directory: Path, shown: str, root: Path, excluded: pathspec.GitIgnoreSpec,
    ignores: list[_Ignore], ancestry: list[tuple[int, int]], visited: set[tuple[int, int]],
) -> Iterator[Found]:
    try:
        entries = sorted(os.scandir(directory), key=lambda e: e.name)
    except OSError as exc:
        yield Found(shown, stat_problem(shown, directory, exc))
        return
    for entry in entries:
        path = directory / entry.name
        child_shown = entry.name if shown in (".", "./") else os.path.join(shown, entry.name)
        try:
            is_dir = entry.is_dir()  # follows symlinks
            st = entry.stat() if is_dir else None
        except OSError as exc:
            if exc.errno == errno.ELOOP or spec_for(None, entry.name) is not None:
                yield Found(child_shown, stat_problem(child_shown, path, exc))
            continue
        if entry.is_symlink() and not is_dir and not os.path.exists(path):
            if spec_for(None, entry.name) is not None:
                yield Found(child_shown, stat_problem(child_shown, path,
                                                      OSError(errno.ENOENT, "broken")))
            continue
        absolute = Path(os.path.abspath(path))
        if _ignored(absolute, is_dir, ignores) or _excluded(absolute, is_dir, root, excluded):
            continue
        if not is_dir:
            if spec_for(None, entry.name) is not None:
                yield Found(child_shown, _not_regular(entry, child_shown, path))
            continue
        assert st is not None
        key = (st.st_dev, st.st_ino)
        if key in ancestry:
            yield Found(child_shown, f"{child_shown}: symlink loop (it leads back to "
                                     f"{os.path.realpath(path)}); not followed")
            continue
        if key in visited:
            continue  # reached before through another link: do not review it twice
        visited.add(key)
        yield from _walk(path, child_shown, root, excluded, ignores + _read_ignore(absolute),
                         [*ancestry, key], visited)
