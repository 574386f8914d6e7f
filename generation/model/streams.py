"""Server-sent event streams of one generation: `TextStream` (text) and `CandidateStream` (n).

A stream's HTTP exchange runs in an owned task (see `generation.model.exchange`) that feeds the
body's lines into a queue; the reader parses the events under the first-token and the total
deadline. Leaving `async with`, `aclose()`, exhausting the stream, an error, or cancelling the
reader releases the connection (vLLM aborts a request as soon as its connection closes).

A stream goes to the replica that `generation.model.replicas` picks; when its connection fails
before the first token, it starts once more on another replica, within the same deadlines (the
reader sees nothing of the failed attempt).
"""

from __future__ import annotations

import asyncio
import collections
import functools
from collections.abc import Callable
from types import TracebackType
from typing import TYPE_CHECKING, Self

import httpx
import msgspec

from generation.model.errors import (
    Deadline,
    ModelHTTPError,
    ModelProtocolError,
    ModelTimeout,
    excerpt,
)
from generation.model.exchange import (
    Owned,
    aclose_shielded,
    body_chunks,
    raw_stream,
    read_body,
    transport_error,
)
from generation.model.replicas import Replica, affinity, is_connection_failure
from generation.model.wire import (
    CandidatePiece,
    ChatChunk,
    CompletionResponse,
    Usage,
    _ErrorEvent,
)

if TYPE_CHECKING:  # the client builds streams; a stream only calls back into it
    from generation.model.client import ModelClient

Piece = tuple[str | None, str | None, Usage | None]  # text, finish reason, usage
_completion_decoder = msgspec.json.Decoder(CompletionResponse)
_chat_decoder = msgspec.json.Decoder(ChatChunk)
_error_decoder = msgspec.json.Decoder(_ErrorEvent)


def completion_piece(data: bytes) -> Piece:
    """Text, finish reason and usage of one /v1/completions event."""
    chunk = _completion_decoder.decode(data)
    if not chunk.choices:
        return None, None, chunk.usage
    choice = chunk.choices[0]
    return choice.text, choice.finish_reason, chunk.usage


def chat_piece(data: bytes) -> Piece:
    """Text, finish reason and usage of one /v1/chat/completions event."""
    chunk = _chat_decoder.decode(data)
    if not chunk.choices:
        return None, None, chunk.usage
    choice = chunk.choices[0]
    return choice.delta.content or "", choice.finish_reason, chunk.usage


MAX_STREAM_BYTES = 16 << 20  # one event stream
MAX_LINE_BYTES = 1 << 20  # one line of an event stream
_ERROR_BODY_BYTES = 64 << 10  # what is read of an HTTP error's body for its message
_HEAD = object()  # the exchange got a 200 event stream
_END = object()  # the body ended


class _Lines:
    """Splits an event stream's bytes into lines (LF, CRLF or CR), each bounded in length."""

    def __init__(self, url: str) -> None:
        self._url = url
        self._tail = b""

    def feed(self, data: bytes) -> list[str]:
        """The lines completed by `data`."""
        lines = (self._tail + data).splitlines(keepends=True)
        self._tail = lines.pop() if lines and not lines[-1].endswith((b"\n", b"\r")) else b""
        if len(self._tail) > MAX_LINE_BYTES:
            raise ModelProtocolError(self._url, f"event line longer than {MAX_LINE_BYTES} bytes")
        return [line.rstrip(b"\r\n").decode("utf-8", "replace") for line in lines]

    def rest(self) -> list[str]:
        """The unterminated last line, if any."""
        return [self._tail.decode("utf-8", "replace")] if self._tail else []


class TextStream:
    """One streamed generation; iterating yields text pieces.

    Leaving `async with`, `aclose()`, exhausting it, an error, or cancelling the task that
    iterates closes the stream; `aclose()` returns once the HTTP connection is back in the pool
    (body read to its end) or closed (vLLM then aborts the request). The HTTP exchange itself
    runs in an owned task (see `generation.model.exchange`) that feeds lines into a queue.
    """

    def __init__(self, client: ModelClient, path: str, build: Callable[[str], msgspec.Struct],
                 parse: Callable[[bytes], Piece]) -> None:
        self._client = client
        self._path = path
        self._build = build
        self._parse = parse
        self._exchange: Owned[None] | None = None
        self._items: asyncio.Queue[object] = asyncio.Queue()
        self._opened = False
        self._closed = False
        self._done = False  # [DONE] seen
        self._first_seen = False
        self._first_deadline = self._total_deadline = 0.0
        self._key: str | None = None  # routing affinity (the document's URI)
        self._body: msgspec.Struct | None = None
        self._replica: Replica | None = None  # where the exchange runs, until settled
        self._tried: list[Replica] = []  # replicas whose connection failed for this stream
        self._error: BaseException | None = None  # what ended the stream, if not its end
        self._last_url = ""  # the replica of the last settled attempt
        self.pieces: list[str] = []
        self.finish_reason: str | None = None
        self.usage: Usage | None = None

    @property
    def text(self) -> str:
        """The text received so far."""
        return "".join(self.pieces)

    async def __aenter__(self) -> Self:
        try:
            await self._open()
        except BaseException as exc:
            self._error = self._error or exc
            await self.aclose()
            raise
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.aclose()

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> str:
        if self._closed:
            raise StopAsyncIteration
        try:
            if not self._opened:
                await self._open()
            while True:
                piece = await self._next_piece()
                if piece is None:
                    raise StopAsyncIteration
                if piece:
                    return piece
        except StopAsyncIteration:
            await self.aclose()
            raise
        except BaseException as exc:
            self._error = self._error or exc
            await self.aclose()
            raise

    async def read(self) -> str:
        """Consume the whole stream and return its text."""
        async with self:
            async for _ in self:
                pass
        return self.text

    async def aclose(self) -> None:
        """Close the stream; returns once its HTTP connection is released or closed."""
        self._closed = True
        try:
            if self._exchange is not None:
                await self._exchange.stopped()
        finally:
            self._settle(self._error)

    @property
    def url(self) -> str:
        """The server this stream runs on (the replica picked for it)."""
        if self._replica is not None:
            return self._replica.url
        return self._last_url or self._client.url

    # -- internals --

    def _deadline(self) -> tuple[float, Deadline, float]:
        s = self._client.settings
        if not self._first_seen and self._first_deadline < self._total_deadline:
            return self._first_deadline, "first_token", s.first_token_timeout
        return self._total_deadline, "total", s.total_timeout

    async def _open(self) -> None:
        if self._closed:
            raise RuntimeError("stream is closed")
        self._opened = True
        client = self._client
        now = asyncio.get_running_loop().time()
        self._first_deadline = now + client.settings.first_token_timeout
        self._total_deadline = now + client.settings.total_timeout
        self._key = affinity.get()
        when, which, seconds = self._deadline()
        try:
            async with asyncio.timeout_at(when):
                self._body = self._build(await client.model_name())
        except TimeoutError:
            raise ModelTimeout(client.url, which, seconds) from None
        await self._start()

    async def _start(self) -> None:
        """Start the exchange on a replica and wait for its response head."""
        client = self._client
        replica = client.replicas.pick(self._key, self._tried)
        assert replica is not None  # only the replicas already tried are excluded
        client.replicas.begin(replica)
        self._replica = replica
        body = client.body_for(replica, self._body)
        while True:
            request = client.build_request("POST", self._path, body, stream=True,
                                           url=replica.url)
            self._items = asyncio.Queue()
            # The owned task's own deadline only catches a stream that nobody closes.
            self._exchange = Owned(functools.partial(self._run, request, replica.url,
                                                     self._items),
                                   deadline=self._total_deadline + 1.0)
            item = await self._get()
            if item is _HEAD:
                return
            if isinstance(item, ModelHTTPError) and client.refused_priority(
                    replica, body, item.status, item.body):
                await self._exchange.stopped()
                body = client.body_for(replica, body)
                continue
            if isinstance(item, BaseException):
                if await self._retry_elsewhere(item):
                    return
                raise item
            raise ModelProtocolError(replica.url, "stream ended before its headers")

    async def _retry_elsewhere(self, exc: BaseException) -> bool:
        """After a connection failure before the first token: start once more on another
        replica (True), or not (False: the error stands)."""
        replicas = self._client.replicas
        failed = self._replica
        if (self._first_seen or self._tried or failed is None or len(replicas) < 2
                or not is_connection_failure(exc)):
            return False
        self._error = exc  # until the new attempt is under way
        if self._exchange is not None:
            await self._exchange.stopped()
        self._tried.append(failed)
        self._settle(exc, retried=True)
        self._error = None
        self._done = False
        await self._start()
        return True

    def _settle(self, exc: BaseException | None, retried: bool = False) -> None:
        """Count the stream's end on its replica (once per attempt)."""
        replica, self._replica = self._replica, None
        if replica is not None:
            replicas = self._client.replicas
            replicas.end(replica, "retried" if retried else replicas.outcome_of(exc))
            self._last_url = replica.url

    async def _run(self, request: httpx.Request, url: str, items: asyncio.Queue[object]
                   ) -> None:
        """The HTTP exchange (in the owned task): lines, errors and the end go to `items`."""
        client, put = self._client, items.put_nowait
        response: httpx.Response | None = None
        try:
            response = await client.pools.get(url).send(request, stream=True)
            if response.status_code >= 400:
                body = await read_body(response, _ERROR_BODY_BYTES)
                put(ModelHTTPError(url, response.status_code, excerpt(body)))
                return
            kind = response.headers.get("content-type", "")
            if not kind.startswith("text/event-stream"):
                put(ModelProtocolError(url, f"expected an event stream, got {kind!r}"))
                return
            put(_HEAD)
            lines, size = _Lines(url), 0
            async with body_chunks(raw_stream(response)) as chunks:
                async for data in chunks:
                    size += len(data)
                    if size > MAX_STREAM_BYTES:
                        raise ModelProtocolError(url, "event stream larger than "
                                                 f"{MAX_STREAM_BYTES} bytes")
                    for line in lines.feed(data):
                        put(line)
            for line in lines.rest():
                put(line)
        except httpx.HTTPError as exc:
            started = response is not None
            put(transport_error(url, exc, client.settings.connect_timeout, started))
        except Exception as exc:  # a ModelError, or a bug: the reader raises it
            put(exc)
        finally:
            put(_END)  # the reader never waits past the end, whatever happened
            if response is not None:
                await aclose_shielded(client.pools, url, response)

    async def _get(self) -> object:
        """The next item from the exchange's queue, under the current deadline."""
        when, which, seconds = self._deadline()
        try:
            async with asyncio.timeout_at(when):
                return await self._items.get()
        except TimeoutError:
            raise ModelTimeout(self.url, which, seconds) from None

    async def _next_item(self) -> object:
        """The next item from the exchange, under the current deadline; errors are raised
        (after a retry on another replica where one is due)."""
        while True:
            item = await self._get()
            if not isinstance(item, BaseException):
                return item
            if not await self._retry_elsewhere(item):
                raise item

    async def _next_line(self) -> str | None:
        """The next line of the body, None at its end, under the current deadline."""
        item = await self._next_item()
        return item if isinstance(item, str) else None

    async def _next_piece(self) -> str | None:
        """The next text piece ("" for a chunk without text), None at the end of the stream."""
        url = self.url
        while True:
            line = await self._next_line()
            if line is None:
                if self._done:
                    return None
                raise ModelProtocolError(url, "stream ended before [DONE]")
            if not line or line.startswith(":"):
                continue
            field, _, value = line.partition(":")
            if field in ("event", "id", "retry"):
                continue
            if field != "data":
                raise ModelProtocolError(url, f"not a server-sent event: {excerpt(line, 80)!r}")
            value = value.removeprefix(" ")
            if value == "[DONE]":
                self._done = True
                continue  # drain to the end so the connection can be reused
            if self._done:
                continue
            return self._accept(value.encode())

    def _accept(self, data: bytes) -> str:
        url = self.url
        try:
            text, finish, usage = self._parse(data)
        except msgspec.DecodeError:
            try:
                error = _error_decoder.decode(data).error
            except msgspec.DecodeError:
                raise ModelProtocolError(url, f"bad event data: {excerpt(data, 120)}") from None
            status = error.get("code")
            message = str(error.get("message", error))
            raise ModelHTTPError(url, status if isinstance(status, int) else 500, message) from None
        if usage is not None:
            self.usage = usage
        if finish is not None:
            self.finish_reason = finish
        if text is None:
            return ""
        self._first_seen = True
        if text:
            self.pieces.append(text)
        return text


class CandidateStream(TextStream):
    """A streamed completion with several candidates; iterating yields `CandidatePiece`s."""

    def __init__(self, client: ModelClient, build: Callable[[str], msgspec.Struct]) -> None:
        super().__init__(client, "/v1/completions", build, completion_piece)
        self._queue: collections.deque[CandidatePiece] = collections.deque()
        self.model: str | None = None  # the response's `model` (an adapter's name if one ran)

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> CandidatePiece:  # type: ignore[override]
        if self._closed and not self._queue:
            raise StopAsyncIteration
        try:
            if not self._opened:
                await self._open()
            while not self._queue:
                if await self._next_piece() is None:
                    raise StopAsyncIteration
            return self._queue.popleft()
        except StopAsyncIteration:
            await self.aclose()
            raise
        except BaseException as exc:
            self._error = self._error or exc
            await self.aclose()
            raise

    def _accept(self, data: bytes) -> str:
        try:
            chunk = _completion_decoder.decode(data)
        except msgspec.DecodeError:
            return super()._accept(data)  # an error event: raises the typed error
        if chunk.usage is not None:
            self.usage = chunk.usage
        if chunk.model:
            self.model = chunk.model
        for choice in chunk.choices:
            if choice.finish_reason is not None:
                self.finish_reason = choice.finish_reason
            token_lps = choice.logprobs.token_logprobs if choice.logprobs else []
            if not choice.text and not token_lps:
                continue
            self._first_seen = True
            self._queue.append(CandidatePiece(
                choice.index, choice.text, sum(x for x in token_lps if x is not None),
                len(token_lps),
            ))
        return ""

