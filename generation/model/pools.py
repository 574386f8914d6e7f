"""Connection pools for model servers: one `httpx.AsyncClient` per server, bounded, swept when idle.

Explicit bounds (`DEFAULT_LIMITS`): at most 32 connections per server, at most 8 of them kept
idle for reuse, and an idle connection closed 4 s after its last use (below uvicorn's 5 s
keep-alive, so the client never reuses a connection that vLLM is about to drop). httpcore only
expires idle connections when the next request arrives, so every release also schedules a sweep
that closes them on time even when no request follows.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import math
import ssl
from ipaddress import ip_address
from typing import Any
from urllib.parse import urlsplit

import httpx


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

