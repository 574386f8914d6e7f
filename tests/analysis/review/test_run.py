"""The batch engine: discovery (.gitignore, excludes, symlinks, bad paths), per-file review of
bad input, parallel runs, and fixes that never lose a concurrent edit (the settings loader has
its own tests in tests/analysis/test_project.py)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import analysis.review.run as review_mod
from analysis.documents.discover import discover
from analysis.project import Project, load_project
from analysis.review.run import FileResult, review_file, review_paths
from analysis.settings import ReviewSettings
from tests.fakes.bad_files import build_bad_tree, make_fifo, make_socket

# SC305 (an unsafe fix) and SC301 (a safe fix); SC202 on `list` is a preview rule, off here.
BAD = 'def f(list):\n    return list is "x"\n    print("dead")\n'


def _tree(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")


def _found(root: Path, paths: list[str] | None = None, exclude: tuple[str, ...] = ()) -> list:
    cwd = os.getcwd()
    os.chdir(root)
    try:
        return list(discover(paths or ["."], root, exclude))
    finally:
        os.chdir(cwd)


def test_discovery_respects_gitignore_excludes_and_languages(tmp_path: Path) -> None:
    (tmp_path / ".git").mkdir()
    _tree(tmp_path, {
        ".gitignore": "build_out/\n*.gen.py\n!keep.gen.py\n",
        "a.py": "", "b.txt": "", "keep.gen.py": "", "drop.gen.py": "",
        "build_out/x.py": "", "node_modules/m.js": "", ".venv/v.py": "",
        "src/.gitignore": "local.go\n", "src/local.go": "", "src/main.go": "",
        "vendor/v.ts": "", "web/app.tsx": "",
    })
    found = _found(tmp_path, exclude=("vendor/",))
    assert [f.path for f in found] == ["a.py", "keep.gen.py", "src/main.go", "web/app.tsx"]
    assert all(f.problem is None for f in found)


def test_gitignore_above_the_walked_directory_applies(tmp_path: Path) -> None:
    (tmp_path / ".git").mkdir()
    _tree(tmp_path, {".gitignore": "generated/\n", "pkg/generated/g.py": "", "pkg/ok.py": ""})
    found = _found(tmp_path, ["pkg"])
    assert [f.path for f in found] == ["pkg/ok.py"]


def test_bad_paths_each_get_one_clear_problem(tmp_path: Path) -> None:
    _tree(tmp_path, {"ok.py": "", "sub/x.py": ""})
    os.symlink("..", tmp_path / "sub" / "up")  # a directory loop
    os.symlink("self.py", tmp_path / "self.py")  # a file loop
    os.symlink("missing.py", tmp_path / "dangling.py")
    found = _found(tmp_path, [".", "nope"])
    problems = {f.path: f.problem for f in found if f.problem}
    assert "symlink loop" in problems["sub/up"]
    assert "symlink loop" in problems["self.py"]
    assert "broken symlink" in problems["dangling.py"]
    assert problems["nope"] == "nope: no such file or directory"
    assert sorted(f.path for f in found if not f.problem) == ["ok.py", "sub/x.py"]


@pytest.mark.timeout(60)
def test_fifos_sockets_and_devices_are_reported_by_the_walk_not_read(tmp_path: Path) -> None:
    bad = build_bad_tree(tmp_path, unreadable=False)
    (tmp_path / "ok.py").write_text("x = 1\n")
    make_fifo(tmp_path / "pipe")  # no source-file name: not ours to mention, like a README
    make_socket(tmp_path / "agent.sock")
    found = {f.path: f.problem for f in _found(tmp_path)}
    walked = {b.name: b.message for b in bad if b.walked and b.kind != "huge_line"}
    assert found == {**walked, "huge_line.js": None, "ok.py": None}  # the reader sees huge_line
    named = {f.path: f.problem for f in _found(tmp_path, [b.name for b in bad])}
    assert named == {b.name: None if b.kind == "huge_line" else b.message for b in bad}


@pytest.mark.timeout(60)
def test_a_fifo_gitignore_or_pyproject_never_blocks(tmp_path: Path) -> None:
    (tmp_path / ".git").mkdir()
    make_fifo(tmp_path / ".gitignore")
    (tmp_path / "ok.py").write_text("x = 1\n")
    assert [f.path for f in _found(tmp_path)] == ["ok.py"]
    make_fifo(tmp_path / "settings.toml")
    project = load_project(tmp_path, tmp_path / "settings.toml")
    assert project.problems == [f"{tmp_path}/settings.toml: skipped, a FIFO (named pipe), "
                                "not a regular file"]


def test_explicit_files_are_reviewed_even_when_excluded(tmp_path: Path) -> None:
    _tree(tmp_path, {"node_modules/m.js": "x"})
    found = _found(tmp_path, ["node_modules/m.js"])
    assert [(f.path, f.explicit) for f in found] == [("node_modules/m.js", True)]


def test_bad_files_are_reported_not_raised(tmp_path: Path) -> None:
    review = ReviewSettings()
    (tmp_path / "bin.py").write_bytes(b"\x00\x01binary")
    (tmp_path / "latin.py").write_bytes(b'name = "caf\xe9"\nif name is "x": pass\n')
    with open(tmp_path / "huge.py", "wb") as handle:  # sparse: 50 MB without writing them
        handle.truncate(50_000_000)
    (tmp_path / "notes.txt").write_text("x")
    binary = review_file(str(tmp_path / "bin.py"), review, tmp_path)
    assert binary.problem and "binary" in binary.problem and not binary.findings
    latin = review_file(str(tmp_path / "latin.py"), review, tmp_path)
    assert latin.problem is None and "invalid UTF-8" in latin.notes[0]
    assert [f.code for f in latin.findings] == ["SC305"]
    huge = review_file(str(tmp_path / "huge.py"), review, tmp_path, max_file_bytes=1_000_000)
    assert huge.problem == f"{tmp_path}/huge.py: skipped, 50.0 MB is over the 1.0 MB limit " \
                           "(maxFileBytes)"
    text = review_file(str(tmp_path / "notes.txt"), review, tmp_path)
    assert text.problem is None and "no grammar" in text.notes[0]


def test_parallel_and_sequential_runs_agree(tmp_path: Path) -> None:
    _tree(tmp_path, {f"m{i:02}.py": BAD * (i % 3) for i in range(20)})
    project = Project(tmp_path)
    seen: list[FileResult] = []
    parallel = review_paths([str(tmp_path)], project, jobs=2, on_result=seen.append)
    sequential = review_paths([str(tmp_path)], project, jobs=1)
    assert parallel == sequential
    assert len(seen) == 20 and sum(len(r.findings) for r in parallel) == 7 * 2 + 6 * 4


def test_internal_errors_become_problems(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "a.py").write_text(BAD)

    def broken(*args: object, **kwargs: object) -> list:
        raise RuntimeError("rule bug")

    monkeypatch.setattr(review_mod, "analyze_report", broken)
    result = review_file(str(tmp_path / "a.py"), ReviewSettings(), tmp_path)
    assert result.problem and "internal error" in result.problem and "rule bug" in result.problem


def test_fix_writes_atomically_and_keeps_mode(tmp_path: Path) -> None:
    path = tmp_path / "a.py"
    path.write_text(BAD)
    path.chmod(0o640)
    result = review_file(str(path), ReviewSettings(), tmp_path, fix=True)
    assert result.fixed == 1
    assert path.read_text() == 'def f(list):\n    return list is "x"\n'
    assert [f.code for f in result.findings] == ["SC305"]  # an unsafe fix: still reported
    assert path.stat().st_mode & 0o777 == 0o640
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.py"]  # no temp file left


def test_fix_through_a_symlink_edits_the_target(tmp_path: Path) -> None:
    target = tmp_path / "real.py"
    target.write_text(BAD)
    os.symlink("real.py", tmp_path / "link.py")
    review_file(str(tmp_path / "link.py"), ReviewSettings(), tmp_path, fix=True)
    assert (tmp_path / "link.py").is_symlink()
    assert "dead" not in target.read_text()


def test_fix_never_overwrites_a_concurrent_edit(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "a.py"
    path.write_text(BAD)
    real = review_mod.analyze
    edited = BAD + "# edited in the editor meanwhile\n"

    def analyze_while_someone_edits(*args: object, **kwargs: object) -> list:
        path.write_text(edited)  # lands between our read and our write
        return real(*args, **kwargs)

    monkeypatch.setattr(review_mod, "analyze", analyze_while_someone_edits)
    result = review_file(str(path), ReviewSettings(), tmp_path, fix=True)
    assert path.read_text() == edited
    assert result.fixed == 0
    assert any("changed on disk during the run" in n for n in result.notes)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.py"]


def test_fix_leaves_files_with_syntax_errors_alone(tmp_path: Path) -> None:
    path = tmp_path / "a.py"
    broken = BAD + "def g(:\n"
    path.write_text(broken)
    result = review_file(str(path), ReviewSettings(), tmp_path, fix=True)
    assert path.read_text() == broken and result.fixed == 0
    assert any("syntax errors" in n for n in result.notes)


def test_a_directory_named_explicitly_is_walked_even_if_gitignored_above(tmp_path: Path) -> None:
    (tmp_path / ".git").mkdir()
    _tree(tmp_path, {".gitignore": "/versions\n*.tmp.py\n",
                     "versions/lib/a.py": "", "versions/lib/b.tmp.py": ""})
    found = _found(tmp_path, ["versions/lib"])
    assert [f.path for f in found] == ["versions/lib/a.py"]  # other rules still apply
    assert _found(tmp_path) == []  # walking from the top, the ignored directory is skipped
