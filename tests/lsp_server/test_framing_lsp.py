"""Malformed frames and invalid JSON-RPC over a real `stagecoder serve`: each gets its answer,
the server resynchronises, and the next well-formed request (shutdown) is still answered."""

from __future__ import annotations

import asyncio
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lsp_server.protocol import Frame, FrameError, FrameReader
from tests.lsp_server._raw_lsp import RawClient, encode, frame

SETTINGS = {"command": "stagecoder.showSettings"}


@pytest.fixture
async def raw(tmp_path):
    client = RawClient(tmp_path / "server.log")
    await client.start()
    yield client
    await client.close()


def request_body(msg_id: int, method: str = "workspace/executeCommand",
                 params: object = SETTINGS) -> str:
    return json.dumps({"jsonrpc": "2.0", "id": msg_id, "method": method, "params": params})


async def shutdown_answered(client: RawClient) -> None:
    """The next well-formed request is answered, and nothing ever popped up."""
    reply = await client.request("shutdown", None, timeout=10)
    assert reply == {"jsonrpc": "2.0", "id": reply["id"], "result": None}
    assert client.notifications("window/showMessage") == []
    for message in client.messages:
        error = message.get("error")
        assert not error or ("data" not in error and "Traceback" not in error["message"])


def logged(client: RawClient) -> list[str]:
    return [p["message"] for p in client.notifications("window/logMessage")]


async def test_lower_case_header_is_a_header(raw: RawClient):
    body = request_body(raw.next_id())
    answer = raw.expect(json.loads(body)["id"])
    raw.send_raw(frame(body, f"content-length: {len(body.encode())}\r\n\r\n".encode()))
    reply = await asyncio.wait_for(answer, 10)
    assert reply["result"]["enable"] is True  # the settings: a real answer, not an error
    await shutdown_answered(raw)
    assert raw.null_id_errors == []


@pytest.mark.parametrize(("header", "reason"), [
    (b"Content-Type: application/vscode-jsonrpc; charset=utf-8\r\n\r\n",
     "malformed message header: no Content-Length header"),
    (b"Content-Length: abc\r\n\r\n",
     "malformed message header: Content-Length 'abc' is not a whole number"),
    (b"Content-Length: -5\r\n\r\n",
     "malformed message header: Content-Length '-5' is not a whole number"),
    (b"Content-Length: 99999999999\r\n\r\n",
     "malformed message header: Content-Length 99999999999 is over the 268435456-byte limit"),
    (b"", "bytes outside a message (expected a 'Content-Length:' header)"),
], ids=["missing", "non-numeric", "negative", "over-limit", "no-header"])
async def test_bad_header_answers_parse_error_and_resyncs(raw: RawClient, header, reason):
    raw.send_raw(frame(request_body(raw.next_id()), header))
    await raw.wait_for_null_id_errors(1)
    message = f"Parse error: {reason}; skipped to the next message"
    assert raw.null_id_errors == [{"jsonrpc": "2.0", "id": None,
                                   "error": {"code": -32700, "message": message}}]
    assert f"stagecoder: {message}." in logged(raw)
    await shutdown_answered(raw)
    assert len(raw.null_id_errors) == 1  # one answer per bad frame, not one per skipped byte


async def test_invalid_json_answers_parse_error(raw: RawClient):
    raw.send_raw(frame('{"jsonrpc": "2.0", "id": 5, "method": '))
    await raw.wait_for_null_id_errors(1)
    assert raw.null_id_errors[0]["error"] == {
        "code": -32700, "message": "Parse error: the message body is not valid JSON (Expecting "
        "value: line 1 column 39 (char 38)); skipped to the next message"}
    await shutdown_answered(raw)


async def test_length_shorter_than_body(raw: RawClient):
    body = request_body(raw.next_id()).encode()
    raw.send_raw(frame(body, f"Content-Length: {len(body) - 10}\r\n\r\n".encode()))
    await raw.wait_for_null_id_errors(1)
    assert raw.null_id_errors[0]["error"]["message"].startswith(
        "Parse error: the message body is not valid JSON (")
    await shutdown_answered(raw)
    assert len(raw.null_id_errors) == 1  # the body's tail is skipped quietly


@pytest.mark.parametrize("next_arrives", ["together", "later"])
async def test_length_longer_than_body_does_not_swallow_the_next(raw: RawClient, next_arrives):
    msg_id = raw.next_id()
    body = request_body(msg_id).encode()
    answer = raw.expect(msg_id)
    bad = frame(body, f"Content-Length: {len(body) + 500}\r\n\r\n".encode())
    if next_arrives == "together":
        # The next frame is read as part of the bad one's body: found by its header.
        shutdown_id = raw.next_id()
        shutdown = raw.expect(shutdown_id)
        raw.send_raw(bad + encode({"jsonrpc": "2.0", "id": shutdown_id, "method": "shutdown"}))
        assert (await asyncio.wait_for(shutdown, 10))["result"] is None
    else:
        raw.send_raw(bad)  # nothing follows: the body stops arriving as complete JSON
    reply = await asyncio.wait_for(answer, 10)
    assert reply["result"]["enable"] is True
    warning = (f"stagecoder: a message's Content-Length ({len(body) + 500}) is larger than its "
               f"body ({len(body)} bytes); read it up to where it ends.")
    assert warning in logged(raw)
    assert raw.null_id_errors == []
    if next_arrives == "later":
        await shutdown_answered(raw)


async def test_slow_body_is_not_mistaken_for_a_bad_frame(raw: RawClient):
    msg_id = raw.next_id()
    body = request_body(msg_id).encode()
    answer = raw.expect(msg_id)
    half = len(body) // 2
    raw.hold_replies()  # an editor never writes its own answers into the middle of a frame
    raw.send_raw(frame(body)[:-half])
    await asyncio.sleep(1.5)  # the input's timing is what is tested: a pause mid-body
    assert not answer.done()
    raw.send_raw(body[-half:])
    raw.release_replies()
    assert (await asyncio.wait_for(answer, 10))["result"]["enable"] is True
    assert not any("Content-Length" in m for m in logged(raw))
    await shutdown_answered(raw)


@pytest.mark.parametrize(("message", "answer_id", "reason"), [
    ({"jsonrpc": "2.0", "id": {"a": 1}, "method": "shutdown"}, None,
     "the id of a shutdown request must be an integer or a string"),
    ({"jsonrpc": "2.0", "id": [1], "method": "shutdown"}, None,
     "the id of a shutdown request must be an integer or a string"),
    ({"jsonrpc": "2.0", "id": True, "method": "shutdown"}, None,
     "the id of a shutdown request must be an integer or a string"),
    ({"jsonrpc": "2.0", "id": 1.5, "method": "shutdown"}, None,
     "the id of a shutdown request must be an integer or a string"),
    ({"jsonrpc": "2.0", "id": None, "method": "shutdown"}, None,
     "the id of a shutdown request must be an integer or a string"),
    ([{"jsonrpc": "2.0", "id": 1, "method": "shutdown"}], None,
     "a message must be a JSON object (LSP has no batches)"),
    ({"jsonrpc": "1.0", "id": 71, "method": "shutdown"}, 71, 'jsonrpc must be "2.0"'),
    ({"jsonrpc": "2.0", "id": 72, "method": 5}, 72, "method must be a string"),
], ids=["object-id", "array-id", "bool-id", "float-id", "null-id", "batch", "version",
        "method-type"])
async def test_invalid_request_answers_32600(raw: RawClient, message, answer_id, reason):
    answer = raw.expect(answer_id) if answer_id is not None else None
    raw.send_raw(encode(message))
    if answer is None:
        await raw.wait_for_null_id_errors(1)
        reply = raw.null_id_errors[0]
    else:
        reply = await asyncio.wait_for(answer, 10)
    assert reply == {"jsonrpc": "2.0", "id": answer_id,
                     "error": {"code": -32600, "message": f"Invalid Request: {reason}"}}
    assert f"stagecoder: invalid request: {reason}." in logged(raw)
    await shutdown_answered(raw)


async def test_unknown_method_answers_32601(raw: RawClient):
    reply = await raw.request("stagecoder/noSuchThing", {})
    assert reply["error"]["code"] == -32601 and "data" not in reply["error"]
    await shutdown_answered(raw)


async def test_requests_after_shutdown_are_refused(raw: RawClient):
    await shutdown_answered(raw)
    reply = await raw.request("workspace/executeCommand", SETTINGS)
    assert reply["error"] == {"code": -32600, "message": "Invalid Request: "
                              "workspace/executeCommand after shutdown; only exit is accepted now"}
    assert await raw.close() == 0  # exit after shutdown: a clean exit code


async def test_requests_before_initialize_are_refused(tmp_path):
    client = RawClient(tmp_path / "server.log")
    await client.start(initialize=False)
    reply = await client.request("workspace/executeCommand", SETTINGS)
    assert reply["error"] == {"code": -32002, "message": "Server not initialized: "
                              "workspace/executeCommand before initialize"}
    assert await client.close(shutdown=False) == 1  # exit without shutdown: exit code 1 (LSP)


async def test_a_stream_of_bad_frames_then_shutdown(raw: RawClient):
    garbage = b"".join([
        b"Content-Length: -1\r\n\r\n{}",
        frame("not json at all"),
        b"\r\n\r\n\r\nhello\r\n",
        frame(request_body(9), b"content-length: 3\r\n\r\n"),
        encode({"jsonrpc": "2.0", "id": {"x": 1}, "method": "initialize"}),
        b"Content-Length: 12\r\nContent-Type: x\r\nBroken header\r\n\r\n{}",
    ])
    raw.send_raw(garbage)
    await shutdown_answered(raw)
    codes = sorted(m["error"]["code"] for m in raw.null_id_errors)
    assert codes and set(codes) <= {-32700, -32600} and -32600 in codes


@pytest.mark.parametrize("garbage", [request_body(999).encode(), b"\r\n\x00\xff garbage \r\n"],
                         ids=["json-without-header", "binary"])
async def test_too_long_length_then_garbage_then_a_frame(raw: RawClient, garbage: bytes):
    """Found by the fuzzer: a mislabelled body followed by bytes outside any frame."""
    msg_id = raw.next_id()
    body = request_body(msg_id).encode()
    answer = raw.expect(msg_id)
    shutdown_id = raw.next_id()
    shutdown = raw.expect(shutdown_id)
    raw.send_raw(frame(body, f"Content-Length: {len(body) + 900}\r\n\r\n".encode())
                 + garbage
                 + encode({"jsonrpc": "2.0", "id": shutdown_id, "method": "shutdown"}))
    assert (await asyncio.wait_for(shutdown, 10))["result"] is None
    assert (await asyncio.wait_for(answer, 10))["result"]["enable"] is True
    assert [e["error"]["message"] for e in raw.null_id_errors] == [
        "Parse error: bytes outside a message (expected a 'Content-Length:' header); "
        "skipped to the next message"]


# ---------------------------------------------------------------------- the reader alone

TRICKY = [
    {"jsonrpc": "2.0", "method": "textDocument/didOpen", "params": {"text": "Content-Length: 5"
                                                                    "\r\n\r\n{}"}},
    {"jsonrpc": "2.0", "id": 1, "method": "x", "params": ["}Content-Length: 3\r\n\r\n", "é😀"]},
    {"jsonrpc": "2.0", "id": "a", "result": [{"a": "\r\n\r\n"}] * 50},
]


@settings(max_examples=200, deadline=None)
@given(cuts=st.lists(st.integers(0, 2000), max_size=12), lower=st.booleans())
def test_reader_delivers_valid_frames_split_anywhere(cuts, lower):
    """No split of well-formed frames is mistaken for a malformed one (bodies that contain
    header-like text included), and header names are case-insensitive."""
    name = "content-length" if lower else "Content-Length"
    stream = b"".join(frame(json.dumps(m).encode(),
                            f"{name}: {len(json.dumps(m).encode())}\r\n\r\n".encode())
                      for m in TRICKY)
    reader = FrameReader()
    events = []
    start = 0
    for cut in sorted({min(c, len(stream)) for c in cuts}):
        reader.feed(stream[start:cut])
        events += reader.events()
        start = cut
    reader.feed(stream[start:])
    events += reader.events()
    assert events == [Frame(m) for m in TRICKY]


def test_reader_stall_takes_a_mislabelled_body_and_reads_on():
    reader = FrameReader()
    reader.feed(b'Content-Length: 400\r\n\r\n{"jsonrpc": "2.0", "method": "a"}  junk')
    assert reader.events() == [] and reader.waiting_for_body
    reader.stalled()
    assert reader.events() == [
        Frame({"jsonrpc": "2.0", "method": "a"},
              "a message's Content-Length (400) is larger than its body (33 bytes); "
              "read it up to where it ends")]
    assert not reader.waiting_for_body
    # "junk" could still begin a header; glued to the next header it is one bad header line.
    reader.feed(frame(b'{"jsonrpc": "2.0", "method": "b"}'))
    assert reader.events() == [
        FrameError("Parse error: malformed message header: no Content-Length header; "
                   "skipped to the next message"),
        Frame({"jsonrpc": "2.0", "method": "b"})]


def test_reader_stall_leaves_an_incomplete_body_alone():
    reader = FrameReader()
    reader.feed(b'Content-Length: 49\r\n\r\n{"jsonrpc": "2.0", "met')
    reader.stalled()
    assert reader.events() == [] and not reader.waiting_for_body
    reader.feed(b'hod": "a", "params": null}')
    assert reader.events() == [Frame({"jsonrpc": "2.0", "method": "a", "params": None})]


# ---------------------------------------------------------------------- internal errors


class _Capture:
    """A writer that keeps what the server sends."""

    def __init__(self) -> None:
        self.data = b""

    def write(self, data: bytes) -> None:
        self.data += data

    def close(self) -> None:
        pass

    def messages(self) -> list[dict]:
        reader = FrameReader()
        reader.feed(self.data)
        return [e.message for e in reader.events()]


def test_internal_error_carries_no_traceback():
    from lsp_server.server import create_server

    server = create_server()

    @server.command("test.boom")
    def boom(ls, *args):
        raise RuntimeError("boom")

    out = _Capture()
    server.protocol.set_writer(out)
    server.protocol.receive({"jsonrpc": "2.0", "id": 1, "method": "initialize",
                             "params": {"processId": None, "capabilities": {}}})
    server.protocol.receive({"jsonrpc": "2.0", "id": 2, "method": "workspace/executeCommand",
                             "params": {"command": "test.boom"}})
    [reply] = [m for m in out.messages() if m.get("id") == 2]
    assert reply["error"] == {"code": -32603, "message": "Internal error: RuntimeError: boom; "
                              "details in the server log"}
    assert not [m for m in out.messages() if m.get("method") == "window/showMessage"]
