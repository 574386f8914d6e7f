"""`stagecoder review` end to end, as a subprocess: formats, exit codes, configuration, --fix,
bad input (each bad path one message, the run goes on), --model without a server, progress."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

BAD = 'def f(list):\n    return list is "x"\n'
CLEAN = "def add(a, b):\n    return a + b\n"
DROP_DAC = ["setpriv", "--bounding-set", "-dac_override,-dac_read_search"]


def review(cwd: Path, *args: str, prefix: list[str] | None = None,
           timeout: float = 60) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])}
    return subprocess.run([*(prefix or []), sys.executable, "-m", "lsp_server", "review", *args],
                          cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


def test_exit_codes_and_text_format(tmp_path: Path) -> None:
    (tmp_path / "clean.py").write_text(CLEAN)
    result = review(tmp_path)
    assert (result.returncode, result.stdout) == (0, "No findings.\n")
    (tmp_path / "bad.py").write_text(BAD)
    result = review(tmp_path)
    assert result.returncode == 1
    assert result.stdout.splitlines() == [
        "bad.py:1:7: SC202 `list` shadows the builtin `list`",
        "bad.py:2:12: SC305 `is` compares identity with a literal; use `==`",
        "Found 2 findings in 1 file (1 fixable with --fix).",
    ]
    assert result.stderr == ""


def test_bad_input_gets_one_message_each_and_the_run_goes_on(tmp_path: Path) -> None:
    (tmp_path / "bad.py").write_text(BAD)
    (tmp_path / "binary.py").write_bytes(b"\x7fELF\x00\x00")
    (tmp_path / "latin1.py").write_bytes(b'# caf\xe9\nx = 1\n')
    with open(tmp_path / "huge.py", "wb") as handle:
        handle.truncate(50_000_000)
    (tmp_path / "locked.py").write_text(BAD)
    (tmp_path / "locked.py").chmod(0)
    os.symlink("loop.py", tmp_path / "loop.py")
    (tmp_path / "pkg").mkdir()
    os.symlink("..", tmp_path / "pkg" / "parent")
    prefix = DROP_DAC if os.geteuid() == 0 and shutil.which("setpriv") else None
    if os.geteuid() == 0 and prefix is None:
        pytest.skip("running as root without setpriv: a chmod 000 file stays readable")
    result = review(tmp_path, ".", "missing_dir", prefix=prefix)
    assert result.returncode == 2
    errors = sorted(line for line in result.stderr.splitlines() if ": error: " in line)
    assert errors == [
        "stagecoder: error: binary.py: skipped, binary file",
        "stagecoder: error: huge.py: skipped, 50.0 MB is over the 2.0 MB limit",
        "stagecoder: error: locked.py: permission denied",
        "stagecoder: error: loop.py: symlink loop (too many levels of symbolic links)",
        "stagecoder: error: missing_dir: no such file or directory",
        f"stagecoder: error: pkg/parent: symlink loop (it leads back to {tmp_path.resolve()}); "
        "not followed",
    ]
    assert "stagecoder: warning: latin1.py: invalid UTF-8" in result.stderr
    assert "bad.py:2:12: SC305" in result.stdout  # the good file was still reviewed


def test_invalid_utf8_alone_is_a_warning_not_a_failure(tmp_path: Path) -> None:
    (tmp_path / "latin1.py").write_bytes(b'name = "caf\xe9"\n')
    result = review(tmp_path)
    assert result.returncode == 0
    assert "invalid UTF-8" in result.stderr


def test_fix_applies_safe_fixes_and_skips_broken_files(tmp_path: Path) -> None:
    (tmp_path / "bad.py").write_text(BAD)
    broken = BAD + "def g(:\n"
    (tmp_path / "broken.py").write_text(broken)
    result = review(tmp_path, "--fix", "--select", "SC305")
    assert result.returncode == 1  # broken.py keeps its finding
    assert (tmp_path / "bad.py").read_text() == 'def f(list):\n    return list == "x"\n'
    assert (tmp_path / "broken.py").read_text() == broken
    assert "broken.py: not fixed: the file has syntax errors" in result.stderr
    assert result.stdout.splitlines()[-1] == "Fixed 1 finding. Found 1 finding in 1 file " \
                                             "(1 fixable with --fix)."
    assert review(tmp_path, "bad.py", "--select", "SC305").returncode == 0


def test_pyproject_configuration_and_flags(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text(
        '[tool.stagecoder]\nignore = ["SC202"]\nexclude = ["generated/"]\n'
        '[tool.stagecoder.per-path-ignores]\n"tests/*" = ["SC3"]\n')
    for name in ("src/a.py", "tests/t.py", "generated/g.py"):
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).write_text(BAD)
    result = review(tmp_path, "--format", "json")
    codes = [(e["filename"], e["code"]) for e in json.loads(result.stdout)]
    assert codes == [("src/a.py", "SC305")]
    result = review(tmp_path, "--format", "json", "--select", "SC2", "--ignore", "")
    assert {e["code"] for e in json.loads(result.stdout)} == set()  # ignore still in force
    result = review(tmp_path / "src", "--select", "SC20,XX")
    assert "stagecoder: warning: `XX` matches no rule" in result.stderr


def test_invalid_configuration_is_an_error_but_the_review_runs(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text('[tool.stagecoder.review]\nselect = "SC3"\n')
    (tmp_path / "bad.py").write_text(BAD)
    result = review(tmp_path)
    assert result.returncode == 2
    assert "`review.select`: Expected `array`" in result.stderr
    assert "SC305" in result.stdout


def test_sarif_to_a_file_and_github_format(tmp_path: Path) -> None:
    (tmp_path / "bad.py").write_text(BAD)
    result = review(tmp_path, "--format", "sarif", "-o", "out.sarif")
    assert result.returncode == 1 and result.stdout == ""
    log = json.loads((tmp_path / "out.sarif").read_text())
    assert log["version"] == "2.1.0" and len(log["runs"][0]["results"]) == 2
    result = review(tmp_path, "--format", "github")
    assert result.stdout.startswith("::warning file=bad.py,line=1,col=7,")


def test_help_documents_exit_codes() -> None:
    result = review(Path.cwd(), "--help")
    assert result.returncode == 0
    for text in ("exit status:", "0  every path was reviewed", "1  every path", "2  something"):
        assert text in result.stdout


def test_model_unreachable_still_reports_findings(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text(
        '[tool.stagecoder.chat]\nurl = "http://127.0.0.1:9"\nconnect-timeout = 1.0\n')
    (tmp_path / "bad.py").write_text(BAD)
    result = review(tmp_path, "--model")
    assert result.returncode == 1
    skipped = [line for line in result.stderr.splitlines() if "explanations skipped" in line]
    assert len(skipped) == 1 and "127.0.0.1:9" in skipped[0]
    assert "bad.py:2:12: SC305" in result.stdout


def test_progress_bar_only_on_a_terminal(tmp_path: Path) -> None:
    for i in range(12):
        (tmp_path / f"m{i}.py").write_text(BAD)
    plain = review(tmp_path)
    assert "reviewing" not in plain.stderr
    main, child = os.openpty()
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[2]), "COLUMNS": "100"}
    proc = subprocess.run([sys.executable, "-m", "lsp_server", "review", "-j", "2"],
                          cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=child,
                          timeout=60, text=True)
    os.close(child)
    shown = b""
    try:
        while chunk := os.read(main, 65536):
            shown += chunk
    except OSError:
        pass  # EIO: the terminal's other end is closed
    os.close(main)
    assert proc.returncode == 1 and proc.stdout == plain.stdout
    assert b"reviewing" in shown


@pytest.mark.vllm
def test_model_explanations_with_the_real_server(tmp_path: Path, vllm_server) -> None:
    (tmp_path / "pyproject.toml").write_text(
        f'[tool.stagecoder.chat]\nurl = "{vllm_server.url}"\nmodel = "{vllm_server.model}"\n'
        'max-tokens = 24\nfirst-token-timeout = 120.0\ntotal-timeout = 300.0\n')
    (tmp_path / "bad.py").write_text(BAD)
    result = review(tmp_path, "--model", "--format", "json", timeout=300)
    assert result.returncode == 1, result.stderr
    entries = json.loads(result.stdout)
    assert [e["code"] for e in entries] == ["SC202", "SC305"]
    # Random weights: the words are meaningless, but every finding got the model's answer.
    assert all(isinstance(e["explanation"], str) and (e["explanation"] or e["suggestion"])
               for e in entries), entries
    assert "explanations" not in result.stderr
