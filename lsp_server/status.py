"""The `stagecoder/status` notification: ready / working / unreachable, for status bars.

Sent only when the state changes, so a client is not flooded while the user types.
Params: `{"state": "ready" | "working" | "unreachable", "message": str}`.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from lsp_server.server import StagecoderServer

METHOD = "stagecoder/status"
log = logging.getLogger(__name__)


def send(ls: StagecoderServer, state: str, message: str) -> None:
    """Notify the client of a state change (no-op when the state is unchanged)."""
    if getattr(ls, "status_state", None) == state:
        return
    ls.status_state = state  # type: ignore[attr-defined]
    try:
        ls.protocol.notify(METHOD, {"state": state, "message": message})
    except Exception:  # no client attached (unit use)
        log.debug("status notification not sent", exc_info=True)
