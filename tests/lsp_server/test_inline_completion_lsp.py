"""Inline completions through a real LSP client, with a scripted model in the server process.

The real-model path (vLLM) is tested in tests/e2e; these tests pin the protocol behaviour:
range, typing-through, supersede, cancel, model down, completion items, and the
`stagecoder/status` notifications (sent only when the shown state changes).
"""

from __future__ import annotations

import asyncio
import os
import socket
from pathlib import Path

import attrs
import pytest
import pytest_lsp
from lsprotocol import types
from pytest_lsp import ClientServerConfig, LanguageClient, client_capabilities

from tests.fakes.openai_server import FakeModelServer
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


# --- stagecoder/status: only state changes, no flicker ----------------------------------------


def record_status(client: LanguageClient) -> list[tuple[str, str]]:
    """Every stagecoder/status notification the client receives, as (state, message)."""
    seen: list[tuple[str, str]] = []

    @client.feature("stagecoder/status")
    def on_status(params) -> None:
        get = params.get if isinstance(params, dict) else lambda k: getattr(params, k)
        seen.append((get("state"), get("message")))

    return seen


async def test_model_down_status_is_sent_once_not_per_keystroke(down: LanguageClient):
    seen = record_status(down)
    await start(down)
    for _ in range(10):
        assert await down.text_document_inline_completion_async(inline_request()) is None
    assert (await stats(down))["inflight"] == 0  # every status was sent before this answer
    assert seen == [("unreachable",
                     "model server http://127.0.0.1:9 unavailable: connection refused")]


@pytest_lsp.fixture(config=ClientServerConfig(
    server_command=SERVER_COMMAND,
    server_env=server_env(LOG_DIR, STAGECODER_MODEL_FACTORY="")))  # the real HTTP client
async def http_model(lsp_client: LanguageClient):
    yield
    await lsp_client.shutdown_session()


async def test_status_reports_recovery_when_the_model_comes_back(http_model: LanguageClient):
    with socket.socket() as probe:  # a port with nothing listening: connection refused
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    seen = record_status(http_model)
    await start(http_model, options={"stages": {"candidates": 1},
                                     "completion": {"url": f"http://127.0.0.1:{port}"}})
    for _ in range(10):
        assert await http_model.text_document_inline_completion_async(inline_request()) is None
    assert len(seen) == 1 and seen[0][0] == "unreachable"
    assert seen[0][1].startswith(f"model server http://127.0.0.1:{port} unavailable: "
                                 "cannot connect")
    async with FakeModelServer(port=port, text="    return radius * 2\n\ndef later():\n"):
        result = await http_model.text_document_inline_completion_async(inline_request())
    assert result is not None and result.items[0].insert_text == "    return radius * 2"
    assert [state for state, _ in seen] == ["unreachable", "ready"]
    assert seen[1] == ("ready", "model answered")


@pytest_lsp.fixture(config=ClientServerConfig(
    server_command=SERVER_COMMAND,
    server_env=server_env(LOG_DIR / "slower", STAGECODER_FAKE_DELAY="0.25")))
async def slower(lsp_client: LanguageClient):
    (LOG_DIR / "slower").mkdir(exist_ok=True)
    yield
    await lsp_client.shutdown_session()


async def test_status_working_only_while_a_slow_completion_runs(slower: LanguageClient):
    # "    return 42\n" streams in 4 pieces 0.25 s apart: longer than WORKING_AFTER (0.5 s).
    seen = record_status(slower)
    await start(slower)
    result = await slower.text_document_inline_completion_async(inline_request())
    assert result is not None and result.items[0].insert_text == "    return 42"
    assert seen == [("working", "generating a completion"), ("ready", "model answered")]
    # A cancelled completion has no outcome: the bar goes back to what it said before.
    slower.text_document_did_change(types.DidChangeTextDocumentParams(  # not from the cache
        text_document=types.VersionedTextDocumentIdentifier(uri=URI, version=2),
        content_changes=[types.TextDocumentContentChangePartial(
            range=types.Range(start=types.Position(line=3, character=4),
                              end=types.Position(line=3, character=4)), text="x")]))
    future = asyncio.ensure_future(slower.protocol.send_request_async(
        types.TEXT_DOCUMENT_INLINE_COMPLETION, inline_request(), msg_id="slow-1"))
    for _ in range(200):
        if len(seen) == 3:
            break
        await asyncio.sleep(0.01)
    assert seen[2] == ("working", "generating a completion")
    slower.protocol.notify(types.CANCEL_REQUEST, types.CancelParams(id="slow-1"))
    with pytest.raises(Exception, match=r"(?i)cancel"):
        await future
    assert (await stats(slower))["inflight"] == 0
    assert seen[3:] == [("ready", "model answered")]
