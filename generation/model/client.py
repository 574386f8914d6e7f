"""Async client for vLLM's OpenAI-compatible API: streamed completions and chat, tokenize, health.

One `httpx.AsyncClient` (one connection pool) per server, shared through `ConnectionPools`, with
explicit bounds (`DEFAULT_LIMITS`): at most 32 connections per server, at most 8 of them kept
idle for reuse, and an idle connection closed 4 s after its last use (below uvicorn's 5 s
keep-alive, so the client never reuses a connection that vLLM is about to drop). httpcore only
expires idle connections when the next request arrives, so every release also schedules a sweep
that closes them on time even when no request follows.

Every exchange with the server runs in a private task (`_Owned`) that only this module can stop,
through an anyio cancel scope. httpcore protects its connection bookkeeping with anyio shields,
which hold against anyio cancellation but not against `Task.cancel()`; a native cancellation
that landed while httpx was closing a finished response used to leave the connection ACTIVE for
good (issue 18). Callers may be cancelled at any point: they only wait on the private task. The
body is read from the raw stream (never httpx's auto-closing iterators) and the response is
closed in a shielded scope, so a stream's connection is always returned to the pool or closed,
whether the stream is exhausted, closed early, cancelled, past a deadline or failed. vLLM aborts
a request as soon as its connection closes, so an abandoned completion costs the server nothing.
Every failure is a `ModelError` subclass (see `generation.model.errors`).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import functools
import math
import os
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from ipaddress import ip_address
from types import TracebackType
from typing import Any, Generic, Self, TypeVar
from urllib.parse import urlsplit

import anyio
import httpx
import msgspec

from analysis.settings import EndpointSettings
from generation.model.errors import (
    Deadline,
    ModelError,
    ModelHTTPError,
    ModelProtocolError,
    ModelTimeout,
    ModelUnavailable,
    excerpt,
)
from generation.model.wire import (
    CandidatePiece,
    ChatChunk,
    ChatMessage,
    ChatRequest,
    ChatResponse,
    Completion,
    CompletionRequest,
    CompletionResponse,
    ModelCard,
    ModelList,
    StreamOptions,
    TokenizeRequest,
    TokenizeResponse,
    Usage,
    _ErrorEvent,
)

T = TypeVar("T")

# --- connection pools -------------------------------------------------------------------------


def base_url(url: str) -> str:
    """The server's root URL: no trailing slash, no trailing /v1."""
    url = url.rstrip("/")
    return url[:-3] if url.endswith("/v1") else url


def _is_loopback(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ip_address(host).is_loopback
    except ValueError:
        return False


@functools.cache
def _tls_context() -> ssl.SSLContext:
    import certifi  # httpx's own CA bundle

    return ssl.create_default_context(cafile=certifi.where())


DEFAULT_LIMITS = httpx.Limits(max_connections=32, max_keepalive_connections=8,
                              keepalive_expiry=4.0)
_SWEEP_STEP = 0.25  # seconds: sweeps are coalesced onto this grid
_SWEEP_SLACK = 0.05  # seconds after the expiry, so that the connection has surely expired


class ConnectionPools:
    """One `httpx.AsyncClient` (one connection pool) per server URL, reused by every request."""

    def __init__(self, transport: httpx.AsyncBaseTransport | None = None,
                 limits: httpx.Limits = DEFAULT_LIMITS) -> None:
        self._transport = transport
        self.limits = limits
        self._clients: dict[str, httpx.AsyncClient] = {}
        self._sweep_due: dict[str, float] = {}
        self._sweeps: set[asyncio.Task] = set()

    def get(self, url: str) -> httpx.AsyncClient:
        """The pool for the server at `url`, created on first use."""
        key = base_url(url)
        client = self._clients.get(key)
        if client is None or client.is_closed:
            # Proxy variables must not reroute a loopback server through a proxy. Building a
            # TLS context costs ~40 ms of CPU: plain http needs none, https shares one.
            client = httpx.AsyncClient(
                base_url=key, transport=self._transport, trust_env=not _is_loopback(key),
                verify=_tls_context() if key.startswith("https:") else False,
                limits=self.limits,
            )
            self._clients[key] = client
        return client

    def connections(self, url: str) -> list[Any]:
        """The pool's httpcore connections for `url` (diagnostics and leak tests)."""
        client = self._clients.get(base_url(url))
        pool = getattr(getattr(client, "_transport", None), "_pool", None)
        return list(getattr(pool, "connections", []))

    def counts(self, url: str) -> dict[str, int]:
        """The pool's connections for `url` by state: in use ("active") and kept for reuse."""
        live = [c for c in self.connections(url) if not c.is_closed()]
        idle = sum(1 for c in live if c.is_idle())
        return {"active": len(live) - idle, "idle": idle}

    def released(self, url: str) -> None:
        """Note that a connection to `url` was released: close it once its keep-alive ends."""
        expiry = self.limits.keepalive_expiry
        if expiry is None:
            return
        key = base_url(url)
        loop = asyncio.get_running_loop()
        due = math.ceil((loop.time() + expiry + _SWEEP_SLACK) / _SWEEP_STEP) * _SWEEP_STEP
        if self._sweep_due.get(key) == due:
            return  # a sweep at that moment is already booked
        self._sweep_due[key] = due
        loop.call_at(due, self._sweep, key)

    def _sweep(self, key: str) -> None:
        if key not in self._clients:
            return  # closed meanwhile
        task = asyncio.get_running_loop().create_task(self._close_expired(key))
        self._sweeps.add(task)
        task.add_done_callback(self._sweeps.discard)

    async def _close_expired(self, key: str) -> None:
        # Checked and closed with no await in between: the pool cannot hand out the connection
        # meanwhile (it would itself drop an expired one). The pool forgets a closed connection
        # at its next request.
        for connection in self.connections(key):
            if connection.is_idle() and connection.has_expired():
                with contextlib.suppress(Exception):
                    await connection.aclose()

    async def aclose(self) -> None:
        """Close every pool."""
        clients, self._clients = list(self._clients.values()), {}
        for client in clients:
            await client.aclose()


# --- owned exchanges --------------------------------------------------------------------------

_running: set[asyncio.Task] = set()  # owned exchanges, referenced until they end


def _finished(task: asyncio.Task) -> None:
    _running.discard(task)
    if not task.cancelled():
        task.exception()  # retrieved: the caller may have left before it ended


class _Owned(Generic[T]):
    """A coroutine in a private task that is stopped only through an anyio cancel scope.

    Nothing else can cancel the task, so httpcore's shielded clean-up always runs to its end;
    callers wait on it with `asyncio.shield` and may themselves be cancelled at any point.
    """

    def __init__(self, work: Callable[[], Awaitable[T]], deadline: float = math.inf) -> None:
        self.scope = anyio.CancelScope(deadline=deadline)  # a safety net for abandoned work
        self.task: asyncio.Task[T | None] = asyncio.get_running_loop().create_task(
            self._run(work))
        _running.add(self.task)
        self.task.add_done_callback(_finished)

    async def _run(self, work: Callable[[], Awaitable[T]]) -> T | None:
        with self.scope:
            return await work()
        return None  # stopped

    def stop(self) -> None:
        """Ask the work to stop at its next cancellation point outside a shield."""
        self.scope.cancel()

    async def result(self) -> T | None:
        """The work's result; cancelling the caller leaves the work running."""
        return await asyncio.shield(self.task)

    async def stopped(self) -> None:
        """Stop the work and wait until it has cleaned up (connection released)."""
        self.stop()
        with contextlib.suppress(Exception):
            await asyncio.shield(self.task)


async def _aclose_shielded(client: ModelClient, response: httpx.Response) -> None:
    """Release the response's connection, out of reach of any cancellation."""
    with anyio.CancelScope(shield=True):
        with contextlib.suppress(httpx.HTTPError, RuntimeError):
            await response.aclose()
    client.pools.released(client.url)


def _raw(response: httpx.Response) -> httpx.AsyncByteStream:
    stream = response.stream
    if not isinstance(stream, httpx.AsyncByteStream):
        raise RuntimeError("the HTTP client gave a synchronous stream")
    encoding = response.headers.get("content-encoding", "identity").lower()
    if encoding not in ("", "identity"):
        raise ModelProtocolError(str(response.url), f"compressed body ({encoding}) although "
                                 "the request asked for none")
    return stream


@contextlib.asynccontextmanager
async def _chunks(stream: httpx.AsyncByteStream) -> AsyncIterator[AsyncIterator[bytes]]:
    """Iterate `stream`; an iteration left early is closed here, not by the garbage collector."""
    chunks = aiter(stream)
    try:
        yield chunks
    finally:
        close = getattr(chunks, "aclose", None)
        if close is not None:
            await close()


async def _read_body(response: httpx.Response, limit: int) -> bytes:
    """The whole body from the raw stream, at most `limit` bytes (httpx's reader auto-closes)."""
    parts: list[bytes] = []
    size = 0
    stream = _raw(response)
    async with _chunks(stream) as chunks:
        async for data in chunks:
            size += len(data)
            if size > limit:
                raise ModelProtocolError(str(response.url), f"answer larger than {limit} bytes")
            parts.append(data)
    return b"".join(parts)


# --- errors -----------------------------------------------------------------------------------


def _transport_error(url: str, exc: httpx.HTTPError, connect_s: float, started: bool) -> ModelError:
    """Map an httpx exception onto the ModelError family (`started`: the answer had begun)."""
    why = str(exc) or type(exc).__name__
    if isinstance(exc, httpx.ConnectTimeout | httpx.PoolTimeout):
        return ModelTimeout(url, "connect", connect_s)
    if isinstance(exc, httpx.ConnectError):
        return ModelUnavailable(url, f"cannot connect ({why})")
    if started and isinstance(exc, httpx.TransportError):
        return ModelUnavailable(url, f"connection lost mid-stream ({why})")
    if isinstance(exc, httpx.RemoteProtocolError):
        if "without sending a response" in why:
            return ModelUnavailable(url, "server closed the connection without answering")
        return ModelProtocolError(url, f"not an HTTP answer ({why})")
    if isinstance(exc, httpx.TransportError):
        return ModelUnavailable(url, f"connection lost ({why})")
    return ModelProtocolError(url, f"{type(exc).__name__}: {why}")


# --- client -----------------------------------------------------------------------------------


class ModelClient:
    """Client for one model endpoint (url, model, limits and deadlines from `EndpointSettings`)."""

    def __init__(
        self,
        settings: EndpointSettings | None = None,
        *,
        pools: ConnectionPools | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.settings = settings or EndpointSettings()
        self.url = base_url(self.settings.url)
        self._own_pools = pools is None
        self.pools = pools or ConnectionPools(transport)
        self._model: str | None = self.settings.model or None

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the connection pool if this client owns it."""
        if self._own_pools:
            await self.pools.aclose()

    # -- plumbing --

    @property
    def http(self) -> httpx.AsyncClient:
        """The shared connection pool of this endpoint's server."""
        return self.pools.get(self.url)

    def _timeout(self) -> httpx.Timeout:
        s = self.settings
        # Read/write limits are a safety net; the asyncio deadlines below are the real ones.
        return httpx.Timeout(s.total_timeout, connect=s.connect_timeout, pool=s.connect_timeout)

    def _headers(self, stream: bool = False) -> dict[str, str]:
        # The body is read raw (see the module docstring), so it must come uncompressed.
        headers = {"accept": "text/event-stream" if stream else "application/json",
                   "accept-encoding": "identity"}
        key = os.environ.get(self.settings.api_key_env) if self.settings.api_key_env else None
        if key:
            headers["authorization"] = f"Bearer {key}"
        return headers

    def build_request(self, method: str, path: str, body: msgspec.Struct | None = None,
                      stream: bool = False) -> httpx.Request:
        """An httpx request for `path` on this server, with headers and timeouts set."""
        content = msgspec.json.encode(body) if body is not None else None
        headers = self._headers(stream)
        if content is not None:
            headers["content-type"] = "application/json"
        return self.http.build_request(
            method, path, content=content, headers=headers, timeout=self._timeout()
        )

    async def _call(self, method: str, path: str, body: msgspec.Struct | None,
                       type_: type[T]) -> T:
        """One whole request under the total deadline, decoded into `type_`."""
        total = self.settings.total_timeout
        request = self.build_request(method, path, body)
        exchange = _Owned(functools.partial(self._fetch, request))
        try:
            async with asyncio.timeout(total):
                answer = await exchange.result()
        except TimeoutError:
            exchange.stop()
            raise ModelTimeout(self.url, "total", total) from None
        except httpx.HTTPError as exc:
            raise _transport_error(self.url, exc, self.settings.connect_timeout, False) from exc
        except BaseException:
            exchange.stop()
            raise
        assert answer is not None  # only a stopped exchange has no answer
        status, content = answer
        if status >= 400:
            raise ModelHTTPError(self.url, status, excerpt(content))
        if type_ is type(None):
            return None  # type: ignore[return-value]
        try:
            return msgspec.json.decode(content, type=type_)
        except msgspec.DecodeError as exc:  # ValidationError is a DecodeError
            detail = f"{exc}; body: {excerpt(content)}"
            raise ModelProtocolError(self.url, detail) from None

    async def _fetch(self, request: httpx.Request) -> tuple[int, bytes]:
        """Send `request` and read its whole body (runs in an owned task)."""
        response = await self.http.send(request, stream=True)
        try:
            return response.status_code, await _read_body(response, MAX_BODY_BYTES)
        finally:
            await _aclose_shielded(self, response)

    # -- endpoints --

    async def health(self) -> None:
        """GET /health: returns when the server is up, raises a ModelError otherwise."""
        await self._call("GET", "/health", None, type(None))

    async def models(self) -> list[ModelCard]:
        """GET /v1/models: the models the server serves."""
        return (await self._call("GET", "/v1/models", None, ModelList)).data

    async def model_name(self) -> str:
        """The configured model name, or the server's first model (asked once)."""
        if self._model is None:
            cards = await self.models()
            if not cards:
                raise ModelProtocolError(self.url, "/v1/models lists no model")
            self._model = cards[0].id
        return self._model

    async def tokenize(self, text: str, *, add_special_tokens: bool = True) -> list[int]:
        """POST /tokenize: the server's token ids for `text`."""
        body = TokenizeRequest(await self.model_name(), text, add_special_tokens)
        return (await self._call("POST", "/tokenize", body, TokenizeResponse)).tokens

    async def complete(self, prompt: str | list[int], **options: Any) -> Completion:
        """POST /v1/completions, not streamed: the whole text."""
        sampling = self._sampling(options)
        body = self._completion_request(await self.model_name(), prompt, False, sampling)
        data = await self._call("POST", "/v1/completions", body, CompletionResponse)
        if not data.choices:
            raise ModelProtocolError(self.url, "completion response has no choices")
        choice = data.choices[0]
        return Completion(choice.text, choice.finish_reason, data.usage)

    def stream_complete(self, prompt: str | list[int], **options: Any) -> TextStream:
        """POST /v1/completions streamed: use as `async with client.stream_complete(p) as s`."""
        sampling = self._sampling(options)

        def build(model: str) -> CompletionRequest:
            return self._completion_request(model, prompt, True, sampling)

        return TextStream(self, "/v1/completions", build, _completion_piece)

    def stream_candidates(self, prompt: str | list[int], *, n: int = 1, **options: Any
                          ) -> CandidateStream:
        """POST /v1/completions streamed with `n` candidates and their token log-probabilities.

        With n > 1 and temperature 0 the candidates would be identical, so they are sampled at
        temperature 0.3 instead.
        """
        sampling = self._sampling({**options, "n": n, "logprobs": 1})
        if n > 1 and not sampling.get("temperature"):
            sampling["temperature"] = 0.3

        def build(model: str) -> CompletionRequest:
            return self._completion_request(model, prompt, True, sampling)

        return CandidateStream(self, build)

    async def chat(self, messages: Sequence[ChatMessage], **options: Any) -> Completion:
        """POST /v1/chat/completions, not streamed: the assistant's whole reply."""
        sampling = self._sampling(options)
        body = self._chat_request(await self.model_name(), messages, False, sampling)
        data = await self._call("POST", "/v1/chat/completions", body, ChatResponse)
        if not data.choices:
            raise ModelProtocolError(self.url, "chat response has no choices")
        choice = data.choices[0]
        return Completion(choice.message.content or "", choice.finish_reason, data.usage)

    def stream_chat(self, messages: Sequence[ChatMessage], **options: Any) -> TextStream:
        """POST /v1/chat/completions streamed: use as `async with client.stream_chat(m) as s`."""
        sampling = self._sampling(options)

        def build(model: str) -> ChatRequest:
            return self._chat_request(model, messages, True, sampling)

        return TextStream(self, "/v1/chat/completions", build, _chat_piece)

    # -- request bodies --

    @staticmethod
    def _completion_request(model: str, prompt: str | list[int], stream: bool,
                            sampling: dict[str, Any]) -> CompletionRequest:
        return CompletionRequest(
            model=model, prompt=prompt, stream=stream,
            stream_options=StreamOptions() if stream else None, **sampling,
        )

    @staticmethod
    def _chat_request(model: str, messages: Sequence[ChatMessage], stream: bool,
                      sampling: dict[str, Any]) -> ChatRequest:
        return ChatRequest(
            model=model, messages=list(messages), stream=stream,
            stream_options=StreamOptions() if stream else None, **sampling,
        )

    def _sampling(self, options: dict[str, Any]) -> dict[str, Any]:
        """max_tokens/temperature from settings unless given; stop, seed, ignore_eos passed on."""
        unknown = set(options) - {"max_tokens", "temperature", "stop", "seed", "ignore_eos", "n",
                                  "logprobs"}
        if unknown:
            raise TypeError(f"unknown generation options: {sorted(unknown)}")
        s = self.settings
        out: dict[str, Any] = {"max_tokens": s.max_tokens, "temperature": s.temperature}
        out |= {k: v for k, v in options.items() if v is not None}
        if "stop" in out:
            out["stop"] = list(out["stop"])
        return out


# --- streams ----------------------------------------------------------------------------------

Piece = tuple[str | None, str | None, Usage | None]  # text, finish reason, usage
_completion_decoder = msgspec.json.Decoder(CompletionResponse)
_chat_decoder = msgspec.json.Decoder(ChatChunk)
_error_decoder = msgspec.json.Decoder(_ErrorEvent)


def _completion_piece(data: bytes) -> Piece:
    chunk = _completion_decoder.decode(data)
    if not chunk.choices:
        return None, None, chunk.usage
    choice = chunk.choices[0]
    return choice.text, choice.finish_reason, chunk.usage


def _chat_piece(data: bytes) -> Piece:
    chunk = _chat_decoder.decode(data)
    if not chunk.choices:
        return None, None, chunk.usage
    choice = chunk.choices[0]
    return choice.delta.content or "", choice.finish_reason, chunk.usage


MAX_BODY_BYTES = 16 << 20  # a whole (non-streamed) answer
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
    runs in an owned task (see the module docstring) that feeds lines into a queue.
    """

    def __init__(self, client: ModelClient, path: str, build: Callable[[str], msgspec.Struct],
                 parse: Callable[[bytes], Piece]) -> None:
        self._client = client
        self._path = path
        self._build = build
        self._parse = parse
        self._exchange: _Owned[None] | None = None
        self._items: asyncio.Queue[object] = asyncio.Queue()
        self._opened = False
        self._closed = False
        self._done = False  # [DONE] seen
        self._first_seen = False
        self._first_deadline = self._total_deadline = 0.0
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
        except BaseException:
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
        except BaseException:
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
        if self._exchange is not None:
            await self._exchange.stopped()

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
        when, which, seconds = self._deadline()
        try:
            async with asyncio.timeout_at(when):
                request = client.build_request(
                    "POST", self._path, self._build(await client.model_name()), stream=True
                )
        except TimeoutError:
            raise ModelTimeout(client.url, which, seconds) from None
        # The owned task's own deadline only catches a stream that nobody closes.
        self._exchange = _Owned(functools.partial(self._run, request),
                                deadline=self._total_deadline + 1.0)
        head = await self._next_item()
        if head is not _HEAD:
            raise ModelProtocolError(client.url, "stream ended before its headers")

    async def _run(self, request: httpx.Request) -> None:
        """The HTTP exchange (in the owned task): lines, errors and the end go to the queue."""
        client, put = self._client, self._items.put_nowait
        response: httpx.Response | None = None
        try:
            response = await client.http.send(request, stream=True)
            if response.status_code >= 400:
                body = await _read_body(response, _ERROR_BODY_BYTES)
                put(ModelHTTPError(client.url, response.status_code, excerpt(body)))
                return
            kind = response.headers.get("content-type", "")
            if not kind.startswith("text/event-stream"):
                put(ModelProtocolError(client.url, f"expected an event stream, got {kind!r}"))
                return
            put(_HEAD)
            lines, size = _Lines(client.url), 0
            async with _chunks(_raw(response)) as chunks:
                async for data in chunks:
                    size += len(data)
                    if size > MAX_STREAM_BYTES:
                        raise ModelProtocolError(client.url, "event stream larger than "
                                                 f"{MAX_STREAM_BYTES} bytes")
                    for line in lines.feed(data):
                        put(line)
            for line in lines.rest():
                put(line)
        except httpx.HTTPError as exc:
            started = response is not None
            put(_transport_error(client.url, exc, client.settings.connect_timeout, started))
        except Exception as exc:  # a ModelError, or a bug: the reader raises it
            put(exc)
        finally:
            put(_END)  # the reader never waits past the end, whatever happened
            if response is not None:
                await _aclose_shielded(client, response)

    async def _next_item(self) -> object:
        """The next item from the exchange, under the current deadline; errors are raised."""
        when, which, seconds = self._deadline()
        try:
            async with asyncio.timeout_at(when):
                item = await self._items.get()
        except TimeoutError:
            raise ModelTimeout(self._client.url, which, seconds) from None
        if isinstance(item, BaseException):
            raise item
        return item

    async def _next_line(self) -> str | None:
        """The next line of the body, None at its end, under the current deadline."""
        item = await self._next_item()
        return item if isinstance(item, str) else None

    async def _next_piece(self) -> str | None:
        """The next text piece ("" for a chunk without text), None at the end of the stream."""
        url = self._client.url
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
        url = self._client.url
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
        super().__init__(client, "/v1/completions", build, _completion_piece)
        self._queue: collections.deque[CandidatePiece] = collections.deque()

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
        except BaseException:
            await self.aclose()
            raise

    def _accept(self, data: bytes) -> str:
        try:
            chunk = _completion_decoder.decode(data)
        except msgspec.DecodeError:
            return super()._accept(data)  # an error event: raises the typed error
        if chunk.usage is not None:
            self.usage = chunk.usage
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

