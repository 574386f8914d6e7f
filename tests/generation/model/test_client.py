"""ModelClient against fake loopback servers: parsing, deadlines, typed errors, socket closing."""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import httpx
import msgspec
import pytest

from analysis.settings import EndpointSettings
from generation.completion.fim_model import VllmCompletionModel
from generation.model.client import ModelClient
from generation.model.errors import (
    ModelHTTPError,
    ModelProtocolError,
    ModelTimeout,
    ModelUnavailable,
)
from generation.model.pools import DEFAULT_LIMITS, ConnectionPools, base_url
from generation.model.wire import ChatMessage
from tests.fakes.openai_server import DEFAULT_TEXT, FakeModelServer

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]

SSE_HEAD = (b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n"
            b"transfer-encoding: chunked\r\n\r\n")
SLACK = 1.0  # seconds allowed beyond a deadline: the test machine is shared and busy


def chunk(data: bytes) -> bytes:
    """One HTTP/1.1 chunk."""
    return f"{len(data):x}\r\n".encode() + data + b"\r\n"


def event(obj: object) -> bytes:
    """One server-sent event carrying `obj` as JSON, as a chunk."""
    payload = obj if isinstance(obj, bytes) else json.dumps(obj).encode()
    return chunk(b"data: " + payload + b"\n\n")


def text_event(text: str, finish: str | None = None) -> bytes:
    return event({"choices": [{"index": 0, "text": text, "finish_reason": finish}]})


DONE = chunk(b"data: [DONE]\n\n") + b"0\r\n\r\n"


def json_response(obj: object, status: int = 200) -> bytes:
    body = json.dumps(obj).encode()
    return (f"HTTP/1.1 {status} X\r\ncontent-type: application/json\r\n"
            f"content-length: {len(body)}\r\n\r\n").encode() + body


async def read_request(reader: asyncio.StreamReader) -> tuple[str, dict[str, str], bytes] | None:
    """Read one HTTP request; None when the client closed the connection."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except (asyncio.IncompleteReadError, ConnectionError):
        return None
    lines = head.decode().split("\r\n")
    headers = {k.lower(): v.strip() for k, _, v in (x.partition(":") for x in lines[1:] if x)}
    body = await reader.readexactly(int(headers.get("content-length", "0")))
    return lines[0], headers, body


class FakeServer:
    """An asyncio TCP server on loopback that runs `handler` per connection and counts them."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.connections = 0
        self.requests: list[tuple[str, dict[str, str], bytes]] = []
        self.server: asyncio.Server | None = None

    async def start(self) -> str:
        async def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            self.connections += 1
            try:
                await self.handler(reader, writer)
            except (ConnectionError, asyncio.IncompleteReadError):
                pass
            finally:
                writer.close()

        self.server = await asyncio.start_server(on_connect, "127.0.0.1", 0)
        port = self.server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"


@pytest.fixture
async def fake() -> AsyncIterator[Callable[[Handler], Awaitable[tuple[str, FakeServer]]]]:
    servers: list[FakeServer] = []

    async def make(handler: Handler) -> tuple[str, FakeServer]:
        server = FakeServer(handler)
        servers.append(server)
        return await server.start(), server

    yield make
    for server in servers:
        assert server.server is not None
        server.server.close()


def settings(url: str, **kw: object) -> EndpointSettings:
    base = EndpointSettings(url=url, model="m", connect_timeout=1.0, first_token_timeout=0.5,
                            total_timeout=1.5, max_tokens=8)
    return msgspec.structs.replace(base, **kw)


def streaming(pieces: list[str], record: FakeServer | None = None) -> Handler:
    """A keep-alive server answering every request with `pieces` then [DONE]."""

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while (request := await read_request(reader)) is not None:
            if record is not None:
                record.requests.append(request)
            writer.write(SSE_HEAD)
            for i, piece in enumerate(pieces):
                writer.write(text_event(piece, "length" if i == len(pieces) - 1 else None))
            writer.write(event({"choices": [], "usage": {"prompt_tokens": 3,
                                                         "completion_tokens": len(pieces),
                                                         "total_tokens": 3 + len(pieces)}}))
            writer.write(DONE)
            await writer.drain()

    return handler


async def leftover_tasks(baseline: set[asyncio.Task], settle: float = 1.0) -> list[asyncio.Task]:
    """Tasks started since `baseline` that are still pending after `settle` seconds.

    Fake-server connection handlers are not counted; short-lived finalizer tasks that asyncio
    creates for abandoned async generators get the time to finish.
    """
    deadline = time.monotonic() + settle
    while True:
        left = [t for t in asyncio.all_tasks() - baseline if not t.done()
                and "on_connect" not in getattr(t.get_coro(), "__qualname__", "")]
        if not left or time.monotonic() > deadline:
            return left
        await asyncio.sleep(0.02)


# --- streaming, bodies, pooling ---------------------------------------------------------------


async def test_stream_yields_pieces_and_reuses_one_connection(fake) -> None:
    holder: list[FakeServer] = []

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await streaming(["def", " f", "():"], holder[0])(reader, writer)

    url, server = await fake(handler)
    holder.append(server)
    async with ModelClient(settings(url)) as client:
        for _ in range(2):
            async with client.stream_complete("x = ", stop=["\n"]) as stream:
                pieces = [piece async for piece in stream]
            assert pieces == ["def", " f", "():"]
            assert stream.text == "def f():"
            assert stream.finish_reason == "length"
            assert stream.usage is not None and stream.usage.completion_tokens == 3
    assert server.connections == 1
    line, headers, body = server.requests[0]
    assert line.startswith("POST /v1/completions ")
    assert headers["accept"] == "text/event-stream"
    sent = json.loads(body)
    assert sent["model"] == "m" and sent["prompt"] == "x = " and sent["stream"] is True
    assert sent["max_tokens"] == 8 and sent["temperature"] == 0.0 and sent["stop"] == ["\n"]
    assert "seed" not in sent  # unset options are not sent


async def test_chat_stream_and_whole_chat(fake) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while (request := await read_request(reader)) is not None:
            if json.loads(request[2]).get("stream"):
                writer.write(SSE_HEAD)
                writer.write(event({"choices": [{"delta": {"role": "assistant"}}]}))
                for text in ("Hel", "lo"):
                    writer.write(event({"choices": [{"delta": {"content": text}}]}))
                writer.write(DONE)
            else:
                writer.write(json_response({"choices": [
                    {"message": {"role": "assistant", "content": "Hello"},
                     "finish_reason": "stop"}]}))
            await writer.drain()

    url, _ = await fake(handler)
    messages = [ChatMessage("user", "hi")]
    async with ModelClient(settings(url)) as client:
        assert await client.stream_chat(messages).read() == "Hello"
        whole = await client.chat(messages)
    assert whole.text == "Hello" and whole.finish_reason == "stop"


async def test_model_name_asked_once_from_v1_models(fake) -> None:
    seen: list[str] = []

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while (request := await read_request(reader)) is not None:
            seen.append(request[0].split()[1])
            if request[0].startswith("GET /v1/models"):
                writer.write(json_response({"data": [{"id": "served"}, {"id": "other"}]}))
            else:
                assert json.loads(request[2])["model"] == "served"
                writer.write(json_response({"choices": [{"text": "ok"}]}))
            await writer.drain()

    url, _ = await fake(handler)
    async with ModelClient(settings(url, model="")) as client:
        assert (await client.complete("a")).text == "ok"
        assert (await client.complete("b")).text == "ok"
    assert seen == ["/v1/models", "/v1/completions", "/v1/completions"]


@pytest.mark.parametrize("key", ["sekret", None])
async def test_api_key_from_environment(fake, monkeypatch, key) -> None:
    got: list[dict[str, str]] = []

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        request = await read_request(reader)
        assert request is not None
        got.append(request[1])
        writer.write(json_response({}))
        await writer.drain()

    if key:
        monkeypatch.setenv("STAGECODER_TEST_KEY", key)
    else:
        monkeypatch.delenv("STAGECODER_TEST_KEY", raising=False)
    url, _ = await fake(handler)
    async with ModelClient(settings(url, api_key_env="STAGECODER_TEST_KEY")) as client:
        await client.health()
    assert got[0].get("authorization") == (f"Bearer {key}" if key else None)


async def test_shared_pools_one_client_per_server() -> None:
    pools = ConnectionPools()
    a = ModelClient(EndpointSettings(url="http://127.0.0.1:9/v1/"), pools=pools)
    b = ModelClient(EndpointSettings(url="http://127.0.0.1:9", model="x"), pools=pools)
    c = ModelClient(EndpointSettings(url="http://127.0.0.1:10"), pools=pools)
    assert a.http is b.http and a.http is not c.http
    await a.aclose()  # does not own the pools
    assert not b.http.is_closed
    await pools.aclose()
    assert base_url("http://h:1/v1/") == "http://h:1"


async def test_unknown_generation_option_is_a_type_error() -> None:
    async with ModelClient(EndpointSettings(model="m")) as client:
        with pytest.raises(TypeError, match="top_kk"):
            client.stream_complete("x", top_kk=3)


# --- closing the stream closes the socket -----------------------------------------------------


@pytest.mark.parametrize("how", ["cancel", "break", "total_deadline"])
async def test_abandoned_stream_closes_the_connection(fake, how) -> None:
    closed_at: list[float] = []

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(SSE_HEAD + text_event("tok"))
        await writer.drain()
        while await reader.read(1024):  # until the client closes its end
            pass
        closed_at.append(time.monotonic())

    url, _ = await fake(handler)
    baseline = asyncio.all_tasks()
    async with ModelClient(settings(url, first_token_timeout=0.8, total_timeout=0.8)) as client:
        got_first = asyncio.Event()

        async def consume() -> None:
            async with client.stream_complete("x") as stream:
                async for _ in stream:
                    got_first.set()
                    if how == "break":
                        break

        task = asyncio.create_task(consume())
        await asyncio.wait_for(got_first.wait(), 2)
        t0 = time.monotonic()
        if how == "cancel":
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
        elif how == "break":
            await task
        else:
            with pytest.raises(ModelTimeout) as info:
                await task
            assert info.value.which == "total"
        for _ in range(100):
            if closed_at:
                break
            await asyncio.sleep(0.01)
        assert closed_at, "the server never saw the connection close"
        assert closed_at[0] - t0 < 1.0 + SLACK
        assert not [c for c in client.pools.connections(url) if not c.is_closed()]
    assert not await leftover_tasks(baseline)


# --- typed errors within the deadline ---------------------------------------------------------


async def test_closed_port_is_unavailable_and_names_the_url() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound but not listening: connection refused
        url = f"http://127.0.0.1:{port}"
        async with ModelClient(settings(url)) as client:
            t0 = time.monotonic()
            with pytest.raises(ModelUnavailable) as info:
                await client.stream_complete("x").read()
            assert time.monotonic() - t0 < SLACK
            with pytest.raises(ModelUnavailable):
                await client.health()
    assert url in str(info.value)


async def test_connect_timeout() -> None:
    # A listener with a full accept queue that never accepts: the SYN is never answered.
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)
        port = listener.getsockname()[1]
        fillers = []
        for _ in range(3):
            filler = socket.socket()
            filler.setblocking(False)
            filler.connect_ex(("127.0.0.1", port))
            fillers.append(filler)
        try:
            s = settings(f"http://127.0.0.1:{port}", connect_timeout=0.3, first_token_timeout=3.0,
                         total_timeout=3.0)
            async with ModelClient(s) as client:
                t0 = time.monotonic()
                with pytest.raises(ModelTimeout) as info:
                    await client.stream_complete("x").read()
                assert time.monotonic() - t0 < 0.3 + SLACK
        finally:
            for filler in fillers:
                filler.close()
    assert info.value.which == "connect"


def _answer(raw: bytes) -> Handler:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(raw)
        await writer.drain()

    return handler


MALFORMED = {
    "not_http": b"\x00\xffgarbage\r\n\r\n",
    "not_json": SSE_HEAD + chunk(b"data: {not json\n\n") + DONE,
    "wrong_shape": SSE_HEAD + event({"foo": 1}) + DONE,
    "not_sse": SSE_HEAD + chunk(b"hello there\n\n") + DONE,
    "no_done": SSE_HEAD + text_event("a") + b"0\r\n\r\n",
    "json_instead_of_stream": json_response({"choices": [{"text": "a"}]}),
}


@pytest.mark.parametrize("name", sorted(MALFORMED))
async def test_malformed_stream_is_a_protocol_error(fake, name) -> None:
    url, _ = await fake(_answer(MALFORMED[name]))
    async with ModelClient(settings(url)) as client:
        t0 = time.monotonic()
        with pytest.raises(ModelProtocolError) as info:
            await client.stream_complete("x").read()
        assert time.monotonic() - t0 < 1.5 + SLACK
    assert url in str(info.value)


async def test_malformed_whole_response_is_a_protocol_error(fake) -> None:
    body = b"<html>oops</html>"
    raw = b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n%s" % (len(body), body)
    url, _ = await fake(_answer(raw))
    async with ModelClient(settings(url)) as client:
        with pytest.raises(ModelProtocolError, match="oops"):
            await client.complete("x")


async def test_http_error_carries_status_and_body_excerpt(fake) -> None:
    message = "The model `m` does not exist. " + "x" * 2000
    url, _ = await fake(_answer(json_response({"error": {"message": message}}, status=404)))
    async with ModelClient(settings(url)) as client:
        with pytest.raises(ModelHTTPError) as info:
            await client.stream_complete("x").read()
    assert info.value.status == 404
    assert "does not exist" in info.value.body and len(info.value.body) < 400


async def test_error_event_in_stream_is_an_http_error(fake) -> None:
    error = {"error": {"message": "prompt too long", "code": 400}}
    url, _ = await fake(_answer(SSE_HEAD + text_event("a") + event(error) + DONE))
    async with ModelClient(settings(url)) as client:
        with pytest.raises(ModelHTTPError) as info:
            await client.stream_complete("x").read()
    assert info.value.status == 400 and "prompt too long" in info.value.body


STALLS = {
    "no_answer": (b"", "first_token", 0.5),
    "headers_only": (SSE_HEAD, "first_token", 0.5),
    "stalls_after_first_token": (SSE_HEAD + text_event("a"), "total", 1.5),
}


@pytest.mark.parametrize("name", sorted(STALLS))
async def test_stalled_server_hits_the_right_deadline(fake, name) -> None:
    raw, which, seconds = STALLS[name]

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(raw)
        await writer.drain()
        await reader.read()  # hold the connection open until the client leaves

    url, _ = await fake(handler)
    async with ModelClient(settings(url)) as client:
        t0 = time.monotonic()
        with pytest.raises(ModelTimeout) as info:
            await client.stream_complete("x").read()
        elapsed = time.monotonic() - t0
    assert info.value.which == which
    assert seconds - 0.05 <= elapsed < seconds + SLACK


async def test_whole_request_total_deadline(fake) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        await reader.read()

    url, _ = await fake(handler)
    async with ModelClient(settings(url, total_timeout=0.4)) as client:
        t0 = time.monotonic()
        with pytest.raises(ModelTimeout) as info:
            await client.complete("x")
        assert time.monotonic() - t0 < 0.4 + SLACK
    assert info.value.which == "total"


async def test_connection_dropped_mid_stream_is_unavailable(fake) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(SSE_HEAD + text_event("a"))
        await writer.drain()
        await asyncio.sleep(0.1)
        writer.transport.abort()

    url, _ = await fake(handler)
    async with ModelClient(settings(url)) as client:
        with pytest.raises(ModelUnavailable, match="mid-stream"):
            await client.stream_complete("x").read()


KILLABLE_SERVER = textwrap.dedent("""
    import socket, sys, time
    listener = socket.create_server(("127.0.0.1", 0))
    print(listener.getsockname()[1], flush=True)
    conn, _ = listener.accept()
    data = b""
    while b"\\r\\n\\r\\n" not in data:
        data += conn.recv(65536)
    conn.sendall(%r)
    time.sleep(60)
""")


async def test_server_process_killed_mid_stream(tmp_path: Path) -> None:
    script = tmp_path / "server.py"
    script.write_text(KILLABLE_SERVER % (SSE_HEAD + text_event("first")), encoding="utf-8")
    proc = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE)
    try:
        assert proc.stdout is not None
        port = int(proc.stdout.readline())
        s = settings(f"http://127.0.0.1:{port}", first_token_timeout=3.0, total_timeout=3.0)
        async with ModelClient(s) as client, client.stream_complete("x") as stream:
            assert await anext(stream) == "first"
            proc.kill()
            t0 = time.monotonic()
            with pytest.raises(ModelUnavailable) as info:
                await anext(stream)
            assert time.monotonic() - t0 < SLACK
    finally:
        proc.kill()
        proc.wait()
    assert "mid-stream" in str(info.value)


async def test_closed_stream_stops_iterating(fake) -> None:
    url, _ = await fake(streaming(["a", "b"]))
    async with ModelClient(settings(url)) as client:
        stream = client.stream_complete("x")
        assert await stream.read() == "ab"
        assert [piece async for piece in stream] == []  # exhausted and closed: no error
        never_opened = client.stream_complete("x")
        await never_opened.aclose()
        assert [piece async for piece in never_opened] == []


# --- every way a stream ends releases its connection (issue 18) -------------------------------
# The pool's own counters are the witness: `counts()["active"]` must be 0 as soon as the close
# returns, and the fake server's count of open sockets must stay within the keep-alive bound.

UNIT = "    return radius * 2\n\ndef next_one():\n"  # the last piece completes the unit


def fake_settings(url: str, **kw: object) -> EndpointSettings:
    return settings(url, **{"first_token_timeout": 2.0, "total_timeout": 3.0, "max_tokens": 32,
                            **kw})


def in_use(client: ModelClient) -> int:
    return client.pools.counts(client.url)["active"]


@contextlib.asynccontextmanager
async def served(client: dict | None = None, **behaviour: object
                 ) -> AsyncIterator[tuple[FakeModelServer, ModelClient]]:
    """A fake model server with `behaviour` and a client (with `client` settings) for it."""
    server = FakeModelServer(**behaviour)  # type: ignore[arg-type]
    async with server, ModelClient(fake_settings(server.url, **(client or {}))) as model_client:
        yield server, model_client


async def test_unit_complete_with_end_of_stream_releases_both_connections() -> None:
    # The leak's trigger: the piece that completes the unit arrives with finish_reason, usage
    # and [DONE]; the consumer leaves at once and the pumps are cancelled while the body ends.
    async with FakeModelServer(mode="unit_end", text=UNIT) as server:
        model = VllmCompletionModel(fake_settings(server.url))
        try:
            for _ in range(40):
                text = ""
                async with model.stream("def area(radius):\n", n=2, max_tokens=32) as deltas:
                    async for delta in deltas:
                        if delta.index == 0:
                            text += delta.text
                        if text.endswith("():\n"):
                            break  # the unit is complete: leave like the pipeline does
                assert text == UNIT
                assert model.connection_counts()["active"] == 0
            assert model.connection_counts()["idle"] <= 2
            assert server.open <= 2  # reused, not one socket per request
        finally:
            await model.aclose()


@pytest.mark.parametrize("mode", ["trickle", "unit_end"])
async def test_cancel_at_any_moment_releases_the_connection(mode: str) -> None:
    # Cancels land before the request is sent, while waiting for headers, between pieces,
    # during the last piece and while the connection is being returned: none may leak.
    rng = random.Random(18)
    async with served(mode=mode, text=UNIT, piece_chars=2, delay=0.002) as (server, client):
        for _ in range(120):
            task = asyncio.create_task(client.stream_complete("x").read())
            await asyncio.sleep(rng.uniform(0, 0.04))
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            assert in_use(client) == 0
        assert await client.stream_complete("x").read() == UNIT  # still serving
        assert server.open <= DEFAULT_LIMITS.max_keepalive_connections


async def test_cancel_twice_while_closing_still_releases() -> None:
    # A second cancellation (a cancel after a supersede) must not interrupt the release.
    rng = random.Random(7)
    async with served(mode="unit_end", text=UNIT, piece_chars=2) as (_, client):
        for _ in range(60):
            task = asyncio.create_task(client.stream_complete("x").read())
            await asyncio.sleep(rng.uniform(0, 0.01))
            task.cancel()
            await asyncio.sleep(0)
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            for _ in range(100):  # the owned exchange finishes on its own
                if in_use(client) == 0:
                    break
                await asyncio.sleep(0.01)
            assert in_use(client) == 0


async def test_supersede_closes_the_older_stream_and_reaches_the_server() -> None:
    async with FakeModelServer(mode="hang") as server:
        model = VllmCompletionModel(fake_settings(server.url, first_token_timeout=5.0))
        try:
            async def consume() -> None:
                async with model.stream("p", n=2, max_tokens=8) as deltas:
                    async for _ in deltas:
                        pass

            older = asyncio.create_task(consume())
            for _ in range(200):
                if server.completions == 2:
                    break
                await asyncio.sleep(0.01)
            assert server.open == 2
            t0 = asyncio.get_running_loop().time()
            older.cancel()  # what a newer request for the same document does
            with pytest.raises(asyncio.CancelledError):
                await older
            assert model.connection_counts() == {"active": 0, "idle": 0}
            for _ in range(100):
                if server.client_closed == 2:
                    break
                await asyncio.sleep(0.01)
            assert server.client_closed == 2  # vLLM would abort both requests
            assert max(server.close_times) - t0 < 1.0
            assert server.open == 0
        finally:
            await model.aclose()


@pytest.mark.parametrize(("mode", "error", "reused"), [
    ("slow_first", ModelTimeout, False),  # first-token deadline
    ("hang", ModelTimeout, False),  # headers, then nothing
    ("http500", ModelHTTPError, True),  # a whole error answer: the connection stays usable
    ("garbage", ModelProtocolError, False),
    ("close_mid", ModelUnavailable, False),
])
async def test_failed_stream_releases_the_connection(mode, error, reused) -> None:
    async with served(mode=mode, first_delay=2.0,
                      client=dict(first_token_timeout=0.3)) as (server, client):
        for _ in range(3):
            with pytest.raises(error):
                await client.stream_complete("x").read()
            assert in_use(client) == 0
        for _ in range(100):
            if server.open <= int(reused):
                break
            await asyncio.sleep(0.01)
        assert server.open == int(reused)
        assert server.accepted == (1 if reused else 3)

async def test_total_deadline_mid_stream_releases_the_connection() -> None:
    async with served(mode="trickle", text="a" * 400, piece_chars=1, delay=0.01,
                      client=dict(total_timeout=0.4)) as (server, client):
        with pytest.raises(ModelTimeout) as info:
            await client.stream_complete("x").read()
        assert info.value.which == "total"
        assert in_use(client) == 0
        for _ in range(100):
            if server.open == 0:
                break
            await asyncio.sleep(0.01)
        assert server.client_closed == 1 and server.open == 0


async def test_cancelled_whole_requests_release_the_connection() -> None:
    rng = random.Random(3)
    async with served() as (server, client):
        for _ in range(80):
            task = asyncio.create_task(client.health())
            await asyncio.sleep(rng.uniform(0, 0.005))
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            for _ in range(100):
                if in_use(client) == 0:
                    break
                await asyncio.sleep(0.01)
            assert in_use(client) == 0
        await client.health()
        assert server.open <= DEFAULT_LIMITS.max_keepalive_connections


async def test_pool_size_and_keepalive_are_bounded() -> None:
    limits = httpx.Limits(max_connections=3, max_keepalive_connections=2, keepalive_expiry=0.3)
    async with FakeModelServer(mode="trickle", text="abcdef", piece_chars=1, delay=0.02
                               ) as server:
        pools = ConnectionPools(limits=limits)
        client = ModelClient(fake_settings(server.url), pools=pools)
        try:
            texts = await asyncio.gather(*(client.stream_complete("x").read() for _ in range(5)))
            assert texts == ["abcdef"] * 5
            assert server.peak == 3  # the other two waited for a free connection
            assert pools.counts(client.url) == {"active": 0, "idle": 2}
            assert server.open == 2  # the surplus idle connection was closed on release
            released = asyncio.get_running_loop().time()
            # No request follows: the sweep, not the next request, closes the idle sockets.
            for _ in range(300):
                if server.open == 0:
                    break
                await asyncio.sleep(0.01)
            waited = asyncio.get_running_loop().time() - released
            assert server.open == 0 and pools.counts(client.url) == {"active": 0, "idle": 0}
            assert 0.3 - 0.05 <= waited < 0.3 + SLACK
            assert await client.stream_complete("x").read() == "abcdef"  # a fresh connection
        finally:
            await pools.aclose()


def test_default_limits_are_the_documented_ones() -> None:
    assert (DEFAULT_LIMITS.max_connections, DEFAULT_LIMITS.max_keepalive_connections,
            DEFAULT_LIMITS.keepalive_expiry) == (32, 8, 4.0)
    assert ConnectionPools().limits is DEFAULT_LIMITS


async def test_fake_model_server_runs_as_a_subprocess() -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tests.fakes.openai_server", "--port", "0", "--mode", "unit_end",
        cwd=Path(__file__).resolve().parents[3], stdout=subprocess.PIPE)
    try:
        assert proc.stdout is not None
        port = int(await asyncio.wait_for(proc.stdout.readline(), 30))
        url = f"http://127.0.0.1:{port}"
        async with ModelClient(fake_settings(url, model="")) as client:
            assert await client.model_name() == "fake-deepseek"
            assert await client.stream_complete("x").read() == DEFAULT_TEXT
            async with httpx.AsyncClient(base_url=url) as raw:
                stats = (await raw.get("/fake/stats")).json()
        assert stats["completions"] == 1 and stats["open"] == 1  # the client's kept connection
    finally:
        proc.kill()
        await proc.wait()
