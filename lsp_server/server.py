"""The stagecoder language server: its declared state, messages to the user, transports, handlers.

Every piece of state the handlers share is declared in `StagecoderServer.__init__` and nowhere
else; the handler modules add features, never attributes.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import threading
from typing import Any, BinaryIO

from lsprotocol import types
from pygls.io_ import StdoutWriter
from pygls.lsp.server import LanguageServer

from analysis.documents.document import Encoding
from analysis.documents.store import DocumentStore
from analysis.settings import Settings
from generation.completion.engine import CompletionEngine
from generation.completion.fim_model import model_factory
from generation.next_edit.engine import NextEditEngine
from lsp_server import __version__
from lsp_server.handlers import (
    code_action,
    commands,
    diagnostics,
    documents,
    inline_completion,
    next_edit,
    settings,
    workspace_index,
)
from lsp_server.index_service import IndexService
from lsp_server.protocol import CHUNK, StagecoderProtocol, StdinChunks, serve, strict_converter
from lsp_server.status import StatusReporter

log = logging.getLogger(__name__)

# One module per LSP method family; each has `register(server)`.
HANDLERS = (
    settings,
    documents,
    inline_completion,
    next_edit,
    code_action,
    diagnostics,
    commands,
    workspace_index,
)


class StagecoderServer(LanguageServer):
    """Server state shared by the handlers."""

    protocol: StagecoderProtocol

    def __init__(self) -> None:
        super().__init__("stagecoder", __version__, protocol_cls=StagecoderProtocol,
                         converter_factory=strict_converter)
        # The settings in force, merged from every source (handlers/settings.py), and the
        # client's initializationOptions, merged again whenever the configuration changes.
        self.settings = Settings()
        self.init_options: Any = None
        self.documents = DocumentStore(self.settings.max_file_bytes)  # the open documents
        # Model clients, contexts, the typing-through cache, supersession of older requests.
        self.engine = CompletionEngine(self.settings, model_factory())
        # Next edits: edit history, shown rewrites, their model client (shares the engine's
        # settings, contexts and names).
        self.next_edits = NextEditEngine(self.engine)
        # Capabilities outside LSP (next edits), sent as `experimental` in the initialize result.
        self.experimental_capabilities: dict[str, Any] = {}
        self.indexer = IndexService(self)  # the workspace index; hands each new one to engine
        self.status = StatusReporter(self)  # the stagecoder/status notification's state
        self.diagnostics = diagnostics.Publishing()  # pushes pending and under way, told once
        self._told_once: set[str] = set()  # keys of messages already shown (tell_once)

    # ------------------------------------------------------------------ transports
    # pygls' start_io/start_tcp run its own frame reader (see lsp_server/protocol.py): these
    # run ours, with the same writer and the same shutdown at the end.

    def start_io(self, stdin: BinaryIO | None = None, stdout: BinaryIO | None = None) -> None:
        """Serve LSP over stdin/stdout until the client exits or closes stdin."""
        self._stop_event = stop = threading.Event()
        self.protocol.set_writer(StdoutWriter(stdout or sys.stdout.buffer))

        async def main() -> None:
            await serve(StdinChunks(stdin or sys.stdin.buffer).read, self.protocol, stop)

        exit_code: Any = 0
        try:
            asyncio.run(main())
        except BrokenPipeError:
            log.error("the connection to the client is lost; shutting down")
        except KeyboardInterrupt:
            pass
        except SystemExit as exc:  # pygls' exit handler: 1 when no shutdown came first (LSP)
            exit_code = exc.code
        finally:
            self.shutdown()
        if exit_code:
            raise SystemExit(exit_code)

    def start_tcp(self, host: str, port: int) -> None:
        """Serve LSP to one client at a time on a TCP socket (for debugging)."""
        self._stop_event = stop = threading.Event()

        async def connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            self.protocol.set_writer(writer)  # type: ignore[arg-type]
            await serve(lambda: reader.read(CHUNK), self.protocol, stop)
            self.shutdown()

        async def main() -> None:
            server = await asyncio.start_server(connection, host, port)
            self._server = server
            log.info("serving on %s", ", ".join(str(s.getsockname()) for s in server.sockets))
            async with server:
                await server.serve_forever()

        try:
            asyncio.run(main())
        except (KeyboardInterrupt, SystemExit, asyncio.CancelledError):
            pass
        finally:
            self.shutdown()

    def report_server_error(self, error: Exception, source: Any) -> None:
        """Log errors pygls reports (its default shows an "Error in server" popup for each)."""
        first = str(error).splitlines()[0] if str(error) else repr(error)
        self.log(f"stagecoder: internal error: {first}; details in the server log.",
                 types.MessageType.Error)

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
    for handler in HANDLERS:
        handler.register(server)
    return server
