"""The one file walker: `stagecoder review` and the workspace index read the same files.

They used to walk differently: the index read only the top .gitignore, skipped `vendor/`,
`target/` and every hidden folder by name, and never followed a symlinked folder; review did
the opposite on each. One tree holds each of those cases, and both file lists must be the same
set, and exactly the expected one. `walks_to` (the index's check for a file-watch event) must
agree with the walk file by file.
"""

from __future__ import annotations

import os
from pathlib import Path

from analysis.documents.discover import DEFAULT_EXCLUDES, discover, walks_to
from analysis.index.workspace_index import SymbolIndex
from analysis.project import Project
from analysis.review.run import review_paths

FUNC = "def f():\n    return 1\n"


def _tree(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")


def disagreement_tree(tmp_path: Path) -> Path:
    """A repository with every case the two walkers used to decide differently."""
    root = tmp_path / "repo"
    (root / ".git").mkdir(parents=True)
    _tree(root, {
        ".gitignore": "*.log\n",
        "src/app.py": FUNC,
        "src/.gitignore": "generated.py\n",  # nested: the old index never read it
        "src/generated.py": FUNC,
        "vendor/github.com/acme/lib.go": "package lib\n",  # the old review walked these two
        "target/debug/build.rs": "fn main() {}\n",
        "node_modules/left-pad/index.js": "module.exports = 1;\n",
        ".github/scripts/check.js": "console.log(1);\n",  # hidden: the old index skipped it
        "env/pyvenv.cfg": "home = /usr/bin\n",  # a virtualenv named `env`
        "env/lib/site.py": FUNC,
        "outside/shared.py": FUNC,
        "notes.txt": "not source\n",
    })
    os.symlink("..", root / "src" / "again")  # a loop: leads back to its own ancestor
    os.symlink("outside", root / "linked")  # the same folder twice: read once
    return root


def test_review_and_the_index_read_the_same_files(tmp_path: Path) -> None:
    root = disagreement_tree(tmp_path)
    results = review_paths([str(root)], Project(root), jobs=1)
    reviewed = {Path(r.path).resolve().as_posix() for r in results if r.problem is None}
    index = SymbolIndex()
    index.build([root])
    expected = {(root / p).as_posix() for p in
                (".github/scripts/check.js", "linked/shared.py", "src/app.py")}
    assert reviewed == set(index.files()) == {Path(p).resolve().as_posix() for p in expected}

    loop = (f"{root}/src/again: symlink loop (it leads back to {root}); not followed")
    assert [r.problem for r in results if r.problem] == [loop]
    assert index.problems == [loop]


def test_walks_to_agrees_with_the_walk_file_by_file(tmp_path: Path) -> None:
    root = disagreement_tree(tmp_path)
    walked = {f.path for f in discover([str(root)], root) if f.problem is None}
    every = [os.path.join(folder, name) for folder, _, names in os.walk(root) for name in names]
    assert len(every) > 10
    # The walk reached outside/shared.py through `linked` first (and read it once); os.walk
    # does not follow links, so it offers the file under its own folder.
    through_link = {f"{root}/linked/shared.py"}
    assert through_link <= walked
    expected = (walked - through_link) | {f"{root}/outside/shared.py"}
    assert {p for p in every if walks_to(p, root)} == expected
    assert not walks_to(tmp_path / "elsewhere.py", root)  # outside the root


def test_the_index_keeps_changed_files_the_walk_skips_out(tmp_path: Path) -> None:
    root = disagreement_tree(tmp_path)
    index = SymbolIndex()
    index.build([root])
    before = set(index.files())
    _tree(root, {"node_modules/fresh/index.js": "function fresh() {}\n",
                 "src/generated.py": "def regenerated():\n    pass\n",
                 "src/new.py": "def new():\n    pass\n"})
    for name in ("node_modules/fresh/index.js", "src/generated.py", "src/new.py"):
        index.update_path(root / name)
    assert set(index.files()) - before == {f"{root.resolve()}/src/new.py"}
    assert index.lookup("fresh") == () and index.lookup("regenerated") == ()


def test_a_configured_glob_can_walk_a_default_exclude_again(tmp_path: Path) -> None:
    assert "vendor/" in DEFAULT_EXCLUDES and "target/" in DEFAULT_EXCLUDES
    _tree(tmp_path, {"vendor/lib.go": "package lib\n", "target/gen.rs": "", "main.go": ""})
    found = [Path(f.path).name for f in discover([str(tmp_path)], tmp_path, ["!vendor/"])]
    assert found == ["main.go", "lib.go"]
    assert [Path(f.path).name for f in discover([str(tmp_path)], tmp_path)] == ["main.go"]
