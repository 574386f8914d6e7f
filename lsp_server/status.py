"""The `stagecoder/status` notification: ready / working / unreachable, for status bars.

Params: `{"state": "ready" | "working" | "unreachable", "message": str}`.

What a status bar user wants: the item changes when something they should know changes, and it
does not flicker while they type. So a notification goes out only when the shown state changes:
- "ready" once the model answered (or after a failed completion), "unreachable" once a request
  finds the model down; "unreachable" stays up until a completion succeeds again, so typing
  against a stopped server sends nothing at all after the first notification;
- "working" only when a completion has been running for `WORKING_AFTER` seconds (a slow model
  or a long prompt), never for a quick answer, and never while the model is known unreachable
  (a request then is a retry, not news; its success turns the bar "ready"); when the last
  completion ends without an outcome (cancelled, superseded) the bar goes back to what it said.
The state lives in the server's `StatusReporter` (`ls.status`, declared with the server's state).
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from lsp_server.server import StagecoderServer

METHOD = "stagecoder/status"
WORKING_AFTER = 0.5  # seconds a completion runs before the bar says "working"
log = logging.getLogger(__name__)


class StatusReporter:
    """The state shown to one client, and the completions in flight that may make it "working"."""

    def __init__(self, ls: StagecoderServer) -> None:
        self._ls = weakref.ref(ls)  # the server owns the reporter, not the other way round
        self.state: str | None = None
        self._settled = ("ready", "no completion running")  # the last state other than working
        self._inflight = 0
        self._timer: asyncio.TimerHandle | None = None

    def show(self, state: str, message: str) -> None:
        """Show `state`; notify the client only if it differs from what it shows now."""
        if state != "working":
            self._settled = (state, message)
        if state == self.state:
            return
        self.state = state
        ls = self._ls()
        if ls is None:
            return
        try:
            ls.protocol.notify(METHOD, {"state": state, "message": message})
        except Exception:  # no client attached (unit use)
            log.debug("status notification not sent", exc_info=True)

    def begin(self) -> None:
        """A completion went to the model: "working" if it is still running after a while."""
        self._inflight += 1
        self._arm()

    def end(self) -> None:
        """A completion ended (answered, failed, superseded or cancelled)."""
        self._inflight = max(0, self._inflight - 1)
        if self._inflight:
            self._arm()  # the others may still take long
            return
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        # A cancelled or superseded completion reports no outcome: once the caller had its
        # chance to show one (in this same turn of the loop), "working" goes back.
        asyncio.get_running_loop().call_soon(self._settle)

    def _settle(self) -> None:
        if not self._inflight and self.state == "working":
            self.show(*self._settled)

    def _arm(self) -> None:
        if self._timer is None:
            loop = asyncio.get_running_loop()
            self._timer = loop.call_later(WORKING_AFTER, self._working)

    def _working(self) -> None:
        self._timer = None
        if self._inflight and self.state != "unreachable":
            self.show("working", "generating a completion")
