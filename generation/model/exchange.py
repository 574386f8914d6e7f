"""Owned HTTP exchanges: private tasks stopped only through anyio, raw bodies, transport errors.

Every exchange with the server runs in a private task (`Owned`) that only this package can stop,
through an anyio cancel scope. httpcore protects its connection bookkeeping with anyio shields,
which hold against anyio cancellation but not against `Task.cancel()`; a native cancellation
that landed while httpx was closing a finished response used to leave the connection ACTIVE for
good (issue 18). Callers may be cancelled at any point: they only wait on the private task. The
body is read from the raw stream (never httpx's auto-closing iterators) and the response is
closed in a shielded scope, so a connection is always returned to the pool or closed.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Generic, TypeVar

import anyio
import httpx

from generation.model.errors import (
    ModelError,
    ModelProtocolError,
    ModelTimeout,
    ModelUnavailable,
)
from generation.model.pools import ConnectionPools

T = TypeVar("T")
MAX_BODY_BYTES = 16 << 20  # a whole (non-streamed) answer

_running: set[asyncio.Task] = set()  # owned exchanges, referenced until they end


def _finished(task: asyncio.Task) -> None:
    _running.discard(task)
    if not task.cancelled():
        task.exception()  # retrieved: the caller may have left before it ended


class Owned(Generic[T]):
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


async def aclose_shielded(pools: ConnectionPools, url: str, response: httpx.Response) -> None:
    """Release the response's connection, out of reach of any cancellation."""
    with anyio.CancelScope(shield=True):
        with contextlib.suppress(httpx.HTTPError, RuntimeError):
            await response.aclose()
    pools.released(url)


def raw_stream(response: httpx.Response) -> httpx.AsyncByteStream:
    """The response's raw byte stream (never httpx's auto-closing iterators), uncompressed."""
    stream = response.stream
    if not isinstance(stream, httpx.AsyncByteStream):
        raise RuntimeError("the HTTP client gave a synchronous stream")
    encoding = response.headers.get("content-encoding", "identity").lower()
    if encoding not in ("", "identity"):
        raise ModelProtocolError(str(response.url), f"compressed body ({encoding}) although "
                                 "the request asked for none")
    return stream


@contextlib.asynccontextmanager
async def body_chunks(stream: httpx.AsyncByteStream) -> AsyncIterator[AsyncIterator[bytes]]:
    """Iterate `stream`; an iteration left early is closed here, not by the garbage collector."""
    chunks = aiter(stream)
    try:
        yield chunks
    finally:
        close = getattr(chunks, "aclose", None)
        if close is not None:
            await close()


async def read_body(response: httpx.Response, limit: int) -> bytes:
    """The whole body from the raw stream, at most `limit` bytes (httpx's reader auto-closes)."""
    parts: list[bytes] = []
    size = 0
    stream = raw_stream(response)
    async with body_chunks(stream) as chunks:
        async for data in chunks:
            size += len(data)
            if size > limit:
                raise ModelProtocolError(str(response.url), f"answer larger than {limit} bytes")
            parts.append(data)
    return b"".join(parts)


def transport_error(url: str, exc: httpx.HTTPError, connect_s: float, started: bool) -> ModelError:
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

