"""A fresh `git clone` of this repository tests itself: nothing outside the clone is read.

The clone (of the committed HEAD) goes into a temporary folder that holds nothing else (the
fixture asserts the design-notes folder a developer's checkout sits beside is absent there; it
reads nothing outside the clone); in it, the current interpreter runs the SARIF snapshot tests
(whose schema is vendored in tests/fixtures) and collects the whole suite. Outside a git
checkout the test is skipped.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _git(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, timeout=120,
                          check=False)


@pytest.fixture(scope="module")
def clone(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    top = _git("rev-parse", "--show-toplevel", cwd=ROOT)
    if top.returncode != 0 or Path(top.stdout.strip()).resolve() != ROOT:
        pytest.skip(f"{ROOT} is not a git checkout")
    target = tmp_path_factory.mktemp("fresh") / "stagecoder"
    cloned = _git("clone", "--quiet", "--no-hardlinks", str(ROOT), str(target), cwd=ROOT)
    assert cloned.returncode == 0, cloned.stderr
    assert not (target.parent / "shared").exists()
    return target


def _pytest(clone: Path, *args: str) -> subprocess.CompletedProcess[str]:
    # The clone's own pyproject puts the clone first on sys.path; PYTHONPATH must not undo that.
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args],
                          cwd=clone, env=env, capture_output=True, text=True, timeout=600,
                          check=False)


def test_clone_runs_the_sarif_snapshot_tests(clone: Path) -> None:
    proc = _pytest(clone, "tests/lsp_server/test_report_snapshots.py")
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-3000:]
    assert " passed" in proc.stdout.splitlines()[-1] and "skipped" not in proc.stdout


def test_clone_code_wins_over_the_installed_checkout(clone: Path, tmp_path: Path) -> None:
    # pytest puts the clone first on sys.path (pyproject's `pythonpath`): that must beat the
    # editable install of the original checkout, or the clone's tests would test other code.
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    script = f"import sys; sys.path.insert(0, {str(clone)!r}); import analysis; " \
             "print(analysis.__file__)"
    proc = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=60, check=True)
    assert Path(proc.stdout.strip()).resolve().is_relative_to(clone.resolve())


def test_clone_collects_the_whole_suite(clone: Path) -> None:
    proc = _pytest(clone, "--collect-only")
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-3000:]
    summary = proc.stdout.strip().splitlines()[-1]
    assert "error" not in summary and " collected" in summary, summary
