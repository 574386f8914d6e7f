"""A raw LSP client over a real `stagecoder serve` subprocess: it can send any bytes.

pytest-lsp (through pygls) only writes well-formed frames; these tests need malformed ones. The
client reads the server's output with a strict frame parser of its own (not the server's), keeps
every message it gets, answers the server's own requests the way an editor does, and records
whether each of its requests was answered.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import re
import subprocess
from pathlib import Path
from typing import Any

from lsprotocol import types
from pygls.protocol import default_converter
from pytest_lsp import client_capabilities

from tests.lsp_server.conftest import SERVER_COMMAND

_CONVERTER = default_converter()
_LENGTH = re.compile(rb"^Content-Length: (\d+)\r$", re.MULTILINE)


def frame(body: bytes | str, header: bytes | None = None) -> bytes:
    """A frame around `body`; `header` replaces the whole header block when given."""
    data = body.encode("utf-8", "surrogatepass") if isinstance(body, str) else body
    if header is None:
        header = f"Content-Length: {len(data)}\r\n\r\n".encode()
    return header + data


def encode(message: dict[str, Any]) -> bytes:
    """A JSON-RPC message as a well-formed frame."""
    return frame(json.dumps(message))


class RawClient:
    """One server subprocess and everything it said."""

    def __init__(self, log_path: Path) -> None:
        self.log_path = log_path
        self.messages: list[dict[str, Any]] = []  # everything the server sent, in order
        self.null_id_errors: list[dict[str, Any]] = []
        self._waiting: dict[int | str, asyncio.Future[dict[str, Any]]] = {}
        self._ids = itertools.count(1)
        self._held: list[bytes] | None = None  # replies kept back while a frame is half sent
        self._proc: asyncio.subprocess.Process | None = None
        self._reader: asyncio.Task[None] | None = None
        self.encoding = "utf-16"

    async def start(self, profile: str = "visual-studio-code",
                    options: dict[str, Any] | None = None,
                    initialize: bool = True) -> dict[str, Any] | None:
        """Start the server and initialize it with a real editor profile's capabilities."""
        self._log = self.log_path.open("wb")
        self._proc = await asyncio.create_subprocess_exec(
            *SERVER_COMMAND, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._log,
            limit=2**26)
        self._reader = asyncio.create_task(self._read())
        if not initialize:
            return None
        caps = _CONVERTER.unstructure(client_capabilities(profile))
        result = await self.request("initialize", {"processId": None, "rootUri": None,
                                                   "capabilities": caps,
                                                   "initializationOptions": options})
        assert "result" in result, result
        self.init_result = result["result"]
        self.encoding = self.init_result["capabilities"].get("positionEncoding", "utf-16")
        self.notify("initialized", {})
        return self.init_result

    async def close(self, shutdown: bool = True) -> int | None:
        """shutdown (unless told not to) + exit while the server runs, then reap it."""
        assert self._proc is not None
        with contextlib.suppress(Exception):
            if self._proc.returncode is None:
                if shutdown:
                    await self.request("shutdown", None, timeout=10)
                self.notify("exit", None)
        try:
            await asyncio.wait_for(self._proc.wait(), 10)
        except TimeoutError:
            self._proc.kill()
            await self._proc.wait()
        if self._reader is not None:
            self._reader.cancel()
        self._log.close()
        return self._proc.returncode

    # ------------------------------------------------------------------ sending

    def send_raw(self, data: bytes) -> None:
        """Write bytes to the server's stdin as they are."""
        assert self._proc is not None and self._proc.stdin is not None
        self._proc.stdin.write(data)

    def hold_replies(self) -> None:
        """Keep answers to the server's requests back (a frame is being sent in pieces)."""
        self._held = []

    def release_replies(self) -> None:
        """Send the answers kept back by `hold_replies`."""
        held, self._held = self._held or [], None
        for data in held:
            self.send_raw(data)

    def notify(self, method: str, params: Any) -> None:
        """Send a notification (params None sends no params member)."""
        message: dict[str, Any] = {"jsonrpc": "2.0", "method": method}
        if params is not None:
            message["params"] = params
        self.send_raw(encode(message))

    def send_request(self, method: str, params: Any, msg_id: Any = None,
                     with_params: bool = True) -> asyncio.Future[dict[str, Any]]:
        """Send a request; the future gets the whole response message."""
        msg_id = next(self._ids) if msg_id is None else msg_id
        message: dict[str, Any] = {"jsonrpc": "2.0", "id": msg_id, "method": method}
        if with_params:
            message["params"] = params
        future = self.expect(msg_id)
        self.send_raw(encode(message))
        return future

    def expect(self, msg_id: int | str) -> asyncio.Future[dict[str, Any]]:
        """A future for the response to `msg_id` (for requests sent as raw bytes)."""
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._waiting[msg_id] = future
        return future

    def next_id(self) -> int:
        """A fresh request id."""
        return next(self._ids)

    async def request(self, method: str, params: Any, timeout: float = 15.0,
                      **kwargs: Any) -> dict[str, Any]:
        """Send a request and wait for its response message."""
        return await asyncio.wait_for(self.send_request(method, params, **kwargs), timeout)

    async def document_state(self, uri: str) -> dict[str, Any] | None:
        """The server's `stagecoder.documentState` for a URI."""
        reply = await self.request("workspace/executeCommand", {
            "command": "stagecoder.documentState", "arguments": [uri]})
        assert "result" in reply, reply
        return reply["result"]

    # ------------------------------------------------------------------ receiving

    @property
    def alive(self) -> bool:
        """True while the server process runs."""
        return self._proc is not None and self._proc.returncode is None

    def pending(self) -> list[int | str]:
        """Ids of requests sent and not answered yet."""
        return [i for i, f in self._waiting.items() if not f.done()]

    def notifications(self, method: str) -> list[dict[str, Any]]:
        """Params of every notification `method` received so far."""
        return [m.get("params") for m in self.messages
                if m.get("method") == method and "id" not in m]

    async def wait_for_null_id_errors(self, count: int, timeout: float = 10.0) -> None:
        """Wait until `count` error responses with id null have arrived."""
        async with asyncio.timeout(timeout):
            while len(self.null_id_errors) < count:
                await asyncio.sleep(0.02)

    async def _read(self) -> None:
        assert self._proc is not None and self._proc.stdout is not None
        stdout = self._proc.stdout
        while True:
            try:
                header = await stdout.readuntil(b"\r\n\r\n")
            except (asyncio.IncompleteReadError, asyncio.LimitOverrunError):
                break
            match = _LENGTH.search(header)
            assert match is not None, f"the server wrote a frame without Content-Length: {header!r}"
            message = json.loads(await stdout.readexactly(int(match[1])))
            self.messages.append(message)
            self._dispatch(message)
        for future in self._waiting.values():
            if not future.done():
                future.set_exception(ConnectionError("the server closed its output"))

    def _dispatch(self, message: dict[str, Any]) -> None:
        if "method" in message and "id" in message:  # the server asks the editor something
            reply = encode({"jsonrpc": "2.0", "id": message["id"],
                            "result": self._answer(message)})
            if self._held is not None:
                self._held.append(reply)
            else:
                self.send_raw(reply)
        elif "method" not in message:
            if message.get("id") is None:
                self.null_id_errors.append(message)
            elif (future := self._waiting.pop(message["id"], None)) is not None \
                    and not future.done():
                future.set_result(message)

    @staticmethod
    def _answer(request: dict[str, Any]) -> Any:
        if request["method"] == types.WORKSPACE_CONFIGURATION:
            return [None for _ in request.get("params", {}).get("items", [])]
        return None  # registerCapability, workDoneProgress/create, refresh requests
