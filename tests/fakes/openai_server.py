"""A fake OpenAI-compatible model server, shaped like vLLM's, on 127.0.0.1: tests over real HTTP.

It serves `GET /health`, `GET /v1/models`, `POST /v1/completions` and `POST /v1/chat/completions`
(its reply is `text`; server-sent events when the body says `"stream": true`, like vLLM: one
`data:` event per piece, the finish reason on the last piece, a usage event, `data: [DONE]`, all
chunked over a keep-alive HTTP/1.1 connection).
`GET /fake/stats` returns its counters as JSON (that request's own connection is not counted).

Behaviour (`mode`, one for every completion request):
- `unit_end`: the stream ends exactly when the unit completes: the earlier pieces are written one
  by one (`delay` seconds apart), then the finishing piece, its finish reason, the usage event
  and `[DONE]` go out in one write, back to back (the trigger of issue 18's connection leak);
- `trickle`: every piece `delay` seconds after the previous one, and the end of the stream
  (usage, `[DONE]`) `delay` seconds after the last piece, in a write of its own;
- `slow_first`: the first piece after `first_delay` seconds, the rest at once;
- `hang`: the response headers, then nothing until the client closes the connection;
- `garbage`: bytes that are not HTTP, then the connection is closed;
- `close_mid`: the first piece, then the connection is dropped;
- `http500`: an HTTP 500 with an OpenAI-style JSON error.

Counters: `open` (connections open now), `peak`, `accepted` (ever), `completions` (requests),
`client_closed` (responses the client abandoned before their end, i.e. cancellations that
reached the server) and `close_times` (loop time of each of those). `bodies` holds the decoded
body of every completion and chat request (the last 1,000), so tests can assert what went on
the wire.

In-process (same event loop as the test)::

    async with FakeModelServer(mode="unit_end", text="...") as server:
        server.url, server.open

As a subprocess (prints the port on its first line, then serves until killed)::

    python -m tests.fakes.openai_server --port 0 --mode unit_end [--text ...] [--delay s]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
from dataclasses import dataclass, field
from typing import Self

MODES = ("unit_end", "trickle", "slow_first", "hang", "garbage", "close_mid", "http500")
DEFAULT_TEXT = "    return radius * 2\n\ndef next_one():\n"
SSE_HEAD = (b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream; charset=utf-8\r\n"
            b"transfer-encoding: chunked\r\n\r\n")
END = b"0\r\n\r\n"


def _chunk(data: bytes) -> bytes:
    return f"{len(data):x}\r\n".encode() + data + b"\r\n"


def _event(obj: object) -> bytes:
    return _chunk(b"data: " + json.dumps(obj).encode() + b"\n\n")


def _json(obj: object, status: int = 200, reason: str = "OK") -> bytes:
    body = json.dumps(obj).encode()
    return (f"HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\n"
            f"content-length: {len(body)}\r\n\r\n").encode() + body


@dataclass
class FakeModelServer:
    """The fake server; `await start()` (or `async with`) binds 127.0.0.1 on `port`."""

    mode: str = "unit_end"
    text: str = DEFAULT_TEXT
    piece_chars: int = 4
    delay: float = 0.0
    first_delay: float = 1.5
    model: str = "fake-deepseek"
    port: int = 0
    open: int = 0
    peak: int = 0
    accepted: int = 0
    completions: int = 0
    client_closed: int = 0
    close_times: list[float] = field(default_factory=list)
    bodies: list[dict] = field(default_factory=list)
    _server: asyncio.Server | None = None
    _handlers: set[asyncio.Task] = field(default_factory=set)

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"unknown mode {self.mode!r}; choose from {', '.join(MODES)}")

    @property
    def url(self) -> str:
        """The server's base URL (as `completion.url` takes it)."""
        return f"http://127.0.0.1:{self.port}"

    def stats(self) -> dict[str, object]:
        """The counters, as `GET /fake/stats` returns them."""
        return {"open": self.open, "peak": self.peak, "accepted": self.accepted,
                "completions": self.completions, "clientClosed": self.client_closed}

    async def start(self) -> Self:
        """Start listening; `port` becomes the bound port."""
        self._server = await asyncio.start_server(self._on_connect, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def aclose(self) -> None:
        """Stop listening and drop every connection."""
        if self._server is not None:
            self._server.close()
            for task in list(self._handlers):
                task.cancel()
            await asyncio.gather(*self._handlers, return_exceptions=True)
            await self._server.wait_closed()

    async def __aenter__(self) -> Self:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # -- connections --

    async def _on_connect(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
                          ) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        self.accepted += 1
        self.open += 1
        self.peak = max(self.peak, self.open)
        counted = True
        try:
            while (request := await _read_request(reader)) is not None:
                path, body = request
                if path == "/fake/stats" and counted:
                    counted = False  # the asker's own connection is not a model connection
                    self.open -= 1
                if not await self._answer(path, body, reader, writer):
                    break
        except ConnectionError:
            # Only an answer in progress raises it (`_read_request` returns None instead): the
            # client reset the connection while a write was under way, which is leaving too.
            self._record_client_close()
        except asyncio.IncompleteReadError:
            pass
        except asyncio.CancelledError:
            pass  # the server is stopping: end the handler quietly
        finally:
            if counted:
                self.open -= 1
            self._handlers.discard(task)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _answer(self, path: str, body: bytes, reader: asyncio.StreamReader,
                      writer: asyncio.StreamWriter) -> bool:
        """Answer one request; False when the connection must close afterwards."""
        if path == "/health":
            writer.write(_json({}))
        elif path == "/fake/stats":
            writer.write(_json(self.stats()))
        elif path == "/v1/models":
            writer.write(_json({"object": "list", "data": [{"id": self.model, "object": "model"}]}))
        elif path in ("/v1/completions", "/v1/chat/completions"):
            chat = path == "/v1/chat/completions"
            self.completions += 1
            request = json.loads(body or b"{}")
            self.bodies = [*self.bodies[-999:], request]
            if request.get("stream"):
                return await self._stream(request, reader, writer, chat)
            answer = {"message": {"role": "assistant", "content": self.text}} if chat else {
                "text": self.text}
            writer.write(_json({"choices": [{"index": 0, **answer, "finish_reason": "stop"}]}))
        else:
            writer.write(_json({"error": {"message": f"no route {path}"}}, 404, "Not Found"))
        await writer.drain()
        return True

    async def _stream(self, request: dict, reader: asyncio.StreamReader,
                      writer: asyncio.StreamWriter, chat: bool = False) -> bool:
        n = int(request.get("n") or 1)
        if self.mode == "garbage":
            writer.write(b"\x00\xffnot http at all\r\n\r\n")
            await writer.drain()
            return False
        if self.mode == "http500":
            writer.write(_json({"error": {"message": "fake internal error", "code": 500}},
                               500, "Internal Server Error"))
            await writer.drain()
            return True
        writer.write(SSE_HEAD)
        await writer.drain()
        if self.mode == "hang":
            await self._until_client_leaves(reader)
            return False
        pieces = [self.text[i:i + self.piece_chars]
                  for i in range(0, len(self.text), self.piece_chars)] or [""]
        usage = {"prompt_tokens": 10, "completion_tokens": len(pieces),
                 "total_tokens": 10 + len(pieces)}
        tail = _event({"choices": [], "usage": usage}) + _chunk(b"data: [DONE]\n\n") + END
        for i, piece in enumerate(pieces):
            last = i == len(pieces) - 1
            wait = self._wait_before(i)
            if wait and await self._client_left_within(reader, wait):
                return False
            text: dict = {"delta": {"content": piece}} if chat else {"text": piece}
            out = b"".join(_event({"choices": [{"index": k, **text,
                                                "finish_reason": "length" if last else None}]})
                           for k in range(n))
            if last and self.mode == "unit_end":
                out += tail  # the finishing piece and the end of the stream in one write
            writer.write(out)
            await writer.drain()
            if self.mode == "close_mid":
                writer.transport.abort()
                return False
        if self.mode != "unit_end":
            if self.delay and await self._client_left_within(reader, self.delay):
                return False
            writer.write(tail)
            await writer.drain()
        return True

    def _wait_before(self, piece: int) -> float:
        if self.mode == "slow_first":
            return self.first_delay if piece == 0 else 0.0
        return self.delay if piece > 0 else 0.0

    async def _client_left_within(self, reader: asyncio.StreamReader, seconds: float) -> bool:
        """Wait `seconds`; True (and counted) if the client closed the connection meanwhile."""
        try:
            data = await asyncio.wait_for(reader.read(1), seconds)
        except TimeoutError:
            return False
        if not data:
            self._record_client_close()
            return True
        return False  # a pipelined request: not something these clients do

    async def _until_client_leaves(self, reader: asyncio.StreamReader) -> None:
        while await reader.read(4096):
            pass
        self._record_client_close()

    def _record_client_close(self) -> None:
        self.client_closed += 1
        self.close_times.append(asyncio.get_running_loop().time())


async def _read_request(reader: asyncio.StreamReader) -> tuple[str, bytes] | None:
    """The path and body of the next request on the connection; None once the client left."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
        return None
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip()
               for k, _, v in (line.partition(":") for line in lines[1:] if line)}
    body = await reader.readexactly(int(headers.get("content-length", "0") or 0))
    parts = lines[0].split()
    return (parts[1] if len(parts) > 1 else "/").split("?")[0], body


async def _serve(args: argparse.Namespace) -> None:
    server = FakeModelServer(mode=args.mode, text=args.text, delay=args.delay,
                             first_delay=args.first_delay, port=args.port)
    await server.start()
    print(server.port, flush=True)
    await asyncio.Event().wait()  # until killed


def main(argv: list[str] | None = None) -> None:
    """Command line: run the fake server until killed, printing its port first."""
    parser = argparse.ArgumentParser(prog="python -m tests.fakes.openai_server")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--mode", choices=MODES, default="unit_end")
    parser.add_argument("--text", default=DEFAULT_TEXT)
    parser.add_argument("--delay", type=float, default=0.0)
    parser.add_argument("--first-delay", type=float, default=1.5)
    args = parser.parse_args(argv)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(args))


if __name__ == "__main__":
    main(sys.argv[1:])
