"""A tree of files that are bad to read, and the exact sentence stagecoder reports for each.

One builder for the reader's unit tests, the `stagecoder review` CLI tests and the LSP tests:
a FIFO (reading it blocks forever), symlinks to /dev/zero and /dev/urandom (they never end), a
Unix socket, a symlink loop, an unreadable file, a file that vanished, and a regular file whose
only line is 2 MB long (minified code: within `maxFileBytes`, over the line-length guard). The
single helpers (`make_fifo`, `link`, `make_socket`, `make_huge_line`) serve tests that need one.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from pathlib import Path

HUGE_LINE_BYTES = 2_000_000


@dataclass(frozen=True, slots=True)
class BadFile:
    """One bad entry of the tree: its name (relative to the root) and the message it gets."""

    name: str
    kind: str  # fifo, zero, urandom, socket, loop, unreadable, vanished, huge_line
    message: str  # what stagecoder says, with the path shown as `name`
    walked: bool = True  # reported by a directory walk (False: only when named explicitly)

    def path(self, root: Path) -> Path:
        """Where the entry lies under `root`."""
        return root / self.name


def make_fifo(path: Path) -> Path:
    """A named pipe at `path` with no writer: an open for reading, or a read, blocks forever."""
    os.mkfifo(path)
    return path


def link(path: Path, target: str | os.PathLike[str]) -> Path:
    """A symlink at `path` pointing at `target` (a device, itself, anything)."""
    os.symlink(target, path)
    return path


def make_socket(path: Path) -> Path:
    """A Unix socket's file at `path` (bound, then closed: the file stays)."""
    # AF_UNIX paths are limited to about 108 bytes; bind relative to the folder instead.
    cwd = os.getcwd()
    os.chdir(path.parent)
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.bind(path.name)
    finally:
        os.chdir(cwd)
    return path


def make_huge_line(path: Path, size: int = HUGE_LINE_BYTES) -> int:
    """A JavaScript file whose first line is `size` characters (an array literal); its length."""
    items = "0," * ((size - len("var a=[0];")) // 2)
    line = f"var a=[{items}0];"
    line += " " * (size - len(line))
    path.write_text(line + "\nvar b = 1;\n", encoding="utf-8")
    return len(line)


def build_bad_tree(root: Path, *, unreadable: bool = True) -> list[BadFile]:
    """Create every bad entry under `root` (the folder must exist); return them with messages.

    `unreadable=False` leaves the chmod-000 file out (root reads it anyway unless the test drops
    CAP_DAC_OVERRIDE, for example with `setpriv`).
    """
    not_regular = "not a regular file"
    bad = [
        BadFile("fifo.py", "fifo", f"fifo.py: skipped, a FIFO (named pipe), {not_regular}"),
        BadFile("zero.py", "zero",
                f"zero.py: skipped, a character device (/dev/zero), {not_regular}"),
        BadFile("urandom.js", "urandom",
                f"urandom.js: skipped, a character device (/dev/urandom), {not_regular}"),
        BadFile("socket.py", "socket", f"socket.py: skipped, a socket, {not_regular}"),
        BadFile("loop.py", "loop", "loop.py: symlink loop (too many levels of symbolic links)"),
        BadFile("vanished.py", "vanished", "vanished.py: no such file or directory",
                walked=False),
    ]
    make_fifo(root / "fifo.py")
    link(root / "zero.py", "/dev/zero")
    link(root / "urandom.js", "/dev/urandom")
    make_socket(root / "socket.py")
    link(root / "loop.py", "loop.py")
    vanished = root / "vanished.py"
    vanished.write_text("x = 1\n", encoding="utf-8")
    vanished.unlink()
    chars = make_huge_line(root / "huge_line.js")
    bad.append(BadFile("huge_line.js", "huge_line",
                       f"huge_line.js: skipped, line 1 is {chars:,} characters long, over the "
                       "20,000-character limit (minified or generated code)"))
    if unreadable:
        locked = root / "unreadable.py"
        locked.write_text("x = 1\n", encoding="utf-8")
        locked.chmod(0)
        bad.append(BadFile("unreadable.py", "unreadable", "unreadable.py: permission denied"))
    return bad
