"""textDocument/copilotInlineEdit over pytest-lsp, against the fake OpenAI server over HTTP:
advertised, edit history from didChange in the prompt, Copilot's result shape, the alias, the
typing-through path, didShowInlineEdit, stale versions, malformed params, partial accept."""

from __future__ import annotations

import pytest
import pytest_lsp
from lsprotocol import types
from pytest_lsp import ClientServerConfig, LanguageClient, client_capabilities

from analysis.documents.document import Document
from generation.next_edit.region import region_at
from tests.fakes.openai_server import FakeModelServer
from tests.lsp_server.conftest import SERVER_COMMAND, accept_registrations

URI = "file:///tmp/stagecoder-next-edit/shapes.py"
BEFORE = ("import math\n\n\ndef area(r):\n    return math.pi * r * r\n\n\n"
          "def perimeter(r):\n    return 2 * math.pi * r\n")
AFTER = BEFORE.replace("def area(r):\n    return math.pi * r * r",
                       "def area(radius):\n    return math.pi * radius * radius")
TARGET = AFTER.replace("def perimeter(r):\n    return 2 * math.pi * r",
                       "def perimeter(radius):\n    return 2 * math.pi * radius")
CURSOR = types.Position(line=7, character=len("def perimeter("))


def oracle_answer() -> str:
    """The region at the cursor as it reads in TARGET, fenced as the instruct model answers."""
    doc = Document(URI, AFTER, "python", 2)
    offset, _ = doc.offset_at(CURSOR.line, CURSOR.character, "utf-16")
    region = region_at(doc, offset)
    tail = len(doc.source) - region.end
    return "```python\n" + TARGET.encode()[region.start:len(TARGET) - tail].decode() + "```"


@pytest_lsp.fixture(config=ClientServerConfig(server_command=SERVER_COMMAND,
                                              server_env={"STAGECODER_MODEL_FACTORY": ""}))
async def lsp(lsp_client: LanguageClient):
    yield
    await lsp_client.shutdown_session()


async def start(client: LanguageClient, url: str) -> types.InitializeResult:
    accept_registrations(client)
    result = await client.initialize_session(types.InitializeParams(
        capabilities=client_capabilities("visual-studio-code"),
        initialization_options={"chat": {"url": url}, "nextEdit": {"debounceMs": 0}}))
    client.text_document_did_open(types.DidOpenTextDocumentParams(
        text_document=types.TextDocumentItem(uri=URI, language_id="python", version=1,
                                             text=BEFORE)))
    # The rename of area's parameter, as the editor sends it: two line edits.
    for line, old, new in ((3, "def area(r):", "def area(radius):"),
                           (4, "    return math.pi * r * r",
                            "    return math.pi * radius * radius")):
        client.text_document_did_change(types.DidChangeTextDocumentParams(
            text_document=types.VersionedTextDocumentIdentifier(uri=URI, version=2),
            content_changes=[types.TextDocumentContentChangePartial(
                range=types.Range(start=types.Position(line=line, character=0),
                                  end=types.Position(line=line, character=len(old))),
                text=new)]))
    return result


def params(version: int | None = 2, position: types.Position = CURSOR) -> dict:
    doc: dict = {"uri": URI}
    if version is not None:
        doc["version"] = version
    return {"textDocument": doc,
            "position": {"line": position.line, "character": position.character}}


def as_dict(value):
    """Plain JSON values from a result of a method lsprotocol does not know (pygls hands it
    over as named tuples)."""
    if hasattr(value, "_asdict"):
        value = value._asdict()
    if isinstance(value, dict):
        return {k: as_dict(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [as_dict(v) for v in value]
    return value


async def test_inline_edit_round_trip(lsp: LanguageClient) -> None:
    async with FakeModelServer(text=oracle_answer()) as fake:
        init = await start(lsp, fake.url)
        experimental = init.capabilities.experimental
        assert experimental["copilotInlineEdit"] is True
        assert experimental["stagecoderNextEdit"] == {"method": "stagecoder/nextEdit"}
        result = await lsp.protocol.send_request_async("textDocument/copilotInlineEdit",
                                                       params())
        body = fake.bodies[-1]
    result = as_dict(result)
    (edit,) = result["edits"]
    edit = as_dict(edit)
    assert edit["text"] == "radius):\n    return 2 * math.pi * radius"
    assert as_dict(edit["range"]) == {"start": {"line": 7, "character": 14},
                                      "end": {"line": 8, "character": 26}}
    assert as_dict(edit["textDocument"]) == {"uri": URI, "version": 2}
    assert as_dict(edit["command"])["command"] == "stagecoder.didAcceptNextEdit"
    # The prompt went to the chat endpoint, streamed, with the rename in its history.
    assert body["stream"] is True
    user = body["messages"][1]["content"]
    assert "-def area(r):\n+def area(radius):" in user
    assert "-    return math.pi * r * r\n+    return math.pi * radius * radius" in user
    assert "--- a/tmp/stagecoder-next-edit/shapes.py" in user
    # The alias answers the same, from the shown rewrite: no second model call.
    again = as_dict(await lsp.protocol.send_request_async("stagecoder/nextEdit", params()))
    assert as_dict(again["edits"][0])["text"] == edit["text"]
    lsp.protocol.notify("textDocument/didShowInlineEdit", {"item": edit})
    stats = await lsp.workspace_execute_command_async(
        types.ExecuteCommandParams(command="stagecoder.stats"))
    assert stats["nextEdit"]["modelCalls"] == 1 and stats["nextEdit"]["cacheHits"] == 1
    assert stats["nextEdit"]["shown"] == 1
    # A request about a version the server does not hold gets no edit.
    stale = as_dict(await lsp.protocol.send_request_async("textDocument/copilotInlineEdit",
                                                          params(version=1)))
    assert stale == {"edits": []}


async def test_malformed_params_get_invalid_params(lsp: LanguageClient) -> None:
    async with FakeModelServer(text="NO_CHANGE") as fake:
        await start(lsp, fake.url)
        with pytest.raises(Exception, match=r"-32602|position must hold"):
            await lsp.protocol.send_request_async(
                "textDocument/copilotInlineEdit",
                {"textDocument": {"uri": URI}, "position": {"line": "x", "character": 0}})
        # And the server goes on serving.
        ok = as_dict(await lsp.protocol.send_request_async("textDocument/copilotInlineEdit",
                                                           params(version=None)))
        assert ok == {"edits": []}


CALC = "file:///tmp/stagecoder-next-edit/calc.py"


async def test_partial_accept_moves_the_typing_through_cache(lsp: LanguageClient) -> None:
    async with FakeModelServer(text="    return radius * 2\n\ndef later():\n") as fake:
        accept_registrations(lsp)
        caps = client_capabilities("visual-studio-code")
        caps.text_document.inline_completion = types.InlineCompletionClientCapabilities()
        await lsp.initialize_session(types.InitializeParams(
            capabilities=caps, initialization_options={
                "completion": {"url": fake.url}, "stages": {"candidates": 1}}))
        lsp.text_document_did_open(types.DidOpenTextDocumentParams(
            text_document=types.TextDocumentItem(uri=CALC, language_id="python", version=1,
                                                 text="import math\n\n\ndef area(radius):\n\n")))
        here = types.Position(line=4, character=0)
        first = await lsp.text_document_inline_completion_async(types.InlineCompletionParams(
            text_document=types.TextDocumentIdentifier(uri=CALC), position=here,
            context=types.InlineCompletionContext(
                trigger_kind=types.InlineCompletionTriggerKind.Automatic)))
        assert first is not None
        shown = first.items[0].insert_text
        assert shown == "    return radius * 2"
        calls = fake.completions
        # The editor accepts the first word (Ctrl+Right) and tells the server, then the text
        # arrives as a change.
        lsp.protocol.notify("textDocument/didPartiallyAcceptCompletion", {
            "item": {"insertText": shown, "range": {"start": {"line": 4, "character": 0},
                                                    "end": {"line": 4, "character": 0}}},
            "acceptedLength": len("    return")})
        lsp.text_document_did_change(types.DidChangeTextDocumentParams(
            text_document=types.VersionedTextDocumentIdentifier(uri=CALC, version=2),
            content_changes=[types.TextDocumentContentChangePartial(
                range=types.Range(start=here, end=here), text="    return")]))
        rest = await lsp.text_document_inline_completion_async(types.InlineCompletionParams(
            text_document=types.TextDocumentIdentifier(uri=CALC),
            position=types.Position(line=4, character=10),
            context=types.InlineCompletionContext(
                trigger_kind=types.InlineCompletionTriggerKind.Automatic)))
        assert rest is not None and rest.items[0].insert_text == " radius * 2"
        assert fake.completions == calls  # no model call
    stats = await lsp.workspace_execute_command_async(
        types.ExecuteCommandParams(command="stagecoder.stats"))
    assert stats["partialAccepts"] == 1


def test_accepted_length_counts_utf16_units() -> None:
    from lsp_server.handlers.next_edit import _utf16_prefix_bytes

    text = "a😀b"  # the emoji is two UTF-16 units and four UTF-8 bytes
    assert [_utf16_prefix_bytes(text, n) for n in range(5)] == [0, 1, 1, 5, 6]
