"""`generation.serving` and `stagecoder model serve`: vLLM flags, environment, process lifecycle.

The lifecycle tests run a stand-in server process (a few lines of Python answering /health) in
place of vLLM, so that start, health wait, Ctrl-C and shutdown escalation are tested in seconds;
tests/generation/test_client_vllm.py runs the real vLLM through the same code.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import textwrap
import threading
from pathlib import Path

import msgspec
import pytest

from analysis.settings import SparseSettings
from generation import serving
from generation.errors import ModelServerError
from generation.serving import ServeOptions, VLLMServer, build_command, build_env
from lsp_server.cli import build_parser, main
from lsp_server.cli.model import _split_vllm_args


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
    import http.server, os, signal, sys, time
    port, mode, marker = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    print("stand-in starting", flush=True)
    if mode == "crash":
        print("boom: cannot load model", flush=True)
        sys.exit(3)
    def on_sigint(*_):
        open(marker, "w").write("SIGINT")
        sys.exit(0)
    signal.signal(signal.SIGINT, signal.SIG_IGN if mode == "stubborn" else on_sigint)
    class Health(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200 if self.path == "/health" else 404)
            self.end_headers()
        def log_message(self, *a):
            pass
    time.sleep(0.3)  # not healthy at once, like vLLM
    http.server.HTTPServer(("127.0.0.1", port), Health).serve_forever()
""")


@pytest.fixture
def stand_in(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    script = tmp_path / "stand_in.py"
    script.write_text(STAND_IN, encoding="utf-8")
    marker = tmp_path / "signal.txt"

    def use(mode: str) -> Path:
        monkeypatch.setattr(serving, "build_command", lambda opts: [
            sys.executable, str(script), str(opts.port), mode, str(marker)])
        return marker

    return use


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
    out = capsys.readouterr().out
    assert code == 0
    assert f"http://127.0.0.1:{port}" in out and "'ck'" in out
    assert marker.read_text() == "SIGINT"
