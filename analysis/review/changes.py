"""The lines changed since a git revision (`stagecoder review --diff REF`), from `git diff`.

`changed_lines(ref, cwd)` runs `git diff --unified=0 REF` and returns, for every file with added
or modified lines, the set of those line numbers (1-based, in the file as it is now), keyed by
absolute real path. REF is anything `git diff` takes: a branch (`origin/main`: its tree against
the working tree), or a range (`origin/main...HEAD`: what the branch changed since it left
main). Without a range the working tree counts, and files git does not track yet (and does not
ignore) are changed in full. Deleted lines have no line in the file: they change nothing here.
"""

from __future__ import annotations

import codecs
import os
import re
import subprocess
from dataclasses import dataclass, field

_HUNK = re.compile(rb"^@@ -\d+(?:,\d+)? \+(\d+)(?:,(\d+))? @@")
GIT_TIMEOUT = 120.0  # seconds for one git command


class ChangesError(Exception):
    """git could not say what changed (not a repository, an unknown REF, no git)."""


@dataclass(slots=True)
class Changes:
    """Changed lines by file (absolute real paths); `None` for a file changed in full."""

    ref: str
    files: dict[str, set[int] | None] = field(default_factory=dict)

    def changed(self, path: str) -> bool:
        """Whether `path` has added or modified lines (or is new)."""
        return os.path.realpath(path) in self.files

    def touches(self, path: str, first: int, last: int) -> bool:
        """Whether lines first..last (1-based) of `path` include a changed one."""
        key = os.path.realpath(path)
        if key not in self.files:
            return False
        lines = self.files[key]
        return lines is None or any(n in lines for n in range(first, last + 1))


def _git(args: list[str], cwd: str) -> bytes:
    try:
        done = subprocess.run(["git", "-c", "core.quotePath=false", *args], cwd=cwd,
                              capture_output=True, timeout=GIT_TIMEOUT, check=False)
    except FileNotFoundError:
        raise ChangesError("--diff needs git, which is not installed") from None
    except subprocess.TimeoutExpired:
        raise ChangesError(f"git {args[0]} took more than {GIT_TIMEOUT:g} s") from None
    if done.returncode != 0:
        said = done.stderr.decode("utf-8", "replace").strip().splitlines()
        why = said[0].removeprefix("fatal: ") if said else f"exit status {done.returncode}"
        raise ChangesError(f"git {args[0]} failed: {why}")
    return done.stdout


def _path(raw: bytes) -> str:
    """A path as git prints it in a diff header (C-quoted when it has odd characters)."""
    if raw.startswith(b'"') and raw.endswith(b'"'):
        raw = codecs.escape_decode(raw[1:-1])[0]
    return os.fsdecode(raw)


def parse_diff(patch: bytes, top: str) -> dict[str, set[int] | None]:
    """Added/modified lines per file of a `git diff --unified=0` patch, paths under `top`."""
    files: dict[str, set[int] | None] = {}
    current: set[int] | None = None
    for line in patch.split(b"\n"):
        if line.startswith(b"+++ "):
            target = line[4:].rstrip(b"\r")
            if target == b"/dev/null":  # deleted: nothing of it is left to report on
                current = None
                continue
            name = _path(target)
            name = name[2:] if name.startswith("b/") else name
            current = files.setdefault(os.path.realpath(os.path.join(top, name)), set())
            continue
        match = _HUNK.match(line)
        if match and current is not None:
            start = int(match.group(1))
            count = int(match.group(2)) if match.group(2) is not None else 1
            current.update(range(start, start + count))
    return {path: lines for path, lines in files.items() if lines}


def changed_lines(ref: str, cwd: str) -> Changes:
    """What changed since `ref` in the repository holding `cwd` (ChangesError if git can't)."""
    top = os.path.realpath(_git(["rev-parse", "--show-toplevel"], cwd).decode().strip())
    patch = _git(["diff", "--unified=0", "--no-color", "--no-ext-diff", "-M", ref, "--"], top)
    changes = Changes(ref, dict(parse_diff(patch, top)))
    if ".." not in ref:  # against the working tree: new files count in full
        listed = _git(["ls-files", "-z", "--others", "--exclude-standard"], top)
        for name in filter(None, listed.split(b"\0")):
            changes.files[os.path.realpath(os.path.join(top, os.fsdecode(name)))] = None
    return changes
