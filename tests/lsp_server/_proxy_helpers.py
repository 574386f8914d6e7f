"""Start `stagecoder proxy` as users do (a subprocess, port 0) and talk to it."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.fakes.openai_server import FakeModelServer

ROOT = Path(__file__).resolve().parents[2]
FIM_BEGIN, FIM_HOLE, FIM_END = "<｜fim▁begin｜>", "<｜fim▁hole｜>", "<｜fim▁end｜>"


@dataclass
class ProxyHandle:
    """A running proxy: its URL, its process and the file its log goes to."""

    url: str
    process: subprocess.Popen
    log_path: Path

    def log(self) -> str:
        """The proxy's log so far."""
        return self.log_path.read_text(encoding="utf-8", errors="replace")


def pyproject(folder: Path, completion: dict[str, object], candidates: int = 1) -> Path:
    """A pyproject.toml with the completion endpoint and one candidate (deterministic)."""
    lines = ["[tool.stagecoder.completion]"]
    for key, value in completion.items():
        lines.append(f"{key} = {value!r}".replace("'", '"'))
    lines += ["[tool.stagecoder.stages]", f"candidates = {candidates}"]
    path = folder / "pyproject.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


@contextmanager
def run_proxy(config: Path, *extra: str, env: dict[str, str] | None = None,
              log_dir: Path | None = None) -> Iterator[ProxyHandle]:
    """`stagecoder proxy --tcp 127.0.0.1:0 --config CONFIG ...`, stopped (SIGTERM) on exit."""
    pytest.importorskip("uvicorn")
    pytest.importorskip("starlette")
    log_path = (log_dir or config.parent) / "proxy.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "lsp_server", "proxy", "--tcp", "127.0.0.1:0", "--config",
             str(config), *extra], cwd=ROOT, stdout=subprocess.PIPE, stderr=log, text=True,
            env={**os.environ, **(env or {})})
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert "proxy serving at " in line, (line, log_path.read_text())
        url = line.split("proxy serving at ", 1)[1].split()[0]
        yield ProxyHandle(url, proc, log_path)
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


def fim_prompt(prefix: str, suffix: str) -> str:
    """A DeepSeek-Coder FIM prompt, as Zed writes it with `prompt_format: "deepseek_coder"`."""
    return f"{FIM_BEGIN}{prefix}{FIM_HOLE}{suffix}{FIM_END}"


def sse_texts(body: str) -> list[str]:
    """The `text` of every event of a completion event stream, up to [DONE]."""
    import json

    texts = []
    for line in body.splitlines():
        if line.startswith("data: ") and line != "data: [DONE]":
            texts.extend(c["text"] for c in json.loads(line[6:])["choices"])
    return texts


@contextmanager
def fake_in_thread(**kw: object) -> Iterator[FakeModelServer]:
    """The fake model server in a thread of its own event loop, for tests whose own code
    blocks (subprocesses, the openai client, code that runs asyncio.run itself)."""
    ready = threading.Event()
    box: list = []

    def serve() -> None:
        async def body() -> None:
            server = await FakeModelServer(**kw).start()  # type: ignore[arg-type]
            stop = asyncio.Event()
            box.extend([server, asyncio.get_running_loop(), stop])
            ready.set()
            await stop.wait()
            await server.aclose()

        asyncio.run(body())

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    assert ready.wait(10)
    server, loop, stop = box
    try:
        yield server
    finally:
        loop.call_soon_threadsafe(stop.set)
        thread.join(10)
