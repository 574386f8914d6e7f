"""Inline completions through a real LSP client, with a scripted model in the server process.

The real-model path (vLLM) is tested in tests/e2e; these tests pin the protocol behaviour:
range, typing-through, supersede, cancel, model down, and completion items.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import attrs
import pytest
import pytest_lsp
from lsprotocol import types
from pytest_lsp import ClientServerConfig, LanguageClient, client_capabilities

from tests.lsp_server.conftest import SERVER_COMMAND, accept_registrations

ROOT = Path(__file__).resolve().parents[2]
URI = "file:///tmp/stagecoder-inline/calc.py"
SOURCE = "import math\n\n\ndef area(radius):\n\n"  # the cursor goes on line 4, column 0


def server_env(tmp: Path, **extra: str) -> dict[str, str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT),
           "STAGECODER_MODEL_FACTORY": "tests.fakes.models:scripted",
           "STAGECODER_FAKE_LOG": str(tmp / "model.log")}
    env.update(extra)
    return env


def with_inline(profile: str) -> types.ClientCapabilities:
    caps = client_capabilities(profile)
    text = attrs.evolve(caps.text_document,
                        inline_completion=types.InlineCompletionClientCapabilities())
    return attrs.evolve(caps, text_document=text)


async def start(client: LanguageClient, profile: str = "visual-studio-code", inline: bool = True,
                options: dict | None = None) -> None:
    caps = with_inline(profile) if inline else client_capabilities(profile)
    accept_registrations(client)
    await client.initialize_session(types.InitializeParams(
        capabilities=caps, initialization_options=options or {"stages": {"candidates": 1}}))
    client.text_document_did_open(types.DidOpenTextDocumentParams(
        text_document=types.TextDocumentItem(uri=URI, language_id="python", version=1,
                                             text=SOURCE)))


def inline_request(line: int = 4, character: int = 0) -> types.InlineCompletionParams:
    return types.InlineCompletionParams(
        text_document=types.TextDocumentIdentifier(uri=URI),
        position=types.Position(line=line, character=character),
        context=types.InlineCompletionContext(
            trigger_kind=types.InlineCompletionTriggerKind.Automatic))


async def stats(client: LanguageClient) -> dict:
    return await client.workspace_execute_command_async(
        types.ExecuteCommandParams(command="stagecoder.stats"))


LOG_DIR = Path(os.environ.get("TMPDIR", "/tmp")) / f"stagecoder-inline-{os.getpid()}"
LOG_DIR.mkdir(parents=True, exist_ok=True)


@pytest_lsp.fixture(config=ClientServerConfig(
    server_command=SERVER_COMMAND,
    server_env=server_env(LOG_DIR, STAGECODER_FAKE_TEXT="    return math.pi * radius ** 2\n"
                          "\n\ndef other():\n    pass\n")))
async def fast(lsp_client: LanguageClient):
    yield
    await lsp_client.shutdown_session()


@pytest_lsp.fixture(config=ClientServerConfig(
    server_command=SERVER_COMMAND,
    server_env=server_env(LOG_DIR / "slow", STAGECODER_FAKE_DELAY="0.05")))
async def slow(lsp_client: LanguageClient):
    (LOG_DIR / "slow").mkdir(exist_ok=True)
    yield
    await lsp_client.shutdown_session()


@pytest_lsp.fixture(config=ClientServerConfig(
    server_command=SERVER_COMMAND,
    server_env=server_env(LOG_DIR, STAGECODER_MODEL_FACTORY="tests.fakes.models:down")))
async def down(lsp_client: LanguageClient):
    yield
    await lsp_client.shutdown_session()


@pytest.mark.parametrize("profile", ["visual-studio-code", "neovim"])
async def test_item_has_staged_text_and_range(fast: LanguageClient, profile: str):
    await start(fast, profile)
    result = await fast.text_document_inline_completion_async(inline_request())
    assert result is not None and len(result.items) == 1
    item = result.items[0]
    assert item.insert_text == "    return math.pi * radius ** 2"  # cut at the dedent
    assert item.range == types.Range(start=types.Position(line=4, character=0),
                                     end=types.Position(line=4, character=0))


async def test_typing_through_makes_no_model_call(fast: LanguageClient):
    await start(fast)
    first = await fast.text_document_inline_completion_async(inline_request())
    suggestion = first.items[0].insert_text
    calls = (await stats(fast))["modelCalls"]
    assert calls == 1
    typed = ""
    for version, ch in enumerate(suggestion[:12], start=2):
        column = len(typed)
        fast.text_document_did_change(types.DidChangeTextDocumentParams(
            text_document=types.VersionedTextDocumentIdentifier(uri=URI, version=version),
            content_changes=[types.TextDocumentContentChangePartial(
                range=types.Range(start=types.Position(line=4, character=column),
                                  end=types.Position(line=4, character=column)), text=ch)]))
        typed += ch
        again = await fast.text_document_inline_completion_async(inline_request(4, len(typed)))
        assert again is not None and again.items[0].insert_text == suggestion[len(typed):]
    after = await stats(fast)
    assert after["modelCalls"] == calls  # every keystroke answered from the cache
    assert after["cacheHits"] == 12
    # A keystroke that disagrees with the suggestion goes back to the model.
    fast.text_document_did_change(types.DidChangeTextDocumentParams(
        text_document=types.VersionedTextDocumentIdentifier(uri=URI, version=99),
        content_changes=[types.TextDocumentContentChangePartial(
            range=types.Range(start=types.Position(line=4, character=len(typed)),
                              end=types.Position(line=4, character=len(typed))), text="#")]))
    await fast.text_document_inline_completion_async(inline_request(4, len(typed) + 1))
    assert (await stats(fast))["modelCalls"] == calls + 1


async def test_newer_request_supersedes_older(slow: LanguageClient):
    await start(slow)
    older = asyncio.ensure_future(slow.text_document_inline_completion_async(inline_request()))
    await asyncio.sleep(0.15)
    newer = await slow.text_document_inline_completion_async(inline_request())
    assert newer is not None and newer.items[0].insert_text == "    return 42"
    assert await older is None  # superseded: answered empty, not an error
    log = (LOG_DIR / "slow" / "model.log").read_text().split()
    assert log.count("open") == 2 and log.count("closed") == 2
    assert (await stats(slow))["inflight"] == 0


async def test_cancel_closes_the_model_stream(slow: LanguageClient):
    await start(slow)
    log_path = LOG_DIR / "slow" / "model.log"
    before = log_path.read_text().split().count("closed") if log_path.exists() else 0
    future = asyncio.ensure_future(slow.protocol.send_request_async(
        types.TEXT_DOCUMENT_INLINE_COMPLETION, inline_request()))
    await asyncio.sleep(0.15)  # the stream is open and trickling
    slow.protocol.notify(types.CANCEL_REQUEST,
                         types.CancelParams(id=next(reversed(slow.protocol._request_futures))))
    with pytest.raises(Exception) as info:
        await future
    assert "cancel" in str(info.value).lower()
    for _ in range(50):
        if log_path.read_text().split().count("closed") > before:
            break
        await asyncio.sleep(0.02)
    assert log_path.read_text().split().count("closed") == before + 1
    assert (await stats(slow))["inflight"] == 0


async def test_model_down_is_told_once(down: LanguageClient):
    await start(down)
    for _ in range(4):
        result = await down.text_document_inline_completion_async(inline_request())
        assert result is None
    shown = [m for m in down.messages if "no completions" in m.message]
    assert len(shown) == 1 and "127.0.0.1:9" in shown[0].message


async def test_completion_items_for_clients_without_inline(fast: LanguageClient):
    await start(fast, "neovim", inline=False)
    result = await fast.text_document_completion_async(types.CompletionParams(
        text_document=types.TextDocumentIdentifier(uri=URI),
        position=types.Position(line=4, character=0)))
    assert result is not None and len(result.items) == 1
    item = result.items[0]
    assert item.text_edit.new_text == "    return math.pi * radius ** 2"
    assert item.label == "return math.pi * radius ** 2"


async def test_no_completion_items_when_client_has_inline(fast: LanguageClient):
    await start(fast, "visual-studio-code", inline=True)
    result = await fast.text_document_completion_async(types.CompletionParams(
        text_document=types.TextDocumentIdentifier(uri=URI),
        position=types.Position(line=4, character=0)))
    assert result is None


@pytest_lsp.fixture(config=ClientServerConfig(
    server_command=SERVER_COMMAND,
    server_env=server_env(LOG_DIR, STAGECODER_MODEL_FACTORY="tests.fakes.models:broken")))
async def broken(lsp_client: LanguageClient):
    yield
    await lsp_client.shutdown_session()


async def test_unexpected_failure_costs_one_completion(broken: LanguageClient):
    await start(broken)
    for _ in range(3):
        assert await broken.text_document_inline_completion_async(inline_request()) is None
    shown = [m for m in broken.messages if "completion failed" in m.message]
    assert len(shown) == 1 and shown[0].type == types.MessageType.Error
    # The server keeps serving other requests.
    assert (await stats(broken))["inflight"] == 0
