"""The one bounded reader for every file stagecoder opens from disk (review, index, settings, LSP).

Only regular files are read, after resolving symlinks: a FIFO would block the reader forever and
a device such as /dev/zero never ends, so both, and sockets, are reported with a sentence and
skipped. The file is opened with O_NONBLOCK (a FIFO swapped in after the check cannot block the
open) and checked again on the open descriptor, then read with a byte bound: at most
`max_bytes + 1` bytes, whatever `st_size` says. Source files also get a binary check and a
line-length guard: one line over `MAX_LINE_CHARS` characters (minified bundles, generated data)
makes parsing and every rule costly, so such a file is skipped with one message naming the reason.
A Python file's encoding declaration (PEP 263: `# -*- coding: koi8-r -*-` on its first or
second line) is honoured: the text is decoded with that codec and handed on as UTF-8, the
encoding everything downstream works in. `generated_marker` tells generated files (a Go
`// Code generated ... DO NOT EDIT.` line, `@generated`, a webpack bundle, build output ending
in a source-map comment) from the ones people edit.
"""

from __future__ import annotations

import codecs
import errno
import os
import re
import stat
from dataclasses import dataclass

DEFAULT_MAX_BYTES = 5_000_000  # the `maxFileBytes` setting's default
MAX_LINE_CHARS = 20_000  # longest line a source file may have (documented in README, Settings)
CONFIG_MAX_BYTES = 1_000_000  # a pyproject.toml or .gitignore larger than this is not one
BINARY_PROBE_BYTES = 8192  # a NUL byte in this many leading bytes marks a binary file (as git)
_CHUNK = 1 << 20

_KINDS = (
    (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
)


@dataclass(frozen=True, slots=True)
class Read:
    """A file's bytes, or the sentence that says why it was not read (then `data` is None)."""

    data: bytes | None
    problem: str | None = None


def stat_problem(shown: str, path: str | os.PathLike[str], exc: OSError) -> str:
    """The user's sentence for an OSError raised while stating or opening `path`."""
    if exc.errno == errno.ELOOP:
        return f"{shown}: symlink loop (too many levels of symbolic links)"
    if exc.errno == errno.ENOENT:
        if os.path.islink(path):
            return f"{shown}: broken symlink (its target does not exist)"
        return f"{shown}: no such file or directory"
    if exc.errno == errno.EACCES:
        return f"{shown}: permission denied"
    if exc.errno == errno.EISDIR:
        return f"{shown}: is a directory"
    if exc.errno == errno.ENOTDIR:
        return f"{shown}: not a directory (a part of the path is a file)"
    return f"{shown}: cannot read ({exc.strerror or exc})"


def kind_problem(shown: str, path: str | os.PathLike[str], mode: int) -> str | None:
    """None for a regular file, else why a file of this type (`st_mode`) is not read."""
    if stat.S_ISREG(mode):
        return None
    if stat.S_ISDIR(mode):
        return f"{shown}: is a directory"
    kind = next((name for test, name in _KINDS if test(mode)), "not a regular file")
    if os.path.islink(path):
        kind += f" ({os.path.realpath(path)})"
    return f"{shown}: skipped, {kind}, not a regular file"


def special_problem(shown: str, path: str | os.PathLike[str]) -> str | None:
    """None for a regular file (symlinks followed), else the sentence naming what it is."""
    try:
        return kind_problem(shown, path, os.stat(path).st_mode)
    except OSError as exc:
        return stat_problem(shown, path, exc)


def size_problem(shown: str, size: int, max_bytes: int) -> str:
    """The sentence for a file of `size` bytes over the `maxFileBytes` limit."""
    return f"{shown}: skipped, {_size(size)} is over the {_size(max_bytes)} limit (maxFileBytes)"


def _size(n: int) -> str:
    if n >= 1_000_000:
        return f"{n / 1e6:.1f} MB"
    return f"{n / 1e3:.1f} KB" if n >= 1000 else f"{n} bytes"


def read_bounded(path: str | os.PathLike[str], max_bytes: int = DEFAULT_MAX_BYTES,
                 shown: str | None = None) -> Read:
    """A regular file's bytes, at most `max_bytes` of them; never blocks, never raises OSError."""
    shown = str(path) if shown is None else shown
    try:
        st = os.stat(path)  # follows symlinks: a link to /dev/zero is a character device
    except OSError as exc:
        return Read(None, stat_problem(shown, path, exc))
    problem = kind_problem(shown, path, st.st_mode)
    if problem is None and st.st_size > max_bytes:
        problem = size_problem(shown, st.st_size, max_bytes)
    if problem is not None:
        return Read(None, problem)
    flags = os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOCTTY", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        return Read(None, stat_problem(shown, path, exc))
    try:
        # The path may have been swapped (a FIFO, a device) between os.stat and os.open.
        opened = os.fstat(fd)
        problem = kind_problem(shown, path, opened.st_mode)
        if problem is None and opened.st_size > max_bytes:
            problem = size_problem(shown, opened.st_size, max_bytes)
        if problem is not None:
            return Read(None, problem)
        data = _read_at_most(fd, max_bytes + 1, opened.st_size)
    except OSError as exc:
        return Read(None, stat_problem(shown, path, exc))
    finally:
        os.close(fd)
    if len(data) > max_bytes:  # it grew after the stat
        return Read(None, f"{shown}: skipped, it grew past the {_size(max_bytes)} limit "
                          f"(maxFileBytes) while being read")
    return Read(data)


def _read_at_most(fd: int, limit: int, expected: int) -> bytes:
    # One read of the expected size (plus one byte to see the end), then bounded chunks: never
    # ask os.read for more than the file should hold (it allocates what it is asked for).
    chunks: list[bytes] = []
    total = 0
    want = min(limit, expected + 1)
    while total < limit:
        chunk = os.read(fd, max(1, min(want, limit - total)))
        if not chunk:
            break
        chunks.append(chunk)
        total += len(chunk)
        want = _CHUNK
    return b"".join(chunks)


def read_text(path: str | os.PathLike[str], max_bytes: int = DEFAULT_MAX_BYTES,
              shown: str | None = None) -> tuple[str | None, str | None]:
    """(text, None) of a small UTF-8 file (bad bytes replaced), or (None, why it was not read)."""
    read = read_bounded(path, max_bytes, shown)
    if read.data is None:
        return None, read.problem
    return read.data.decode("utf-8", "replace"), None


def looks_binary(head: bytes) -> bool:
    """True for data that is not text (a NUL byte in the first block, as git decides)."""
    return b"\x00" in head[:BINARY_PROBE_BYTES]


def long_line(data: bytes, max_chars: int) -> tuple[int, int] | None:
    """(1-based number, length in characters) of the first line over `max_chars`, or None."""
    if len(data) <= max_chars:
        return None
    lines = data.split(b"\n")
    if max(map(len, lines)) <= max_chars:  # bytes >= characters: nothing can be over
        return None
    for number, line in enumerate(lines, 1):
        if len(line) > max_chars:
            chars = len(line.decode("utf-8", "replace"))
            if chars > max_chars:
                return number, chars
    return None


def read_code(path: str | os.PathLike[str], max_bytes: int = DEFAULT_MAX_BYTES,
              max_line_chars: int = MAX_LINE_CHARS, shown: str | None = None) -> Read:
    """A source file's bytes: regular, within `max_bytes`, not binary, no line too long."""
    shown = str(path) if shown is None else shown
    read = read_bounded(path, max_bytes, shown)
    if read.data is None:
        return read
    if looks_binary(read.data):
        return Read(None, f"{shown}: skipped, binary file")
    long = long_line(read.data, max_line_chars)
    if long is not None:
        number, chars = long
        return Read(None, f"{shown}: skipped, line {number} is {chars:,} characters long, over "
                          f"the {max_line_chars:,}-character limit (minified or generated code)")
    if str(path).endswith((".py", ".pyi", ".pyw")):
        return Read(as_utf8(read.data))
    return read


_CODING = re.compile(rb"^[ \t\f]*#.*?coding[:=][ \t]*([-\w.]+)")
_GO_GENERATED = re.compile(rb"^// Code generated .* DO NOT EDIT\.\r?$", re.M)
_SOURCE_MAP = re.compile(rb"^//# sourceMappingURL=\S+\s*$", re.M)
_AT_GENERATED = re.compile(rb"^[ \t]*(#|//|/\*|\*).*@generated\b", re.M)
# The file's leading comment saying so: "/* Jison generated parser */", "# This file is
# generated by tools/make.py", "# Autogenerated from ...". Only the comment block that opens the
# file counts (documentation further down says "generated by" about other things).
_SAYS_GENERATED = re.compile(
    rb"^[ \t]*(#|//|/\*+|\*)[ \t!]*(this (file|code|module) (is|was|has been) "
    rb"(auto-?)?generated|(auto-?)?generated (by|from|with)\b|\w+ generated (parser|code|file)"
    rb"|do not edit)", re.I)
# Rollup's UMD wrapper (its parameter names; hand-written UMD modules use their own).
_ROLLUP_UMD = re.compile(rb"^;?\(function \(global, factory\) \{\s*$", re.M)
HEADER_BYTES = 1024  # a header comment is looked for in this many leading bytes
GENERATED_HEAD = 8192  # generated-file markers are looked for in this many leading bytes


def declared_encoding(data: bytes) -> str | None:
    """The codec a PEP 263 declaration names on the first or second line (normalised, e.g.
    "koi8-r", "utf-8"), or None when there is none or Python would not know the name."""
    if data.startswith(codecs.BOM_UTF8):
        return "utf-8"
    for number, line in enumerate(data.split(b"\n", 2)[:2]):
        found = _CODING.match(line)
        if found:
            try:
                return codecs.lookup(found.group(1).decode("ascii")).name
            except (LookupError, UnicodeDecodeError):
                return None
        if number == 0 and line.strip() and not line.lstrip().startswith(b"#"):
            return None  # the second line counts only after a comment or blank first line
    return None


def as_utf8(data: bytes) -> bytes:
    """Python source re-encoded as UTF-8 when it declares another encoding (unchanged when it
    declares none, declares UTF-8, or does not decode with the codec it names)."""
    encoding = declared_encoding(data)
    if encoding is None or encoding == "utf-8":
        return data
    try:
        return data.decode(encoding).encode("utf-8")
    except (UnicodeDecodeError, LookupError):
        return data


def _leading_comment_says_generated(head: bytes) -> bool:
    in_block = False
    for line in head.split(b"\n"):
        stripped = line.strip()
        if not stripped or stripped.startswith(b"#!"):
            continue
        if in_block or stripped.startswith((b"#", b"//", b"/*", b"*")):
            if _SAYS_GENERATED.match(line):
                return True
            in_block = (in_block or stripped.startswith(b"/*")) and b"*/" not in stripped
            continue
        return False  # the first line of code: the leading comment block is over
    return False


def generated_marker(data: bytes) -> str | None:
    """Why a file looks generated (a short phrase for the user), or None when it does not."""
    head = data[:GENERATED_HEAD]
    if _GO_GENERATED.search(head):
        return "a `// Code generated ... DO NOT EDIT.` line"
    if _AT_GENERATED.search(head):
        return "an `@generated` marker"
    if _leading_comment_says_generated(head[:HEADER_BYTES]):
        return "its header comment says so"
    if b"webpackBootstrap" in head:
        return "a webpack bundle"
    if _ROLLUP_UMD.search(head):
        return "a rollup UMD bundle"
    if _SOURCE_MAP.search(data[-512:]):
        return "build output with a source map"
    return None

