"""Several replicas of one endpoint: routing, failover, the breaker, and priorities on the wire.

Every server here is the fake OpenAI-compatible server (tests/fakes/openai_server.py) over real
loopback HTTP, in the test's event loop; its `bodies` are what went on the wire.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Awaitable, Callable

import msgspec
import pytest

from analysis.documents.document import Document
from analysis.settings import EndpointSettings, PrioritySettings, Settings, StageSettings
from generation.chat.rewrite import rewrite_selection
from generation.completion.engine import CompletionEngine
from generation.completion.fim_model import model_factory
from generation.model import replicas as replicas_module
from generation.model.client import ModelClient
from generation.model.errors import ModelUnavailable
from generation.model.replicas import affinity_key
from tests.fakes.openai_server import FakeModelServer

SOURCE = "def area(radius):\n\n"
OFFSET = len(SOURCE) - 1
STAGED = "    return radius * 2"  # what the stages keep of the fake's DEFAULT_TEXT


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def endpoint(*urls: str, **kw: object) -> EndpointSettings:
    base = EndpointSettings(urls=list(urls), model="fake-deepseek", connect_timeout=1.0,
                            first_token_timeout=5.0, total_timeout=10.0, max_tokens=16)
    return msgspec.structs.replace(base, **kw)


def engine_for(completion: EndpointSettings, **changes: object) -> CompletionEngine:
    settings = msgspec.structs.replace(
        Settings(), completion=completion, stages=StageSettings(candidates=1), **changes)
    return CompletionEngine(settings, model_factory())


def doc(name: str) -> Document:
    return Document(f"file:///team/{name}.py", SOURCE, "python", 1)


async def until(condition: Callable[[], bool], seconds: float = 5.0) -> None:
    """Wait (polling the fake's counters, which have no event) until `condition` holds."""
    deadline = asyncio.get_running_loop().time() + seconds
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "condition not reached in time"
        await asyncio.sleep(0.01)


@pytest.fixture
async def servers() -> AsyncIterator[Callable[..., Awaitable[FakeModelServer]]]:
    started: list[FakeModelServer] = []

    async def make(**kw: object) -> FakeModelServer:
        server = await FakeModelServer(**kw).start()  # type: ignore[arg-type]
        started.append(server)
        return server

    yield make
    for server in started:
        await server.aclose()


def test_url_alone_is_a_one_element_list_and_urls_win() -> None:
    assert EndpointSettings(url="http://a:1").replica_urls() == ["http://a:1"]
    both = EndpointSettings(url="http://a:1", urls=["http://b:2", "http://c:3"])
    assert both.replica_urls() == ["http://b:2", "http://c:3"]
    assert ModelClient(both).url == "http://b:2"


async def test_a_document_stays_on_one_replica_and_new_ones_spread(servers) -> None:
    a, b = await servers(), await servers()
    engine = engine_for(endpoint(a.url, b.url))
    try:
        for _ in range(3):
            outcomes = await asyncio.gather(*(
                engine.complete(doc(f"d{i}"), OFFSET, use_cache=False) for i in range(6)))
            assert [o.text for o in outcomes] == [STAGED] * 6
        # Each document's three requests went to one server; the documents went to both.
        seen: dict[str, set[int]] = {}
        for port, server in ((a.port, a), (b.port, b)):
            for body in server.bodies:
                name = body["prompt"].split("# ", 1)[1].split("\n", 1)[0]
                seen.setdefault(name, set()).add(port)
        assert len(seen) == 6 and all(len(ports) == 1 for ports in seen.values())
        assert a.completions and b.completions and a.completions + b.completions == 18
        replicas = engine.stats()["replicas"]
        assert [r["url"] for r in replicas] == [a.url, b.url]
        assert [r["answered"] for r in replicas] == [a.completions, b.completions]
        assert all(r["state"] == "up" and r["inflight"] == 0 for r in replicas)
    finally:
        await engine.model.aclose()  # type: ignore[attr-defined]


async def test_a_request_without_a_document_goes_to_the_least_busy_replica(servers) -> None:
    a, b = await servers(mode="hang"), await servers(mode="hang")
    async with ModelClient(endpoint(a.url, b.url)) as client:
        first = client.stream_complete("x")
        await first.__aenter__()
        second = client.stream_complete("y")
        await second.__aenter__()  # a has one request in flight, b none
        assert (a.completions, b.completions) == (1, 1)
        assert [r["inflight"] for r in client.replicas.stats()] == [1, 1]
        await first.aclose()
        await second.aclose()
        assert [r["inflight"] for r in client.replicas.stats()] == [0, 0]


async def test_a_refused_connection_is_retried_on_the_other_replica(servers) -> None:
    b = await servers()
    dead = f"http://127.0.0.1:{free_port()}"
    async with ModelClient(endpoint(dead, b.url)) as client:
        with affinity_key("file:///team/x.py"):
            text = await client.stream_complete("p").read()
            assert text == b.text
            whole = await client.complete("p")  # a whole answer: the other replica too
            assert whole.text == b.text
        down, up = client.replicas.stats()
        assert (down["state"], down["requests"], down["failed"], down["retried"]) == (
            "down", 1, 1, 1)  # the second request did not try the dead one again
        assert (up["state"], up["answered"]) == ("up", 2)


async def test_one_retry_only_then_the_error_stands() -> None:
    dead = [f"http://127.0.0.1:{free_port()}" for _ in range(3)]
    async with ModelClient(endpoint(*dead)) as client:
        with pytest.raises(ModelUnavailable):
            await client.stream_complete("p").read()
        assert [r["requests"] for r in client.replicas.stats()] == [1, 1, 0]


@pytest.mark.parametrize("mode", ["trickle", "slow_first"])
async def test_a_replica_killed_mid_run_costs_only_its_requests_in_flight(servers, mode) -> None:
    # trickle: its streams have tokens when it dies (answered empty); slow_first: none has a
    # token yet, so every one of them is retried on the other replica (none lost).
    slow = await servers(mode=mode, delay=0.05, first_delay=30.0)
    fast = await servers()
    engine = engine_for(endpoint(slow.url, fast.url))
    try:
        docs = [doc(f"k{i}") for i in range(8)]
        running = [asyncio.ensure_future(engine.complete(d, OFFSET)) for d in docs]
        await until(lambda: slow.completions >= 2 and slow.open >= 2)
        on_slow = engine.stats()["replicas"][0]["inflight"]
        assert on_slow >= 2
        await slow.aclose()  # killed: every connection to it drops
        outcomes = await asyncio.wait_for(asyncio.gather(*running), 10)
        lost = [o for o in outcomes if o.text is None]
        assert all(isinstance(o.error, ModelUnavailable) for o in lost)
        assert len(lost) <= on_slow  # at most the requests in flight on it, each answered empty
        retried = engine.stats()["replicas"][0]["retried"]
        assert len(lost) + retried == on_slow  # each one in flight: answered empty or retried
        if mode == "slow_first":
            assert not lost
        assert all(o.text == STAGED for o in outcomes if o.text is not None)
        # From now on everything goes to the live replica, documents of the dead one included.
        again = await asyncio.wait_for(
            asyncio.gather(*(engine.complete(d, OFFSET, use_cache=False) for d in docs)), 10)
        assert [o.text for o in again] == [STAGED] * 8
        dead, live = engine.stats()["replicas"]
        assert dead["state"] == "down" and live["state"] == "up"
        assert dead["inflight"] == live["inflight"] == 0
        assert engine.stats()["modelConnections"]["active"] == 0
    finally:
        await engine.model.aclose()  # type: ignore[attr-defined]


async def test_a_replica_comes_back_after_a_health_probe(servers, monkeypatch) -> None:
    monkeypatch.setattr(replicas_module, "FIRST_COOLDOWN", 0.0)
    port = free_port()
    b = await servers()
    async with ModelClient(endpoint(f"http://127.0.0.1:{port}", b.url)) as client:
        await client.stream_complete("p").read()  # a is refused: down, retried on b
        assert client.replicas.stats()[0]["state"] == "down"
        a = await servers(port=port)  # the server is back on its port
        await client.stream_complete("p").read()  # still b; this routing starts a probe of a
        await client.replicas.wait_probes()
        assert client.replicas.stats()[0]["state"] == "up"
        with affinity_key("fresh-document"):
            await client.stream_complete("p").read()
        assert a.completions == 1  # the least busy again, listed first


async def test_every_request_carries_its_kinds_priority(servers) -> None:
    completion, chat = await servers(), await servers(text="```python\nx = 1\n```\n")
    engine = engine_for(endpoint(completion.url), chat=endpoint(chat.url))
    try:
        assert (await engine.complete(doc("p"), OFFSET)).text == STAGED
        source = Document("file:///team/r.py", "x = 0\n", "python", 1)
        await rewrite_selection(engine.chat_client(), source, 0, 5, StageSettings())
    finally:
        await engine.model.aclose()  # type: ignore[attr-defined]
        await engine.chat_client().aclose()
    assert completion.bodies[-1]["priority"] == 0
    assert chat.bodies[-1]["priority"] == 5 and chat.bodies[-1]["messages"]
    # A setting overrides the defaults.
    custom = engine_for(endpoint(completion.url),
                        priority=PrioritySettings(completion=-3, rewrite=7))
    try:
        await custom.complete(doc("q"), OFFSET)
    finally:
        await custom.model.aclose()  # type: ignore[attr-defined]
    assert completion.bodies[-1]["priority"] == -3


async def test_a_server_that_refuses_priorities_gets_none(fake_refusing) -> None:
    url, bodies = fake_refusing
    async with ModelClient(endpoint(url), priority=10) as client:
        assert await client.stream_complete("p").read() == "ok"
        assert (await client.complete("p")).text == "ok"
    # The first request was refused and sent again without a priority; later ones go without.
    assert [b.get("priority") for b in bodies] == [10, None, None]
    assert client.replicas.stats()[0]["priority"] is False


@pytest.fixture
async def fake_refusing() -> AsyncIterator[tuple[str, list[dict]]]:
    """A server that answers 400 to any non-zero priority, as vLLM servers of old did."""
    import json

    bodies: list[dict] = []

    async def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n")
                               if line.lower().startswith(b"content-length:")), 0)
                body = json.loads(await reader.readexactly(length) or b"{}")
                bodies.append(body)
                if body.get("priority"):
                    payload = json.dumps({"error": {"message": "Got priority 10 but Priority "
                                                    "scheduling is not enabled."}}).encode()
                    status = b"400 Bad Request"
                elif body.get("stream"):
                    events = (b'data: {"choices": [{"index": 0, "text": "ok"}]}\n\n'
                              b"data: [DONE]\n\n")
                    writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n"
                                 b"content-length: " + str(len(events)).encode() + b"\r\n\r\n"
                                 + events)
                    await writer.drain()
                    continue
                else:
                    payload = json.dumps({"choices": [{"index": 0, "text": "ok"}]}).encode()
                    status = b"200 OK"
                writer.write(b"HTTP/1.1 " + status + b"\r\ncontent-type: application/json\r\n"
                             b"content-length: " + str(len(payload)).encode() + b"\r\n\r\n"
                             + payload)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(on_connect, "127.0.0.1", 0)
    yield f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}", bodies
    server.close()


def test_model_serve_turns_on_priority_scheduling(tmp_path, monkeypatch) -> None:
    from generation.serving import serve as serving
    from lsp_server.cli import main

    (tmp_path / "config.json").write_text('{"max_position_embeddings": 4096}')
    built: list[list[str]] = []
    monkeypatch.setattr(serving, "serve",
                        lambda opts, **kw: built.append(serving.build_command(opts)) or 0)
    assert main(["model", "serve", str(tmp_path), "--device", "cpu"]) == 0
    cmd = built[0]
    assert cmd[cmd.index("--scheduling-policy") + 1] == "priority"
    # A user's own choice comes later on the command line, so it wins in vLLM's parser.
    assert main(["model", "serve", str(tmp_path), "--device", "cpu",
                 "--scheduling-policy", "fcfs"]) == 0
    assert built[1][-2:] == ["--scheduling-policy", "fcfs"]
