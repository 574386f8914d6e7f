"""The wire: a frame reader that survives malformed input, and the JSON-RPC checks pygls skips.

pygls 2.1.1 reads frames with a case-sensitive `Content-Length` pattern and trusts the length:
one bad frame desynchronises it for good, invalid JSON or params only raise into its error
handler (a `window/showMessage` popup, no reply), an object `id` answers -32603 with a traceback,
and requests after `shutdown` are dropped unanswered. Its reader cannot be configured, so it is
replaced (not wrapped): `serve` below is our main loop, and `StagecoderServer.start_io` /
`start_tcp` run it instead of pygls' `run_async`.

- `FrameReader` (no I/O) turns bytes into decoded messages and framing errors. Header names are
  case-insensitive; a missing, non-numeric, negative or over-limit length, garbage between frames
  and a body that is not JSON are reported once and the reader resynchronises at the next
  `Content-Length:`. A length larger than the body is caught when the bytes read as body start
  with a whole JSON value and the next frame's header follows (or the bytes stop arriving after
  such a value): that message is handled, with a warning, and reading goes on after it.
- `StagecoderProtocol.receive` checks the JSON-RPC envelope (-32600 Invalid Request, id null when
  the id itself is bad), refuses requests before `initialize` (-32002) and after `shutdown`
  (-32600), structures params (-32602 with the reason) and only then hands over to pygls. Client
  mistakes are logged (`window/logMessage`), never shown; internal errors carry no traceback.
  `strict_converter` keeps cattrs from coercing a number into a string (or `true` into 1).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import threading
from collections.abc import Awaitable, Callable, Generator
from dataclasses import dataclass
from typing import Any, BinaryIO

import cattrs
from lsprotocol import types
from pygls.protocol import LanguageServerProtocol, default_converter
from pygls.protocol.json_rpc import JsonRPCNotification, JsonRPCRequestMessage
from pygls.protocol.language_server import lsp_method

log = logging.getLogger(__name__)

PARSE_ERROR, INVALID_REQUEST, INVALID_PARAMS, INTERNAL_ERROR = -32700, -32600, -32602, -32603
SERVER_NOT_INITIALIZED = -32002
HEADER_LIMIT = 8192  # bytes of one header block
MESSAGE_LIMIT = 256 * 2**20  # bytes of one message body (documents are far smaller)
STALL_SECONDS = 0.5  # a body that stops arriving this long is checked for a too-large length
CHUNK = 65536

_TOKEN = rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]"
_HEADER_START = re.compile(rb"%s+[ \t]*:|%s*\Z" % (_TOKEN, _TOKEN))
_HEADER_LINE = re.compile(rb"(%s+)[ \t]*:[ \t]*(.*?)[ \t]*" % _TOKEN)
_CONTENT_LENGTH = re.compile(rb"content-length[ \t]*:", re.IGNORECASE)
_BLANK_LINE = re.compile(rb"\r?\n\r?\n")
_LINE_BREAK = re.compile(rb"\r?\n")
_SPACE = b" \t\r\n"
_LEADING_SPACE = re.compile(rb"[ \t\r\n]*")


@dataclass(frozen=True, slots=True)
class Frame:
    """One decoded message; `warning` says what was wrong with its framing, if anything."""

    message: Any
    warning: str | None = None


@dataclass(frozen=True, slots=True)
class FrameError:
    """Bytes that could not be read as a message (answered -32700 with id null)."""

    message: str


def _decode(data: bytes | bytearray) -> tuple[Any, str | None]:
    """The JSON value in `data`, or (None, why not)."""
    try:
        return json.loads(data), None
    except RecursionError:
        return None, "nested too deeply"
    except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError
        return None, str(exc).splitlines()[0]


_DECODER = json.JSONDecoder()


def _leading_value(data: bytes | bytearray) -> tuple[Any, int] | None:
    """The JSON object or array at the start of `data` and the byte offset where it ends."""
    # surrogateescape: bytes after the value may be anything; the value itself is re-read
    # strictly below, so invalid UTF-8 inside it still makes it no value.
    text = bytes(data).decode("utf-8", "surrogateescape")
    try:
        _, end = _DECODER.raw_decode(text, len(text) - len(text.lstrip()))
    except (ValueError, RecursionError):
        return None
    size = len(text[:end].encode("utf-8", "surrogateescape"))
    value, why = _decode(data[:size])
    if why is not None or not isinstance(value, (dict, list)):
        return None
    return value, size


class FrameReader:
    """LSP base-protocol frames from a byte stream: `feed` bytes, then take `events()`."""

    def __init__(self) -> None:
        self._buf = bytearray()
        self._length: int | None = None  # the body length once a header block was read
        self._resync = False  # skipping bytes up to the next Content-Length header
        self._quiet = False  # an error was reported and no good header has come since
        self._scanned = 0  # body bytes already searched for a following header
        self._stall_checked = False
        self._events: list[Frame | FrameError] = []

    @property
    def waiting_for_body(self) -> bool:
        """True while a body is incomplete and has not been checked since its last bytes."""
        return self._length is not None and bool(self._buf) and not self._stall_checked

    def feed(self, data: bytes) -> None:
        """Add bytes from the stream and read every complete frame out of them."""
        self._buf += data
        self._stall_checked = False
        while self._step():
            pass

    def events(self) -> list[Frame | FrameError]:
        """The messages and errors read so far, each once."""
        out, self._events = self._events, []
        return out

    def stalled(self) -> None:
        """No bytes came for a while: a body that already starts with a whole JSON value was
        mislabelled; take that value and read on from where it ends."""
        self._stall_checked = True
        if self._length is None or (found := _leading_value(self._buf)) is None:
            return
        value, end = found
        self._events.append(Frame(value, self._too_large(end)))
        del self._buf[:end]
        self._length = None
        while self._step():
            pass

    # ------------------------------------------------------------------ states

    def _step(self) -> bool:
        """Advance by one header block, body or resync; False when more bytes are needed."""
        if self._resync:
            found = _CONTENT_LENGTH.search(self._buf)
            if found is None:
                del self._buf[: max(len(self._buf) - 32, 0)]  # a header may straddle chunks
                return False
            del self._buf[: found.start()]
            self._resync = False
        if self._length is None:
            return self._read_header()
        return self._read_body()

    def _read_header(self) -> bool:
        buf = self._buf
        if (space := _LEADING_SPACE.match(buf)) is not None:
            del buf[: space.end()]
        if not buf:
            return False
        if not _HEADER_START.match(buf):
            return self._fail("bytes outside a message (expected a 'Content-Length:' header)", 1)
        end = _BLANK_LINE.search(buf, 0, HEADER_LIMIT + 4)
        if end is None:
            if len(buf) > HEADER_LIMIT:
                return self._fail(f"a header block over {HEADER_LIMIT} bytes", 1)
            return False
        length: int | None = None
        problem = None
        for line in _LINE_BREAK.split(buf[: end.start()]):
            header = _HEADER_LINE.fullmatch(line)
            if header is None:
                problem = f"a header line that is not 'Name: value' ({bytes(line[:40])!r})"
                break
            if header[1].lower() != b"content-length":
                continue
            value = header[2]
            if not value.isdigit():
                problem = f"Content-Length {value.decode('latin-1')!r} is not a whole number"
                break
            if length is not None and int(value) != length:
                problem = "two different Content-Length headers"
                break
            length = int(value)
        if problem is None and length is None:
            problem = "no Content-Length header"
        if problem is None and length is not None and length > MESSAGE_LIMIT:
            problem = f"Content-Length {length} is over the {MESSAGE_LIMIT}-byte limit"
        if problem is not None or length is None:
            # Drop one byte only: a real header may hide in this block ("junkContent-Length:").
            return self._fail(f"malformed message header: {problem}", 1)
        del buf[: end.end()]
        self._length, self._scanned, self._quiet = length, 0, False
        return True

    def _read_body(self) -> bool:
        buf, length = self._buf, self._length
        assert length is not None
        if len(buf) < length:
            found = self._mislabelled(buf, self._scanned)
            self._scanned = len(buf)
            if found is None:
                return False
            self._take_mislabelled(*found)
            return True
        body = bytes(buf[:length])
        value, why = _decode(body)
        if why is None:
            self._events.append(Frame(value))
            del buf[:length]
            self._length = None
            return True
        found = self._mislabelled(body, 0)
        if found is not None:
            self._take_mislabelled(*found)
            return True
        self._length = None
        header = _CONTENT_LENGTH.search(body, 1)
        self._report(f"the message body is not valid JSON ({why})")
        del buf[: header.start() if header else length]
        return True

    # ------------------------------------------------------------------ helpers

    def _mislabelled(self, data: bytes | bytearray,
                     scan_from: int) -> tuple[int, Any, int] | None:
        """(header offset, value, value end) when the body read so far starts with a whole
        JSON value and a `Content-Length:` header follows it: the length was too large. A real
        body is one JSON value as long as its length, so no prefix of it is a whole value."""
        for header in _CONTENT_LENGTH.finditer(data, max(scan_from - 32, 1)):
            found = _leading_value(data[: header.start()])
            if found is not None:
                return header.start(), *found
        return None

    def _take_mislabelled(self, header: int, value: Any, end: int) -> None:
        """Deliver a mislabelled body's value and go on at the header after it."""
        self._events.append(Frame(value, self._too_large(end)))
        if self._buf[end:header].strip(_SPACE):
            self._report("bytes outside a message (expected a 'Content-Length:' header)")
        del self._buf[:header]
        self._length = None

    def _too_large(self, actual: int) -> str:
        return (f"a message's Content-Length ({self._length}) is larger than its body "
                f"({actual} bytes); read it up to where it ends")

    def _fail(self, problem: str, drop: int) -> bool:
        """Report a framing error, drop `drop` bytes and resynchronise at the next header."""
        self._report(problem)
        del self._buf[:drop]
        self._resync = True
        return True

    def _report(self, problem: str) -> None:
        if self._quiet:  # the same bad stretch of bytes: one error is enough
            log.debug("more malformed input: %s", problem)
            return
        self._quiet = True
        self._events.append(FrameError(f"Parse error: {problem}; skipped to the next message"))


# ---------------------------------------------------------------------- the main loop


async def serve(read: Callable[[], Awaitable[bytes]], protocol: StagecoderProtocol,
                stop: threading.Event) -> None:
    """Read frames until the stream ends or the server stops; hand each to the protocol."""
    frames = FrameReader()
    while not stop.is_set():
        if frames.waiting_for_body:
            try:
                chunk = await asyncio.wait_for(read(), STALL_SECONDS)
            except TimeoutError:
                frames.stalled()
                chunk = None
        else:
            chunk = await read()
        if chunk is not None:
            if not chunk:
                log.info("the client closed the connection")
                return
            frames.feed(chunk)
        for event in frames.events():
            protocol.receive_frame(event)


class StdinChunks:
    """Chunks of a binary stream read on a daemon thread (a blocked read never holds up exit)."""

    def __init__(self, stream: BinaryIO) -> None:
        self._stream = stream
        self._queue: asyncio.Queue[bytes] = asyncio.Queue(maxsize=64)  # bounded read-ahead
        self._loop = asyncio.get_running_loop()
        threading.Thread(target=self._pump, name="stagecoder-stdin", daemon=True).start()

    def _pump(self) -> None:
        # os.read on the descriptor: a thread blocked inside BufferedReader.read1 holds the
        # reader's lock, and the interpreter aborts at exit when it finds that lock taken.
        try:
            fd = self._stream.fileno()
            read: Callable[[int], bytes] = lambda n: os.read(fd, n)  # noqa: E731
        except (AttributeError, OSError, ValueError):
            read = getattr(self._stream, "read1", self._stream.read)
        while True:
            try:
                chunk = read(CHUNK)
            except (OSError, ValueError):
                chunk = b""
            try:
                asyncio.run_coroutine_threadsafe(self._queue.put(chunk), self._loop).result()
            except Exception:  # the loop closed or cancelled the put: the server is exiting
                return
            if not chunk:
                return

    async def read(self) -> bytes:
        """The next chunk; b"" at the end of the stream."""
        return await self._queue.get()


# ---------------------------------------------------------------------- the protocol


def strict_converter() -> cattrs.Converter:
    """pygls' converter with JSON's primitive types kept apart: cattrs would turn a number
    into a URI string and `true` into line 1; a client that sends those gets -32602 instead."""
    converter = default_converter()

    def strict(kind: type) -> Callable[[Any, Any], Any]:
        def structure(value: Any, target: Any) -> Any:
            if not (type(value) is kind or (kind is float and type(value) is int)):
                raise TypeError(f"expected {kind.__name__}, got {type(value).__name__}")
            # The hook also serves subclasses: IntEnum and str enums (DiagnosticSeverity,
            # CodeActionKind) are built from the checked value.
            return value if target is kind else target(value)
        return structure

    for kind in (str, int, bool, float):
        converter.register_structure_hook(kind, strict(kind))
    return converter


def _params_problem(exc: Exception) -> str:
    """A one-line reason for params that do not fit their LSP type, with LSP's field names."""
    if isinstance(exc, cattrs.BaseValidationError):
        reasons = cattrs.transform_error(exc, path="$")
    else:
        reasons = [str(exc).splitlines()[0] if str(exc) else type(exc).__name__]
    text = "; ".join(reasons[:3]) + ("; ..." if len(reasons) > 3 else "")
    return re.sub(r"_([a-z])", lambda m: m[1].upper(), text)


def _valid_id(value: Any) -> bool:
    return type(value) in (int, str)  # bool is an int subclass: not an id


class StagecoderProtocol(LanguageServerProtocol):
    """pygls' protocol with checked input, and without its own copy of document text.

    pygls keeps a second, line-split copy of every open document and re-splits it on each edit;
    at 5,000 lines that costs more than our whole incremental reparse, and it raises on edits to
    unopened documents. The handlers in `handlers/documents.py` maintain the store instead.
    """

    @lsp_method(types.INITIALIZE)
    def lsp_initialize(self, params: types.InitializeParams) -> Generator[Any, Any, Any]:
        """pygls' initialize, with the server's `experimental` capabilities (next edits)."""
        result = yield from super().lsp_initialize(params)
        extra = getattr(self._server, "experimental_capabilities", None)
        if extra and result is not None:
            result.capabilities.experimental = dict(extra)
        return result

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

    # ------------------------------------------------------------------ input

    def receive_frame(self, event: Frame | FrameError) -> None:
        """Answer a framing error, or receive a framed message (logging a framing warning)."""
        if isinstance(event, FrameError):
            self.client_mistake(f"stagecoder: {event.message}.")
            self.reply_error(None, PARSE_ERROR, event.message)
            return
        if event.warning is not None:
            self.client_mistake(f"stagecoder: {event.warning}.")
        self.receive(event.message)

    def receive(self, data: Any) -> None:
        """Check one decoded message, structure its params and hand it to pygls."""
        if not isinstance(data, dict):
            self._invalid(None, "a message must be a JSON object (LSP has no batches)")
            return
        msg_id: Any = data.get("id")
        method = data.get("method")
        if data.get("jsonrpc") != "2.0":
            self._invalid(msg_id if _valid_id(msg_id) else None, 'jsonrpc must be "2.0"')
            return
        if "method" not in data:
            self._receive_response(data)
            return
        is_request = "id" in data
        if not isinstance(method, str):
            self._invalid(msg_id if _valid_id(msg_id) else None, "method must be a string")
            return
        if is_request and not _valid_id(msg_id):
            self._invalid(None, f"the id of a {method} request must be an integer or a string")
            return
        if self._workspace is None and method not in (types.INITIALIZE, types.EXIT):
            if is_request:
                self.reply_error(msg_id, SERVER_NOT_INITIALIZED,
                                 f"Server not initialized: {method} before initialize")
            return
        if self._shutdown and method != types.EXIT:
            if is_request:
                self._invalid(msg_id, f"{method} after shutdown; only exit is accepted now")
            return
        message_type = self.get_message_type(method)
        try:
            message: Any
            if message_type is None:  # unknown to LSP: pygls answers -32601 for a request
                params = data.get("params")
                message = (JsonRPCRequestMessage(msg_id, method, "2.0", params) if is_request
                           else JsonRPCNotification(method, "2.0", params))
            else:
                message = self._converter.structure(data, message_type)
        except Exception as exc:  # cattrs raises several kinds for bad shapes
            problem = _params_problem(exc)
            self.client_mistake(f"stagecoder: {method} with invalid params ({problem}); "
                                + ("answered -32602." if is_request else "ignored."))
            if is_request:
                self.reply_error(msg_id, INVALID_PARAMS, f"Invalid params for {method}: {problem}")
            return
        try:
            self.handle_message(message)
        except Exception as exc:  # pygls raised outside its handler guards
            log.exception("handling %s failed", method)
            if is_request:
                self.reply_error(msg_id, INTERNAL_ERROR,
                                 f"Internal error while handling {method}; see the server log")
            else:
                self.client_mistake(f"stagecoder: could not handle {method} ({exc}).")

    def _receive_response(self, data: dict[str, Any]) -> None:
        msg_id = data.get("id")
        if not (_valid_id(msg_id) or (msg_id is None and "error" in data)) or (
                ("result" in data) == ("error" in data)):
            self.client_mistake("stagecoder: ignored a response that is neither a result nor an "
                                "error for a request id.")
            return
        try:
            self.handle_message(self.structure_message(data))
        except Exception as exc:
            self.client_mistake(f"stagecoder: ignored a malformed response ({exc}).")

    # ------------------------------------------------------------------ output

    def reply_error(self, msg_id: int | str | None, code: int, message: str) -> None:
        """Send an error response; id null when the request's id could not be read."""
        if msg_id is None:  # lsprotocol's converter would drop "id": null, which JSON-RPC needs
            self._send_data({"jsonrpc": "2.0", "id": None,
                             "error": {"code": code, "message": message}})
        else:
            self._send_response(msg_id, error=types.ResponseError(code=code, message=message))

    def client_mistake(self, message: str) -> None:
        """Log a client's mistake locally and in the editor's log (never a popup)."""
        log.warning("%s", message)
        try:
            self.notify(types.WINDOW_LOG_MESSAGE,
                        types.LogMessageParams(type=types.MessageType.Warning, message=message))
        except Exception:  # no writer (unit use): the local log is enough
            log.debug("no client for a log message", exc_info=True)

    def _invalid(self, msg_id: int | str | None, problem: str) -> None:
        self.client_mistake(f"stagecoder: invalid request: {problem}.")
        self.reply_error(msg_id, INVALID_REQUEST, f"Invalid Request: {problem}")

    def _send_response(self, msg_id: Any, result: Any | None = None,
                       error: types.ResponseError | None = None) -> None:
        if error is not None and error.code == INTERNAL_ERROR and error.data is not None:
            # pygls puts the traceback in `data`; it belongs in the server log, not the editor.
            log.error("internal error answering request %r: %s\n%s", msg_id, error.message,
                      "".join(error.data.get("traceback", ())) if isinstance(error.data, dict)
                      else error.data)
            error = types.ResponseError(code=INTERNAL_ERROR,
                                        message=f"Internal error: {error.message}; "
                                        "details in the server log")
        super()._send_response(msg_id, result, error)
