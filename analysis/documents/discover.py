"""The one file walker: the source files under a tree, for `stagecoder review` and the index.

Directories are walked in sorted order (deterministic output). `.gitignore` files apply to their
own directory and below, as git applies them, including those between the repository root and
the walked directory. `DEFAULT_EXCLUDES` (below) and the configured `exclude` globs are
gitignore patterns relative to the project root; the configured ones come last, so `!vendor/`
walks a default-excluded folder again. A folder holding `pyvenv.cfg` is a virtual environment
under any name and is not walked. Symlinked directories are followed once; a link that leads
back into its own ancestry is reported as a loop. Paths named explicitly are always walked
(excludes apply to what a walk finds). FIFOs, sockets and devices (or links to them) with a
source file's name are reported, never yielded as files to read. `walks_to` answers, for one
path (a file-watch event), whether a walk would have found it.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pathspec

from analysis.documents.languages import supported_extensions
from analysis.documents.reader import (
    CONFIG_MAX_BYTES,
    kind_problem,
    read_text,
    special_problem,
    stat_problem,
)

# What no walk goes into: ruff's default excludes, plus Python's bytecode caches and the usual
# homes of vendored code and build output in other ecosystems (Go/PHP/Ruby `vendor`, Cargo and
# Maven `target`, Bower). Gitignore patterns: a trailing "/" matches folders only; a pattern
# without one (such as "*.min.js") matches files too. Extend here: review and the index use it.
DEFAULT_EXCLUDES = (
    ".bzr/", ".direnv/", ".eggs/", ".git/", ".git-rewrite/", ".hg/", ".ipynb_checkpoints/",
    ".mypy_cache/", ".nox/", ".pants.d/", ".pyenv/", ".pytest_cache/", ".pytype/",
    ".ruff_cache/", ".svn/", ".tox/", ".venv/", ".vscode/", "__pypackages__/", "_build/",
    "buck-out/", "build/", "dist/", "node_modules/", "site-packages/", "venv/",
    # beyond ruff's list
    "__pycache__/", "bower_components/", "target/", "vendor/",
    # minified and bundled JavaScript: build output, not what anyone edits (issue 12)
    "*.min.js", "*.min.mjs", "*.min.cjs", "*.bundle.js", "*.bundle.mjs",
)
VENV_MARKER = "pyvenv.cfg"  # written by `python -m venv` and virtualenv into the env's root


@dataclass(frozen=True, slots=True)
class Found:
    """A file to read (`path` as the user will see it) or a path that could not be walked."""

    path: str
    problem: str | None = None  # set: the path is not reviewable; the sentence says why
    explicit: bool = False  # named on the command line (not found by a walk)


# The walk holds paths as strings: pathlib objects for every entry cost it half its time.

@dataclass(frozen=True, slots=True)
class _Ignore:
    base: str  # the folder holding the .gitignore, absolute, with a trailing "/"
    spec: pathspec.GitIgnoreSpec


class _Excludes:
    """`DEFAULT_EXCLUDES` then the configured globs, relative to the project root."""

    def __init__(self, root: str, exclude: Sequence[str]) -> None:
        self.root = _slash(root)
        # A plain folder name ("vendor/") is a set lookup on each folder's name (the walk never
        # enters an excluded folder, so its name is all that can match); the rest is pathspec.
        # A negation ("!vendor/") needs the patterns in order: then pathspec does all of it.
        negates = any(p.lstrip().startswith("!") for p in exclude)
        plain = set() if negates else {p[:-1] for p in DEFAULT_EXCLUDES if _plain_folder(p)}
        rest = [p for p in DEFAULT_EXCLUDES if p[:-1] not in plain] + list(exclude)
        self.names = frozenset(plain)
        self.spec = pathspec.GitIgnoreSpec.from_lines(rest) if rest else None

    def __call__(self, absolute: str, name: str, is_dir: bool) -> bool:
        if is_dir and name in self.names:
            return True
        if self.spec is None:
            return False
        rel = absolute[len(self.root):] if absolute.startswith(self.root) else name
        if is_dir:
            return self.spec.match_file(rel + "/") or self.spec.match_file(name + "/")
        return self.spec.match_file(rel)


def _plain_folder(pattern: str) -> bool:
    name = pattern[:-1]
    return pattern.endswith("/") and bool(name) and not any(c in name for c in "*?[]!/\\")


def _slash(folder: str) -> str:
    return folder if folder.endswith("/") else folder + "/"


_SOURCE_EXTENSIONS = supported_extensions()


def _is_source(name: str) -> bool:
    """A file name with a grammar (as `spec_for(None, name)`, without building a PurePath)."""
    return os.path.splitext(name)[1].lower() in _SOURCE_EXTENSIONS


def discover(paths: Sequence[str | Path], root: str | Path, exclude: Sequence[str] = ()
             ) -> Iterator[Found]:
    """Every source file under `paths` (or a problem per bad path), in a stable order."""
    excluded = _Excludes(os.path.abspath(root), exclude)
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
        absolute = os.path.abspath(path)
        ignores = _ancestor_ignores(Path(absolute))
        visited.add((st.st_dev, st.st_ino))
        yield from _walk(absolute, str(path), shown, excluded, ignores,
                         [(st.st_dev, st.st_ino)], visited, named=True)


def walks_to(path: str | os.PathLike[str], root: str | os.PathLike[str],
             exclude: Sequence[str] = ()) -> bool:
    """True when walking `root` would yield the file `path` (same excludes, same .gitignores)."""
    file = os.path.abspath(path)
    base = os.path.abspath(root)
    if not file.startswith(_slash(base)) or not _is_source(os.path.basename(file)):
        return False
    parts = file[len(_slash(base)):].split("/")
    folders = [os.path.join(base, *parts[:i]) for i in range(1, len(parts))]
    excluded = _Excludes(base, exclude)
    # Name-only tests first: an `npm install` floods a watcher with node_modules/ events.
    if any(excluded(d, os.path.basename(d), True) for d in folders) or \
            excluded(file, parts[-1], False):
        return False
    ignores = _ancestor_ignores(Path(base))
    for folder in folders:
        if _ignored(folder, True, ignores) or os.path.isfile(os.path.join(folder, VENV_MARKER)):
            return False
        ignores = ignores + _read_ignore(folder)
    return not _ignored(file, False, ignores)


def _ancestor_ignores(directory: Path) -> list[_Ignore]:
    """The .gitignore files from the repository root down to (and including) `directory`.

    Patterns that ignore `directory` itself are dropped: a directory named on the command line
    is reviewed (as ruff does), and only the rules about what lies inside it apply.
    """
    chain = [directory, *directory.parents]
    repo = next((d for d in chain if (d / ".git").exists()), None)
    if repo is None:
        return _read_ignore(str(directory))
    out: list[_Ignore] = []
    for d in reversed(chain[: chain.index(repo) + 1]):
        for ignore in _read_ignore(str(d)):
            if d != directory:
                rel = directory.relative_to(d).as_posix() + "/"
                kept = [p for p in ignore.spec.patterns if not (p.include and p.match_file(rel))]
                ignore = _Ignore(ignore.base, pathspec.GitIgnoreSpec(kept))
            out.append(ignore)
    return out


def _read_ignore(directory: str) -> list[_Ignore]:
    text, _ = read_text(os.path.join(directory, ".gitignore"), CONFIG_MAX_BYTES)
    lines = text.splitlines() if text else []  # a missing or unreadable .gitignore ignores nothing
    if not lines:
        return []
    return [_Ignore(_slash(directory), pathspec.GitIgnoreSpec.from_lines(lines))]


def _ignored(absolute: str, is_dir: bool, ignores: list[_Ignore]) -> bool:
    verdict = None
    for ignore in ignores:  # shallow to deep: the deepest file that has an opinion wins
        if not absolute.startswith(ignore.base):
            continue
        rel = absolute[len(ignore.base):]
        result = ignore.spec.check_file(rel + "/" if is_dir else rel)
        if result.include is not None:
            verdict = result.include
    return bool(verdict)


def _not_regular(entry: os.DirEntry[str], shown: str, path: str) -> str | None:
    """None for a regular file (or a link to one); else why this FIFO, socket or device is not."""
    try:
        if entry.is_file():  # the directory entry's type: no system call for a plain file
            return None
    except OSError as exc:
        return stat_problem(shown, path, exc)
    return special_problem(shown, path)


def _walk(
    absolute: str, directory: str, shown: str, excluded: _Excludes, ignores: list[_Ignore],
    ancestry: list[tuple[int, int]], visited: set[tuple[int, int]], named: bool = False,
) -> Iterator[Found]:
    """Walk one folder: `absolute` for the rules, `directory` to open, `shown` to the user."""
    try:
        entries = sorted(os.scandir(directory), key=lambda e: e.name)
    except OSError as exc:
        yield Found(shown, stat_problem(shown, directory, exc))
        return
    if not named and any(e.name == VENV_MARKER for e in entries):
        return  # a virtual environment, whatever its folder is called
    for entry in entries:
        name = entry.name
        path = entry.path
        child_shown = name if shown in (".", "./") else os.path.join(shown, name)
        source = _is_source(name)
        try:
            is_dir = entry.is_dir()  # follows symlinks
            st = entry.stat() if is_dir else None
        except OSError as exc:
            if exc.errno == errno.ELOOP or source:
                yield Found(child_shown, stat_problem(child_shown, path, exc))
            continue
        if not is_dir and not source:
            continue  # not a language we read: no need to ask the ignore rules
        child = os.path.join(absolute, name)
        if _ignored(child, is_dir, ignores) or excluded(child, name, is_dir):
            continue
        if not is_dir:
            if entry.is_symlink() and not os.path.exists(path):
                yield Found(child_shown, stat_problem(child_shown, path,
                                                      OSError(errno.ENOENT, "broken")))
            else:
                yield Found(child_shown, _not_regular(entry, child_shown, path))
            continue
        assert st is not None
        key = (st.st_dev, st.st_ino)
        if key in ancestry:
            yield Found(child_shown, f"{child_shown}: symlink loop (it leads back to "
                                     f"{os.path.realpath(path)}); not followed")
            continue
        if key in visited:
            continue  # reached before through another link: do not read it twice
        visited.add(key)
        yield from _walk(child, path, child_shown, excluded, ignores + _read_ignore(child),
                         [*ancestry, key], visited)
