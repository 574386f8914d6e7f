"""`stagecoder review` end to end, as a subprocess: formats, exit codes, configuration, --fix,
bad input (each bad path one message, the run goes on; FIFOs, devices, sockets and huge lines
finish in seconds with bounded memory), --model without a server, progress, and pool workers
that die with a killed run."""

from __future__ import annotations

import contextlib
import json
import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil
import pytest

from tests.fakes.bad_files import BadFile, build_bad_tree

# SC305 (an unsafe fix) and SC301 (a safe one); the `list` parameter would be SC202, a preview
# rule that is off by default.
BAD = 'def f(list):\n    return list is "x"\n    print("dead")\n'
FIXED = 'def f(list):\n    return list is "x"\n'
CLEAN = "def add(a, b):\n    return a + b\n"
DROP_DAC = ["setpriv", "--bounding-set", "-dac_override,-dac_read_search"]
PEAK_RSS_LIMIT_MB = 400
ADDRESS_SPACE_LIMIT = 3 << 30  # a run that reads /dev/zero without end stops here, not at OOM


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
        "bad.py:2:12: SC305 `is` compares identity with a literal; use `==`",
        "bad.py:3:5: SC301 unreachable code: 1 statement after `return`",
        "Found 2 findings in 1 file (1 fixable with --fix).",
    ]
    result = review(tmp_path, "--preview")  # the preview rules too
    assert result.stdout.splitlines()[0] == "bad.py:1:7: SC202 `list` shadows the builtin `list`"
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
        "stagecoder: error: huge.py: skipped, 50.0 MB is over the 5.0 MB limit (maxFileBytes)",
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
    result = review(tmp_path, "--fix", "--select", "SC301")
    assert result.returncode == 1  # broken.py keeps its finding
    assert (tmp_path / "bad.py").read_text() == FIXED
    assert (tmp_path / "broken.py").read_text() == broken
    assert "broken.py: not fixed: the file has syntax errors" in result.stderr
    assert result.stdout.splitlines()[-1] == "Fixed 1 finding. Found 1 finding in 1 file " \
                                             "(1 fixable with --fix)."
    assert review(tmp_path, "bad.py", "--select", "SC301").returncode == 0


def test_pyproject_configuration_and_flags(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text(
        '[tool.stagecoder]\nignore = ["SC301"]\nexclude = ["generated/"]\n'
        '[tool.stagecoder.per-path-ignores]\n"tests/*" = ["SC3"]\n')
    for name in ("src/a.py", "tests/t.py", "generated/g.py"):
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).write_text(BAD)
    result = review(tmp_path, "--format", "json")
    codes = [(e["filename"], e["code"]) for e in json.loads(result.stdout)["findings"]]
    assert codes == [("src/a.py", "SC305")]
    result = review(tmp_path, "--format", "json", "--select", "SC301", "--ignore", "")
    assert {e["code"] for e in json.loads(result.stdout)["findings"]} == set()  # ignore holds
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
    assert result.stdout.startswith("::warning file=bad.py,line=2,col=12,")


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
    entries = json.loads(result.stdout)["findings"]
    assert [e["code"] for e in entries] == ["SC305", "SC301"]
    # Random weights: the words are meaningless, but every finding got the model's answer.
    assert all(isinstance(e["explanation"], str) and (e["explanation"] or e["suggestion"])
               for e in entries), entries
    assert "explanations" not in result.stderr


# ------------------------------------------------------------------ files that are bad to read


# Runs the command from a small Python process and writes the command's ru_maxrss (KB) to the
# file named first. The pytest process itself must not fork the command: a forked child's peak
# RSS counts the parent's pages it had before exec (hundreds of MB once torch is imported).
_MEASURE = """
import os, resource, subprocess, sys
limit = int(sys.argv[2])
resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
proc = subprocess.Popen(sys.argv[3:])
_, status, usage = os.wait4(proc.pid, 0)
with open(sys.argv[1], "w") as fh:
    fh.write(str(usage.ru_maxrss))
sys.exit(os.waitstatus_to_exitcode(status))
"""


def review_measured(cwd: Path, *args: str, prefix: list[str] | None = None, timeout: float = 60
                    ) -> tuple[int, str, str, float]:
    """Run `review` as above; also return the peak RSS in MB of it and the workers it waited for.

    os.wait4 gives exactly that process's resource usage (ru_maxrss covers its waited-for
    children), unlike RUSAGE_CHILDREN, which remembers every earlier child of the test run too.
    """
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])}
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err, \
            tempfile.NamedTemporaryFile("r") as peak:
        command = [*(prefix or []), sys.executable, "-m", "lsp_server", "review",
                   "--no-progress", *args]
        proc = subprocess.Popen(
            [sys.executable, "-c", _MEASURE, peak.name, str(ADDRESS_SPACE_LIMIT), *command],
            cwd=cwd, env=env, stdout=out, stderr=err, start_new_session=True)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            pytest.fail(f"review {' '.join(args)} still running after {timeout} s")
        out.seek(0)
        err.seek(0)
        return (proc.returncode, out.read().decode(), err.read().decode(),
                int(peak.read() or 0) / 1024)


def _bad_tree(root: Path) -> tuple[list[BadFile], list[str]]:
    """The shared bad-file tree plus enough good files that -j2 really starts a pool."""
    prefix = DROP_DAC if os.geteuid() == 0 and shutil.which("setpriv") else []
    bad = build_bad_tree(root, unreadable=os.geteuid() != 0 or bool(prefix))
    for i in range(12):
        (root / f"good{i:02}.py").write_text(BAD)
    return bad, prefix


@pytest.mark.timeout(300)
@pytest.mark.parametrize("flags", [[], ["--fix"], ["-j2"], ["--fix", "-j2"]],
                         ids=["plain", "fix", "j2", "fix-j2"])
@pytest.mark.parametrize("named", [False, True], ids=["tree", "named"])
def test_fifo_devices_socket_and_huge_line_finish_with_one_message_each(
        tmp_path: Path, flags: list[str], named: bool) -> None:
    bad, prefix = _bad_tree(tmp_path)
    expected = [b for b in bad if b.walked or named]
    good = sorted(p.name for p in tmp_path.glob("good*.py"))
    paths = [b.name for b in bad] + good if named else ["."]
    started = time.monotonic()
    code, out, err, peak_mb = review_measured(tmp_path, *flags, *paths, prefix=prefix)
    elapsed = time.monotonic() - started
    assert code == 2, err
    errors = sorted(line for line in err.splitlines() if ": error: " in line)
    assert errors == sorted(f"stagecoder: error: {b.message}" for b in expected)
    assert "Traceback" not in err
    assert ("Fixed 12 findings." if "--fix" in flags else "good00.py:2:12: SC305") in out
    assert elapsed < 30, f"took {elapsed:.1f} s"  # seconds, not the minutes of a hang
    assert peak_mb < PEAK_RSS_LIMIT_MB, f"peak RSS {peak_mb:.0f} MB"
    print(f"review {' '.join(flags) or '(plain)'} {'named' if named else 'tree'}: "
          f"{elapsed:.2f} s, peak RSS {peak_mb:.0f} MB")


def test_json_and_sarif_carry_the_per_file_errors_and_warnings(tmp_path: Path) -> None:
    (tmp_path / "bad.py").write_text(BAD)
    (tmp_path / "latin1.py").write_bytes(b"# caf\xe9\nx = 1\n")
    os.mkfifo(tmp_path / "fifo.py")
    code, out, err, _ = review_measured(tmp_path, "--format", "json")
    report = json.loads(out)
    assert code == 2, err
    assert report["errors"] == [{"filename": "fifo.py", "message":
                                 "fifo.py: skipped, a FIFO (named pipe), not a regular file"}]
    assert report["warnings"] == [{"filename": "latin1.py", "message":
                                   "latin1.py: invalid UTF-8, undecodable bytes shown as U+FFFD"}]
    assert [f["code"] for f in report["findings"]] == ["SC305", "SC301"]
    code, out, _, _ = review_measured(tmp_path, "--format", "sarif")
    invocation = json.loads(out)["runs"][0]["invocations"][0]
    assert invocation["executionSuccessful"] is False
    assert [(n["level"], n["message"]["text"],
             n["locations"][0]["physicalLocation"]["artifactLocation"]["uri"])
            for n in invocation["toolExecutionNotifications"]] == [
        ("error", "fifo.py: skipped, a FIFO (named pipe), not a regular file", "fifo.py"),
        ("warning", "latin1.py: invalid UTF-8, undecodable bytes shown as U+FFFD", "latin1.py"),
    ]


def test_max_file_bytes_is_one_key_under_tool_stagecoder(tmp_path: Path) -> None:
    (tmp_path / "big.py").write_text("x = 1\n" * 500)  # 3,000 bytes
    (tmp_path / "pyproject.toml").write_text("[tool.stagecoder]\nmax-file-bytes = 2000\n")
    result = review(tmp_path)
    assert result.returncode == 2
    assert result.stderr == "stagecoder: error: big.py: skipped, 3.0 KB is over the 2.0 KB " \
                            "limit (maxFileBytes)\n"
    (tmp_path / "pyproject.toml").write_text("[tool.stagecoder]\nmax-file-bytes = 4000\n")
    assert review(tmp_path).returncode == 0


@pytest.mark.timeout(180)
def test_kill_9_of_the_main_process_leaves_no_worker_alive(tmp_path: Path) -> None:
    total = 1500
    for i in range(total):
        (tmp_path / f"m{i:04}.py").write_text(BAD)
    first = tmp_path / "m0000.py"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])}
    proc = subprocess.Popen([sys.executable, "-m", "lsp_server", "review", "--fix", "-j2",
                             "--no-progress", "--select", "SC301"],
                            cwd=tmp_path, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    main = psutil.Process(proc.pid)
    pidfds: dict[int, int] = {}
    try:
        deadline = time.monotonic() + 60
        # Wait (bounded) until both workers exist and the run has fixed its first file.
        while len(pidfds) < 2 or first.read_text() == BAD:
            assert time.monotonic() < deadline, "the run never started fixing"
            assert proc.poll() is None, "the run ended before it could be killed"
            for child in main.children(recursive=True):
                pidfds.setdefault(child.pid, os.pidfd_open(child.pid))
            time.sleep(0.01)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        # A pidfd turns readable when its process ends (whoever reaps it): no polling needed.
        end = time.monotonic() + 5
        waiting = set(pidfds.values())
        while waiting and (left := end - time.monotonic()) > 0:
            waiting -= set(select.select(list(waiting), [], [], left)[0])
        alive = [pid for pid, fd in pidfds.items() if fd in waiting]
        assert alive == [], f"workers {alive} outlived their parent by 5 s"
        fixed = sum((tmp_path / f"m{i:04}.py").read_text() != BAD for i in range(total))
        assert 0 < fixed < total, "the kill did not land mid-run"
        assert not list(tmp_path.glob(".*.tmp")), "a temporary file was left behind"
        print(f"killed after {fixed} of {total} files; workers gone within 5 s")
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        for pid in pidfds:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        for fd in pidfds.values():
            os.close(fd)


def test_a_file_cut_short_by_its_nesting_is_reported_as_a_warning(tmp_path: Path) -> None:
    (tmp_path / "deep.py").write_text("x = " + "[" * 3000 + "]" * 3000 + "\n" + BAD)
    result = review(tmp_path, "deep.py", "--select", "SC305")
    assert result.returncode == 1, result.stderr  # reviewed, with findings: not an error
    assert result.stderr.splitlines() == [
        "stagecoder: warning: deep.py: nesting deeper than 1,000 levels; code below that depth "
        "was not checked"]
    assert "SC305" in result.stdout
