"""The bounded reader (analysis.documents.reader): regular files only, a byte bound whatever
st_size says,
no blocking open, binary and line-length checks, and the same sentences through every caller."""

from __future__ import annotations

import os
import threading
from pathlib import Path
from urllib.parse import quote

import pytest

import analysis.documents.reader as files
from analysis.documents.reader import read_bounded, read_code
from analysis.documents.store import DocumentStore, path_to_uri, read_source
from analysis.index.workspace_index import SymbolIndex
from tests.fakes.bad_files import build_bad_tree, make_fifo

pytestmark = pytest.mark.timeout(60)  # a reader that blocks would hang the run: fail instead


def _bad_tree(tmp_path: Path) -> list:
    # As root a chmod-000 file stays readable: the CLI tests cover it with setpriv.
    return build_bad_tree(tmp_path, unreadable=os.geteuid() != 0)


def test_every_bad_entry_gets_its_sentence_and_nothing_is_read(tmp_path: Path) -> None:
    bad = _bad_tree(tmp_path)
    got = {b.name: read_code(b.path(tmp_path), shown=b.name) for b in bad}
    assert {name: (r.data, r.problem) for name, r in got.items()} == \
        {b.name: (None, b.message) for b in bad}


def test_read_source_and_the_document_store_say_the_same(tmp_path: Path) -> None:
    bad = {b.kind: b for b in _bad_tree(tmp_path)}
    fifo, zero = bad["fifo"].path(tmp_path), bad["zero"].path(tmp_path)
    loaded = read_source(fifo, shown="fifo.py")
    assert (loaded.document, loaded.problem) == (None, bad["fifo"].message)
    store = DocumentStore()  # LSP: diagnostics of a file that is not open read it from disk
    for path, kind in ((fifo, "fifo"), (zero, "zero")):
        result = store.load("file://" + quote(str(path)))  # the link's URI, not its target's
        assert result.document is None
        assert result.problem == bad[kind].message.replace(bad[kind].name, str(path), 1)
    assert store.load(path_to_uri(zero)).problem == \
        "/dev/zero: skipped, a character device, not a regular file"


def test_a_regular_file_reads_whole(tmp_path: Path) -> None:
    path = tmp_path / "ok.py"
    path.write_bytes(b"x = 1\n" * 1000)
    assert read_bounded(path, 6000) == files.Read(b"x = 1\n" * 1000)
    assert read_bounded(path, 5000).problem == \
        f"{path}: skipped, 6.0 KB is over the 5.0 KB limit (maxFileBytes)"


def test_the_byte_bound_holds_when_st_size_lies(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    # Files in /proc (and files that grow while read) report fewer bytes than they hold.
    path = tmp_path / "grows.py"
    path.write_bytes(b"#" * 3_000_000)
    real_stat, real_fstat, real_read = os.stat, os.fstat, os.read
    asked: list[int] = []

    def zero_size(result: os.stat_result) -> os.stat_result:
        fields = list(result)
        fields[6] = 0  # st_size
        return os.stat_result(fields)

    monkeypatch.setattr(files.os, "stat", lambda p, *a, **k: zero_size(real_stat(p, *a, **k)))
    monkeypatch.setattr(files.os, "fstat", lambda fd: zero_size(real_fstat(fd)))

    def counting_read(fd: int, n: int) -> bytes:
        asked.append(n)
        return real_read(fd, n)

    monkeypatch.setattr(files.os, "read", counting_read)
    result = read_bounded(path, 1_000_000, shown="grows.py")
    assert result == files.Read(None, "grows.py: skipped, it grew past the 1.0 MB limit "
                                      "(maxFileBytes) while being read")
    assert sum(asked) <= 1_000_001


def test_a_fifo_swapped_in_after_the_check_cannot_block_the_open(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    regular = tmp_path / "regular.py"
    regular.write_text("x = 1\n")
    fifo = make_fifo(tmp_path / "swapped.py")
    real_stat = os.stat
    # os.stat sees the regular file (the check passes); os.open then meets the FIFO.
    monkeypatch.setattr(files.os, "stat", lambda p, *a, **k: real_stat(regular))
    out: list[files.Read] = []
    reader = threading.Thread(target=lambda: out.append(read_bounded(fifo, shown="swapped.py")))
    reader.start()
    reader.join(10)
    if reader.is_alive():  # release the blocked open so the test run can go on
        with open(fifo, "wb"):
            pass
        reader.join()
        pytest.fail("read_bounded blocked on a FIFO")
    assert out == [files.Read(None, "swapped.py: skipped, a FIFO (named pipe), "
                                    "not a regular file")]


def test_a_file_that_vanishes_between_stat_and_open(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "gone.py"
    path.write_text("x = 1\n")
    real_open = os.open

    def vanish_then_open(p: str, flags: int, *args: int) -> int:
        os.unlink(p)
        return real_open(p, flags, *args)

    monkeypatch.setattr(files.os, "open", vanish_then_open)
    assert read_bounded(path, shown="gone.py").problem == "gone.py: no such file or directory"


def test_binary_and_directories(tmp_path: Path) -> None:
    (tmp_path / "bin.py").write_bytes(b"\x7fELF\x00\x01")
    assert read_code(tmp_path / "bin.py", shown="bin.py").problem == "bin.py: skipped, binary file"
    assert read_code(tmp_path, shown="dir").problem == "dir: is a directory"


def test_the_line_guard_counts_characters_and_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "wide.py"
    path.write_text("x = 1\ns = '" + "é" * 19_990 + "'\n", encoding="utf-8")  # ~40 KB of bytes
    assert read_code(path).problem is None
    path.write_text("x = 1\ns = '" + "é" * 20_000 + "'\n", encoding="utf-8")
    assert read_code(path, shown="wide.py").problem == (
        "wide.py: skipped, line 2 is 20,006 characters long, over the 20,000-character limit "
        "(minified or generated code)")
    assert read_code(path, max_line_chars=30_000).problem is None


def test_the_workspace_index_skips_bad_files_and_keeps_the_good(tmp_path: Path) -> None:
    _bad_tree(tmp_path)
    (tmp_path / "good.py").write_text("def helper():\n    return 1\n")
    index = SymbolIndex()
    assert index.build([tmp_path]) == 1
    assert [s.name for s in index.lookup("helper")] == ["helper"]
    assert any("huge_line.js: skipped, line 1 is" in p for p in index.problems)
