"""Every command reads the same settings: one pyproject loader, one `maxFileBytes`.

`review` and `complete`/`context`/`stages` used to have loaders of their own: run from a folder
whose pyproject.toml has no [tool.stagecoder] under a parent that has one, `review` read the
parent's settings and the others the defaults (and they read FILE with the 5 MB default, not
`max-file-bytes`). Here they run as the user runs them, as subprocesses from that folder. The
model is the scripted fake, so a command that wrongly goes past the size check prints a
completion instead of failing.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]
BIG = "def f(x):\n    return x is 'a'\n" + "#" * 169 + "\n"  # 200 bytes
SMALL = "def f(list):\n    return list is 'a'\n"  # SC202 and SC305


def stagecoder(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT),
           "STAGECODER_MODEL_FACTORY": "tests.fakes.models:scripted",
           "STAGECODER_FAKE_TEXT": "x\n"}
    return subprocess.run([sys.executable, "-m", "lsp_server", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=60)


@pytest.fixture
def subproject(tmp_path: Path) -> Path:
    """A parent with [tool.stagecoder]; the folder below has a pyproject.toml without one."""
    (tmp_path / "pyproject.toml").write_text(
        '[tool.stagecoder]\nselect = ["SC305"]\nmax-file-bytes = 100\n')
    sub = tmp_path / "app"
    sub.mkdir()
    (sub / "pyproject.toml").write_text("[project]\nname = 'app'\n")
    (sub / "raw.txt").write_text("x\n")
    return sub


POSITION = ["--line", "1", "--col", "1"]
COMMANDS = {
    "complete": ["complete", "big.py", *POSITION],
    "context": ["context", "big.py", *POSITION],
    "stages": ["stages", "big.py", *POSITION, "--raw", "raw.txt"],
}


def test_review_and_the_position_commands_share_max_file_bytes(subproject: Path) -> None:
    assert len(BIG.encode()) == 200
    (subproject / "big.py").write_text(BIG)
    refused = "big.py: skipped, 200 bytes is over the 100 bytes limit (maxFileBytes)"
    review = stagecoder(subproject, "review", "--no-progress")
    assert (review.returncode, review.stderr) == (2, f"stagecoder: error: {refused}\n")
    for name, args in COMMANDS.items():
        done = stagecoder(subproject, *args)
        assert (name, done.returncode, done.stdout, done.stderr) == (
            name, 2, "", f"stagecoder: {refused}\n")


def test_review_reads_the_parents_select(subproject: Path) -> None:
    (subproject / "small.py").write_text(SMALL)
    review = stagecoder(subproject, "review", "--no-progress")
    assert review.returncode == 1
    assert review.stdout.splitlines()[:-1] == [
        "small.py:2:12: SC305 `is` compares identity with a literal; use `==`"]


def test_a_bad_key_is_named_once_by_every_command(subproject: Path) -> None:
    parent = subproject.parent / "pyproject.toml"
    parent.write_text('[tool.stagecoder]\nmax-file-bytes = "big"\n')
    (subproject / "small.py").write_text(SMALL)
    problem = f"{parent}: [tool.stagecoder] `maxFileBytes`: Expected `int`, got `str`"
    review = stagecoder(subproject, "review", "--no-progress")
    assert review.returncode == 2
    assert review.stderr == f"stagecoder: error: {problem}\n"
    stages = stagecoder(subproject, "stages", "small.py", *POSITION, "--raw", "raw.txt")
    assert stages.stderr == f"stagecoder: warning: {problem}; using the default\n"


def test_an_unreadable_pyproject_stops_every_command(subproject: Path) -> None:
    parent = subproject.parent / "pyproject.toml"
    parent.write_text("[tool.stagecoder\n")
    (subproject / "small.py").write_text(SMALL)
    problem = (f"{parent}: cannot read settings (Expected ']' at the end of a table declaration "
               "(at line 1, column 17))")
    review = stagecoder(subproject, "review", "--no-progress")
    assert (review.returncode, review.stderr) == (2, f"stagecoder: error: {problem}\n")
    done = stagecoder(subproject, "complete", "small.py", *POSITION)
    assert (done.returncode, done.stdout, done.stderr) == (2, "", f"stagecoder: {problem}\n")


def test_context_indexes_the_workspace_with_the_same_limit(subproject: Path) -> None:
    (subproject / "small.py").write_text(SMALL)
    (subproject / "big.py").write_text(BIG)
    done = stagecoder(subproject, "context", "small.py", *POSITION, "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["indexedFiles"] == 1  # small.py; big.py is over the limit
