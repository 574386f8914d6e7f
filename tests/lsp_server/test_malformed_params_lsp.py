"""Every request the server registers, sent with params of the wrong shape, answers -32602 with
a reason; out-of-range positions get a valid answer; nothing ever pops up (window/showMessage)."""

from __future__ import annotations

import asyncio
import json

import attrs
import pytest
from lsprotocol import types

from lsp_server.server import create_server
from tests.lsp_server._raw_lsp import RawClient, encode

URI = "file:///tmp/stagecoder-params/example.py"
TEXT = "def f(x):\n    return x + 1\n    print('dead')\n"
MISSING = object()  # the request carries no params member at all


def registered_requests() -> tuple[list[str], list[str]]:
    """(request methods, commands) the server registers, from its feature manager."""
    fm = create_server().protocol.fm
    methods = set(fm.features) | set(fm.builtin_features)
    requests = sorted(m for m in methods if m in types.METHOD_TO_TYPES
                      and "id" in attrs.fields_dict(types.METHOD_TO_TYPES[m][0]))
    # shutdown takes no params, so none can be wrong; it is sent last by every test.
    return [m for m in requests if m != types.SHUTDOWN], sorted(fm.commands)


REQUESTS, COMMANDS = registered_requests()
# Wrong for every request; then wrong values for one field, sent where the params have it.
WRONG_SHAPES = [
    None, MISSING, [], [1, "a"], "text", 42, True, {}, {"textDocument": 5},
    {"textDocument": {"uri": 5}}, {"textDocument": [URI]},
    {"deep": [[[[[[[[[[{"a": {"b": [None]}}]]]]]]]]]]},
]
FIELD_SHAPES = {
    "position": [{"line": "a", "character": 0}, {"line": -1, "character": 0},
                 {"line": 0, "character": 2**40}, {"line": True, "character": 1.5}, [0, 0],
                 {"line": 0}],
    "range": [{"start": 5, "end": None}, [], {"start": {"line": 0, "character": 0}}],
    "context": ["x", {"diagnostics": 7}, {"triggerKind": "invoked"}],
    "command": [5, ["stagecoder.documentState"]],
    "title": [None, 7],
}


def shapes_for(method: str) -> list[object]:
    """The generic wrong shapes plus a wrong value for each field the method's params have."""
    params_type = types.METHOD_TO_TYPES[method][2]
    fields = set(attrs.fields_dict(params_type)) if attrs.has(params_type) else set()
    shapes = list(WRONG_SHAPES)
    for field, values in FIELD_SHAPES.items():
        if field in fields:
            base = {"textDocument": {"uri": URI}, "position": {"line": 0, "character": 0},
                    "range": {"start": {"line": 0, "character": 0},
                              "end": {"line": 0, "character": 1}},
                    "context": {"diagnostics": [], "triggerKind": 1},
                    "command": "stagecoder.showSettings", "title": "t"}
            shapes.extend({**base, field: value} for value in values)
    return shapes


@pytest.fixture(params=["visual-studio-code", "neovim"])
async def raw(request, tmp_path):
    client = RawClient(tmp_path / "server.log")
    await client.start(request.param)
    client.notify("textDocument/didOpen", {"textDocument": {
        "uri": URI, "languageId": "python", "version": 1, "text": TEXT}})
    yield client
    reply = await client.request("shutdown", None)
    assert reply.get("result", "error") is None, reply  # still serving after all of it
    assert client.notifications("window/showMessage") == []
    assert not any(m.get("error", {}).get("code") == -32603 for m in client.messages)
    await client.close()


def test_the_sweep_covers_the_features():
    assert {"textDocument/codeAction", "textDocument/inlineCompletion", "textDocument/completion",
            "textDocument/diagnostic", "codeAction/resolve", "workspace/executeCommand",
            "initialize"} <= set(REQUESTS)
    assert "stagecoder.documentState" in COMMANDS


async def test_wrong_shapes_answer_32602(raw: RawClient):
    sent = []
    for method in REQUESTS:
        for shape in shapes_for(method):
            future = (raw.send_request(method, None, with_params=False) if shape is MISSING
                      else raw.send_request(method, shape))
            sent.append((method, shape, future))
    replies = await asyncio.wait_for(asyncio.gather(*(f for _, _, f in sent)), 60)
    for (method, shape, _), reply in zip(sent, replies, strict=True):
        error = reply.get("error")
        assert error is not None and error["code"] == -32602, (method, shape, reply)
        assert error["message"].startswith(f"Invalid params for {method}: "), error
        assert "@ $.params" in error["message"] or "expected" in error["message"], error
    logged = [p["message"] for p in raw.notifications("window/logMessage")]
    assert sum("with invalid params" in m for m in logged) == len(sent)


async def test_reason_names_the_field(raw: RawClient):
    reply = await raw.request("textDocument/inlineCompletion", {
        "textDocument": {"uri": URI}, "position": {"line": 0},
        "context": {"triggerKind": 1}})
    assert reply["error"] == {"code": -32602, "message": "Invalid params for "
                              "textDocument/inlineCompletion: required field missing @ "
                              "$.params.position.character"}


async def test_wrong_shaped_notifications_are_logged_not_shown(raw: RawClient):
    for method in ("textDocument/didChange", "textDocument/didOpen", "textDocument/didClose",
                   "workspace/didChangeConfiguration", "$/cancelRequest", "$/setTrace"):
        for shape in (None, [], "x", {"textDocument": 5}, {"id": {"a": 1}}):
            raw.notify(method, shape)
    state = await raw.document_state(URI)  # answered after all of them: the server goes on
    assert state is not None and state["version"] == 1


def _at(line: int, character: int) -> dict[str, int]:
    return {"line": line, "character": character}


async def test_out_of_range_positions_get_valid_answers(raw: RawClient):
    doc = {"uri": URI}
    far, huge = _at(10**6, 10**6), _at(2**31 - 1, 2**31 - 1)
    cases = [
        ("textDocument/inlineCompletion", {"textDocument": doc, "position": far,
                                           "context": {"triggerKind": 1}}),
        ("textDocument/inlineCompletion", {"textDocument": doc, "position": huge,
                                           "context": {"triggerKind": 2}}),
        ("textDocument/completion", {"textDocument": doc, "position": far}),
        ("textDocument/completion", {"textDocument": {"uri": "file:///not/open.py"},
                                     "position": _at(0, 0)}),
        ("textDocument/codeAction", {"textDocument": doc, "range": {"start": huge, "end": far},
                                     "context": {"diagnostics": []}}),
        ("textDocument/codeAction", {"textDocument": doc, "range": {"start": _at(2, 9),
                                     "end": _at(0, 3)}, "context": {"diagnostics": [{
                                         "range": {"start": far, "end": huge}, "message": "m",
                                         "source": "stagecoder", "code": "SC301",
                                         "data": {"version": 1, "fix": {
                                             "title": "t", "safe": True,
                                             "edits": [[10**6, 0, 10**6, 5, ""]]}}}]}}),
        ("textDocument/diagnostic", {"textDocument": {"uri": "untitled:Untitled-1"}}),
        ("codeAction/resolve", {"title": "t", "data": {"action": "stagecoder.rewrite",
                                                       "uri": URI, "version": 1,
                                                       "range": [10**6, 0, -4, "x"]}}),
        ("codeAction/resolve", {"title": "t", "data": [1, 2]}),
    ]
    for command in COMMANDS:
        for arguments in ([], [5], [None], [{}], [[1]], ["file:///nope.py"], [URI, 1, 2, 3]):
            cases.append(("workspace/executeCommand", {"command": command,
                                                       "arguments": arguments}))
    cases.append(("workspace/executeCommand", {"command": "stagecoder.noSuchCommand"}))
    replies = await asyncio.wait_for(asyncio.gather(
        *(raw.send_request(method, params) for method, params in cases)), 60)
    for (method, params), reply in zip(cases, replies, strict=True):
        if "error" in reply:
            assert reply["error"]["code"] == -32602, (method, params, reply)
        else:
            assert "result" in reply, reply
    quick_fix = replies[5]["result"] or []
    assert not any(a.get("kind") == "quickfix" for a in quick_fix)  # its edit is off the document


async def test_lone_surrogate_range_stays_inside_its_line(raw: RawClient):
    uri = "file:///tmp/stagecoder-params/surrogate.py"
    # The surrogate sits in a string: a stray one in code is a parse error, and the boundary and
    # flow rules say nothing where the tree is broken around them.
    text = "    return\n    print('dead')\n'\udc00x'"
    # json.dumps writes the lone surrogate as the escape "\udc00", as an editor's JSON would.
    raw.send_raw(encode({"jsonrpc": "2.0", "method": "textDocument/didOpen", "params": {
        "textDocument": {"uri": uri, "languageId": "python", "version": 1, "text": text}}}))
    reply = await raw.request("textDocument/diagnostic", {"textDocument": {"uri": uri}})
    items = reply["result"]["items"]
    last = {"utf-16": 4, "utf-8": 6}[raw.encoding]  # "'\udc00x'": 4 UTF-16 units, 1+3+1+1 bytes
    assert [(d["code"], d["message"], d["range"]) for d in items] == [(
        "SC301", "unreachable code: 2 statements after `return`",
        {"start": _at(1, 4), "end": _at(2, last)})]
    assert items[0]["data"]["fix"]["edits"] == [[1, 0, 2, last, ""]]
    assert json.dumps(items)  # plain JSON all the way
