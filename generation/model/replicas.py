"""Replicas of one endpoint: which server gets a request, a circuit breaker, health probes.

Routing rule. A request with an affinity key (the document's URI, set by the engine through
`affinity`) goes to the replica that key went to last, while that replica is up: vLLM's prefix
cache there holds the document's prompt, and consecutive keystrokes share most of it. A new key,
a key whose replica is down, and a request without a key (review explanations, rewrites, model
lists) go to the up replica with the fewest of this process's requests in flight (ties: the one
listed first); a key then stays with the replica it got. The key map is bounded (LRU).

Breaker. A connection failure (refused, reset, closed before an answer, a connect timeout)
takes the replica down at once; two first-token timeouts in a row do too (a server that accepts
connections but never answers). A down replica gets no requests. Once its cool-down has passed
(1 s, doubled after each failed probe up to 30 s), the next routing decision starts one health
probe (GET /health) in the background; its success brings the replica back. When every replica
is down, the one whose cool-down ends first is tried anyway, so that a request fails on its own
merits and a recovered server is noticed at once.

The client retries a request once on another replica when its connection fails before the
first token (see `generation.model.client` and `generation.model.streams`).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import contextvars
import logging
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from typing import Literal

from generation.model.errors import ModelError, ModelTimeout, ModelUnavailable

log = logging.getLogger(__name__)

# The routing affinity of the requests made in this context (a document's URI, or None). A
# context variable, so that the CompletionModel protocol and every model behind it stay as they
# are: tasks started inside `with affinity_key(uri)` carry it too.
affinity: contextvars.ContextVar[str | None] = contextvars.ContextVar("affinity", default=None)

FIRST_COOLDOWN = 1.0  # seconds a replica stays down after its first failure
MAX_COOLDOWN = 30.0
TIMEOUTS_TO_OPEN = 2  # first-token timeouts in a row that take a replica down
MAX_KEYS = 10_000  # documents remembered for affinity

Outcome = Literal["ok", "error", "failed", "timeout", "retried"]


@contextlib.contextmanager
def affinity_key(key: str | None) -> Iterator[None]:
    """Route the requests made inside the block by `key` (the document's URI)."""
    token = affinity.set(key)
    try:
        yield
    finally:
        affinity.reset(token)


def is_connection_failure(exc: BaseException) -> bool:
    """Whether `exc` says the server could not be reached or dropped the connection."""
    if isinstance(exc, ModelUnavailable):
        return True
    return isinstance(exc, ModelTimeout) and exc.which == "connect"


class Replica:
    """One server of an endpoint: its state and what it answered."""

    def __init__(self, url: str, index: int) -> None:
        self.url = url
        self.index = index
        self.up = True
        self.inflight = 0  # this process's requests on it now
        self.requests = 0  # requests sent to it
        self.answered = 0  # requests it answered (a whole answer, or a stream that ended well)
        self.failed = 0  # requests whose connection failed
        self.retried = 0  # of those, sent again to another replica
        self.errors = 0  # answered with an error (HTTP status, malformed body, total deadline)
        self.timeouts = 0  # first-token timeouts
        self.priority_refused = False  # it rejected a non-zero priority: none is sent to it
        self._timeouts_in_row = 0
        self._cooldown = FIRST_COOLDOWN
        self.down_until = 0.0

    def stats(self) -> dict[str, object]:
        """What `stagecoder.stats` shows for this replica."""
        return {"url": self.url, "state": "up" if self.up else "down",
                "inflight": self.inflight, "requests": self.requests,
                "answered": self.answered, "errors": self.errors, "failed": self.failed,
                "retried": self.retried, "timeouts": self.timeouts,
                "priority": not self.priority_refused}


class ReplicaSet:
    """The replicas of one endpoint: routing, accounting and the breaker (see the module)."""

    def __init__(self, urls: Sequence[str], probe: Callable[[Replica], Awaitable[None]]
                 ) -> None:
        if not urls:
            raise ValueError("an endpoint needs at least one URL")
        self.replicas = [Replica(url, i) for i, url in enumerate(urls)]
        self._probe = probe
        self._keys: collections.OrderedDict[str, Replica] = collections.OrderedDict()
        self._probes: dict[Replica, asyncio.Task[None]] = {}

    def __len__(self) -> int:
        return len(self.replicas)

    def pick(self, key: str | None = None, exclude: Sequence[Replica] = ()) -> Replica | None:
        """The replica for a request with affinity `key`; None when every one is excluded."""
        now = time.monotonic()
        candidates = [r for r in self.replicas if r not in exclude]
        for replica in candidates:
            if not replica.up and now >= replica.down_until:
                self._start_probe(replica)
        if not candidates:
            return None
        up = [r for r in candidates if r.up]
        if key is not None:
            known = self._keys.get(key)
            if known is not None and known in up:
                self._keys.move_to_end(key)
                return known
        if up:
            chosen = min(up, key=lambda r: (r.inflight, r.index))
        else:
            chosen = min(candidates, key=lambda r: (r.down_until, r.index))
        if key is not None:
            self._keys[key] = chosen
            self._keys.move_to_end(key)
            while len(self._keys) > MAX_KEYS:
                self._keys.popitem(last=False)
        return chosen

    def begin(self, replica: Replica) -> None:
        """A request starts on `replica`."""
        replica.inflight += 1
        replica.requests += 1

    def end(self, replica: Replica, outcome: Outcome) -> None:
        """A request on `replica` ended: "ok" (answered, or left by its caller), "error" (an
        answer that was an error), "failed" (the connection), "retried" (failed and sent
        elsewhere), "timeout" (no first token in time)."""
        replica.inflight = max(0, replica.inflight - 1)
        if outcome == "ok":
            replica.answered += 1
            replica._timeouts_in_row = 0
            self._mark_up(replica)
        elif outcome == "error":
            replica.errors += 1
        elif outcome in ("failed", "retried"):
            replica.failed += 1
            replica.retried += outcome == "retried"
            self._mark_down(replica, "its connection failed")
        elif outcome == "timeout":
            replica.timeouts += 1
            replica._timeouts_in_row += 1
            if replica._timeouts_in_row >= TIMEOUTS_TO_OPEN:
                self._mark_down(replica, f"{replica._timeouts_in_row} first-token timeouts "
                                "in a row")

    def outcome_of(self, exc: BaseException | None) -> Outcome:
        """How a request that ended with `exc` (None: well) counts for its replica."""
        if exc is None or not isinstance(exc, ModelError):
            return "ok"  # answered, or closed or cancelled by the caller
        if is_connection_failure(exc):
            return "failed"
        if isinstance(exc, ModelTimeout) and exc.which == "first_token":
            return "timeout"
        return "error"  # it answered (an HTTP error, a malformed body) or ran out of time

    def stats(self) -> list[dict[str, object]]:
        """Every replica's state and counters, in the configured order."""
        return [r.stats() for r in self.replicas]

    async def wait_probes(self) -> None:
        """Return once the health probes running now have ended (diagnostics and tests)."""
        await asyncio.gather(*self._probes.values(), return_exceptions=True)

    async def aclose(self) -> None:
        """Stop the health probes."""
        probes, self._probes = list(self._probes.values()), {}
        for task in probes:
            task.cancel()
        await asyncio.gather(*probes, return_exceptions=True)

    # -- the breaker --

    def _mark_down(self, replica: Replica, why: str) -> None:
        now = time.monotonic()
        if replica.up:
            elsewhere = "; its requests go to the other replicas" if len(self) > 1 else ""
            log.warning("model server %s is down (%s)%s", replica.url, why, elsewhere)
            replica._cooldown = FIRST_COOLDOWN
        replica.up = False
        replica._timeouts_in_row = 0
        replica.down_until = max(replica.down_until, now + replica._cooldown)

    def _mark_up(self, replica: Replica) -> None:
        if not replica.up:
            log.warning("model server %s is back", replica.url)
        replica.up = True
        replica._cooldown = FIRST_COOLDOWN

    def _start_probe(self, replica: Replica) -> None:
        if replica in self._probes:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return  # no loop: the next request made in one starts it
        task = loop.create_task(self._probe_once(replica))
        self._probes[replica] = task
        task.add_done_callback(lambda _: self._probes.pop(replica, None))

    async def _probe_once(self, replica: Replica) -> None:
        try:
            await self._probe(replica)
        except asyncio.CancelledError:
            raise
        except Exception:
            replica._cooldown = min(MAX_COOLDOWN, replica._cooldown * 2)
            replica.down_until = time.monotonic() + replica._cooldown
        else:
            self._mark_up(replica)
