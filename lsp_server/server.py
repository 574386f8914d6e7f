"""The stagecoder language server: state, messages to the user, and the handler table."""

from __future__ import annotations

import asyncio
import importlib
import logging
from collections.abc import Generator
from typing import Any

from lsprotocol import types
from pygls.lsp.server import LanguageServer
from pygls.protocol import LanguageServerProtocol
from pygls.protocol.language_server import lsp_method

from analysis.context import ContextBuilder
from analysis.document import Encoding
from analysis.settings import Settings
from analysis.workspace import DocumentStore
from generation.engine import CompletionEngine
from generation.models import model_factory
from lsp_server import __version__

log = logging.getLogger(__name__)

# One module per LSP method family under lsp_server.handlers; each has `register(server)`.
HANDLERS = (
    "settings",
    "documents",
    "inline_completion",
    "code_action",
    "diagnostics",
    "commands",
    "workspace_index",
)


class StagecoderProtocol(LanguageServerProtocol):
    """pygls' protocol without its own copy of document text: `DocumentStore` is the only copy.

    pygls keeps a second, line-split copy of every open document and re-splits it on each edit;
    at 5,000 lines that costs more than our whole incremental reparse, and it raises on edits to
    unopened documents. The handlers in `handlers/documents.py` maintain the store instead.
    """

    @lsp_method(types.TEXT_DOCUMENT_DID_OPEN)
    def lsp_text_document__did_open(self, params: Any) -> Generator[Any, Any, None]:
        if (handler := self.fm.features.get(types.TEXT_DOCUMENT_DID_OPEN)) is not None:
            yield handler, (params,), None

    @lsp_method(types.TEXT_DOCUMENT_DID_CHANGE)
    def lsp_text_document__did_change(self, params: Any) -> Generator[Any, Any, None]:
        if (handler := self.fm.features.get(types.TEXT_DOCUMENT_DID_CHANGE)) is not None:
            yield handler, (params,), None

    @lsp_method(types.TEXT_DOCUMENT_DID_CLOSE)
    def lsp_text_document__did_close(self, params: Any) -> Generator[Any, Any, None]:
        if (handler := self.fm.features.get(types.TEXT_DOCUMENT_DID_CLOSE)) is not None:
            yield handler, (params,), None


class StagecoderServer(LanguageServer):
    """Server state shared by the handlers."""

    def __init__(self) -> None:
        super().__init__("stagecoder", __version__, protocol_cls=StagecoderProtocol)
        self.settings = Settings()
        self.documents = DocumentStore(self.settings.max_file_bytes)
        self.engine = CompletionEngine(self.settings, model_factory(), self.context_source)
        self.inflight: dict[str, asyncio.Future] = {}  # uri -> running completion
        self._told_once: set[str] = set()

    def context_source(self) -> ContextBuilder:
        """The context builder over the workspace index, for the settings in force."""
        # Imported here: the handler module imports this one.
        from lsp_server.handlers.workspace_index import context_builder

        return context_builder(self)

    @property
    def encoding(self) -> Encoding:
        """The negotiated position encoding ("utf-16" before initialize)."""
        try:
            value = self.workspace.position_encoding
        except RuntimeError:
            return "utf-16"
        text = str(getattr(value, "value", value) or "utf-16")
        return text if text in ("utf-8", "utf-16", "utf-32") else "utf-16"  # type: ignore[return-value]

    def log(self, message: str, kind: types.MessageType = types.MessageType.Info) -> None:
        """Send window/logMessage (the editor's output panel) and log locally."""
        log.log(logging.WARNING if kind <= types.MessageType.Warning else logging.INFO, message)
        try:
            self.window_log_message(types.LogMessageParams(type=kind, message=message))
        except Exception:  # no client attached (unit use): the local log is enough
            log.debug("no client for log message", exc_info=True)

    def tell_once(self, key: str, message: str,
                  kind: types.MessageType = types.MessageType.Warning) -> None:
        """Show a message to the user once per key (not once per keystroke)."""
        if key in self._told_once:
            self.log(message, kind)
            return
        self._told_once.add(key)
        self.log(message, kind)
        try:
            self.window_show_message(types.ShowMessageParams(type=kind, message=message))
        except Exception:
            log.debug("no client for show message", exc_info=True)

    def forget_told(self, key: str) -> None:
        """Allow the message for `key` to be shown again (the condition cleared)."""
        self._told_once.discard(key)


def create_server() -> StagecoderServer:
    """A server with every handler module registered."""
    server = StagecoderServer()
    for name in HANDLERS:
        importlib.import_module(f"lsp_server.handlers.{name}").register(server)
    return server
