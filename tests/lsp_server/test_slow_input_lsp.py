"""Slow or hostile input never freezes the server (issue 18: frozen event loop, segfault).

Through a real `stagecoder serve`: a diagnostic for a FIFO or /dev/zero answers at once; the
pathological documents of the issues (a 100,000-term expression, 50,000 nested arrow functions,
a 3 MB file that would take seconds of rules) never hold up a concurrent request for longer than
the time budget, pulled or pushed, and the log says once per version why the diagnostics are
incomplete; `documentState` and an inline completion on a 100,000-deep document answer and the
server lives on. "Concurrent" is measured: `stagecoder.stats` round trips, one after another,
for as long as the slow request is in flight.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
from pathlib import Path

import pytest_lsp
from lsprotocol import types
from pytest_lsp import ClientServerConfig, LanguageClient

from tests.fakes.bad_files import make_fifo
from tests.lsp_server._lsp_helpers import open_doc, replace_all
from tests.lsp_server.conftest import SERVER_COMMAND, accept_registrations, initialize_params
from tests.lsp_server.test_documents_lsp import state, wait_for_log
from tests.lsp_server.test_inline_completion_lsp import server_env, with_inline

BUDGET_S = 2.0  # review.timeBudget's default: no request may wait longer than this
DEPTH = 100_000
NESTING = "nesting deeper than 1,000 levels; code below that depth was not checked"
CROWDED = "too much nesting to follow every pattern; some findings may be missing"
# (language, text, why its diagnostics are incomplete) for the documents.
DEEP = {
    "python-terms": ("python", "x = " + " + ".join(["1"] * DEPTH) + "\n",
                     f"{NESTING}; {CROWDED}"),
    "js-arrows": ("javascript", "const f = () => {\n" + "const g = () => {\n" * 50_000
                  + "};\n" * 50_000 + "};\n", NESTING),
}
WIDE = ("x = " + " + ".join(["1"] * 400) + "\n") * 2000  # shallow, 3.2 MB, seconds of rules
LOG_DIR = Path(os.environ.get("TMPDIR", "/tmp")) / f"stagecoder-slow-{os.getpid()}"
LOG_DIR.mkdir(parents=True, exist_ok=True)


@pytest_lsp.fixture(config=ClientServerConfig(server_command=SERVER_COMMAND))
async def puller(lsp_client: LanguageClient):
    """A Neovim client: it pulls diagnostics."""
    lsp_client.profile = "neovim"
    yield
    await lsp_client.shutdown_session()


@pytest_lsp.fixture(config=ClientServerConfig(server_command=SERVER_COMMAND))
async def pusher(lsp_client: LanguageClient):
    """A VS Code 1.65 client: no pull support, so the server publishes."""
    lsp_client.profile = "visual-studio-code"
    yield
    await lsp_client.shutdown_session()


@pytest_lsp.fixture(config=ClientServerConfig(
    server_command=SERVER_COMMAND, server_env=server_env(LOG_DIR)))
async def completer(lsp_client: LanguageClient):
    """A client with inline completion, served by the scripted model."""
    yield
    await lsp_client.shutdown_session()


async def start(client: LanguageClient, options: dict | None = None) -> None:
    accept_registrations(client)
    await client.initialize_session(initialize_params(client.profile, options))
    caps = client.capabilities.text_document if client.capabilities else None
    assert bool(caps and caps.diagnostic) == (client.profile == "neovim")


async def stats(client: LanguageClient) -> dict:
    return await client.workspace_execute_command_async(
        types.ExecuteCommandParams(command="stagecoder.stats"))


def pull(client: LanguageClient, uri: str) -> asyncio.Future:
    return asyncio.ensure_future(client.text_document_diagnostic_async(
        types.DocumentDiagnosticParams(text_document=types.TextDocumentIdentifier(uri=uri))))


def published(client: LanguageClient, uri: str, version: int) -> asyncio.Future:
    async def wait() -> types.PublishDiagnosticsParams:
        while True:
            params = await client.wait_for_notification(types.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS)
            if params.uri == uri and params.version == version:
                return params

    return asyncio.ensure_future(wait())


async def round_trips(client: LanguageClient, pending: asyncio.Future) -> list[float]:
    """Seconds each `stagecoder.stats` took, sent one after another while `pending` runs."""
    loop = asyncio.get_running_loop()
    trips: list[float] = []
    give_up = loop.time() + 60
    while not pending.done() and loop.time() < give_up:
        sent = loop.time()
        await asyncio.wait_for(stats(client), 30)
        trips.append(loop.time() - sent)
    await asyncio.wait_for(pending, 30)
    return trips


def incomplete(client: LanguageClient, uri: str) -> list[str]:
    needle = f"stagecoder: diagnostics for {uri} are incomplete: "
    return [m.message for m in client.log_messages if m.message.startswith(needle)]


async def test_a_fifo_and_dev_zero_answer_at_once(puller: LanguageClient, tmp_path: Path):
    await start(puller)
    fifo = make_fifo(tmp_path / "pipe.py")
    cases = [(fifo.as_uri(), f"{fifo}: skipped, a FIFO (named pipe), not a regular file"),
             ("file:///dev/zero", "/dev/zero: skipped, a character device, not a regular file")]
    for uri, problem in cases:
        pending = pull(puller, uri)
        assert (await asyncio.wait_for(stats(puller), 5))["openDocuments"] == 0
        report = await asyncio.wait_for(pending, 5)
        assert report.kind == "full" and list(report.items) == []
        assert await wait_for_log(puller, problem) == f"stagecoder: {problem}"


async def test_deep_documents_do_not_hold_up_a_pulling_client(puller: LanguageClient):
    await start(puller)
    for name, (language, text, why) in DEEP.items():
        uri = f"file:///tmp/stagecoder-slow/{name}.{'py' if language == 'python' else 'js'}"
        open_doc(puller, uri, text, language)
        await stats(puller)  # answered once the open is processed: from here on, it is analysis
        pending = pull(puller, uri)
        trips = await round_trips(puller, pending)
        assert pending.result().kind == "full"
        assert trips and max(trips) < BUDGET_S, (name, trips)
        assert await wait_for_log(puller, f"diagnostics for {uri}") == (
            f"stagecoder: diagnostics for {uri} are incomplete: {why}.")


async def test_deep_documents_do_not_hold_up_a_pushed_client(pusher: LanguageClient):
    await start(pusher)
    for name, (language, text, why) in DEEP.items():
        uri = f"file:///tmp/stagecoder-slow/{name}.{'py' if language == 'python' else 'js'}"
        pending = published(pusher, uri, 1)
        open_doc(pusher, uri, text, language)
        await stats(pusher)  # answered once the open is processed (the publish is under way)
        trips = await round_trips(pusher, pending)  # none if the publish was done already
        assert max(trips, default=0.0) < BUDGET_S, (name, trips)
        assert pending.result().diagnostics is not None
        assert await wait_for_log(pusher, f"diagnostics for {uri}") == (
            f"stagecoder: diagnostics for {uri} are incomplete: {why}.")


async def test_the_budget_cuts_a_slow_file_and_says_so_once_per_version(puller: LanguageClient):
    await start(puller, {"review": {"timeBudget": 0.5}})
    uri = "file:///tmp/stagecoder-slow/wide.py"
    open_doc(puller, uri, WIDE)
    await stats(puller)
    pending = pull(puller, uri)
    trips = await round_trips(puller, pending)
    assert pending.result().kind == "full"
    assert len(trips) >= 2 and max(trips) < BUDGET_S, trips  # answered while the rules ran
    why = ("analysis stopped at its time budget of 0.5 s (review.timeBudget); findings after "
           "that point are missing")
    await wait_for_log(puller, f"diagnostics for {uri}")
    assert incomplete(puller, uri) == [f"stagecoder: diagnostics for {uri} are incomplete: {why}."]
    await asyncio.wait_for(pull(puller, uri), 30)  # the same version again: no second line
    assert len(incomplete(puller, uri)) == 1
    replace_all(puller, uri, 2, WIDE + "y = 2\n")
    second = await asyncio.wait_for(pull(puller, uri), 30)
    assert "@2:" in second.result_id
    assert len(incomplete(puller, uri)) == 2  # a new version is told again


async def test_the_budget_holds_for_published_diagnostics(pusher: LanguageClient):
    await start(pusher, {"review": {"timeBudget": 0.5}})
    uri = "file:///tmp/stagecoder-slow/wide.py"
    pending = published(pusher, uri, 1)
    open_doc(pusher, uri, WIDE)
    await stats(pusher)
    trips = await round_trips(pusher, pending)
    assert trips and max(trips) < BUDGET_S, trips  # answered while the rules ran
    assert await wait_for_log(pusher, f"diagnostics for {uri}") == (
        f"stagecoder: diagnostics for {uri} are incomplete: analysis stopped at its time "
        "budget of 0.5 s (review.timeBudget); findings after that point are missing.")


async def test_document_state_of_a_100000_deep_document(puller: LanguageClient):
    await start(puller)
    uri = "file:///tmp/stagecoder-slow/lists.py"
    text = "x = " + "[" * DEPTH + "]" * DEPTH + "\n"
    open_doc(puller, uri, text)
    got = await asyncio.wait_for(state(puller, uri), 10)
    assert got is not None
    assert (got["bytes"], got["lineCount"], got["tooLarge"], got["hasErrors"]) == (
        len(text), 2, False, False)
    assert got["sha256"] == hashlib.sha256(text.encode()).hexdigest()
    assert got["syntaxTreeTruncated"] is True and len(got["syntaxTree"]) == 200_000
    assert got["syntaxTree"].startswith(
        "(module (expression_statement (assignment left: (identifier) right: (list (list ")
    assert (await asyncio.wait_for(stats(puller), 5))["openDocuments"] == 1  # still serving


async def test_inline_completion_in_a_100000_deep_document(completer: LanguageClient):
    accept_registrations(completer)
    await completer.initialize_session(types.InitializeParams(
        capabilities=with_inline("visual-studio-code"),
        initialization_options={"stages": {"candidates": 1}}))
    cases = [  # (uri, language, text, line of the cursor, the completion expected)
        ("file:///tmp/stagecoder-slow/blocks.js", "javascript",
         "function f(a) {\n" + "if (a) {\n" * DEPTH + "\n" + "}\n" * DEPTH + "}\n", DEPTH + 1,
         "    return 42"),
        ("file:///tmp/stagecoder-slow/lists.py", "python",
         "x = " + "[" * DEPTH + "\n\n" + "]" * DEPTH + "\n", 1, None),
    ]
    loop = asyncio.get_running_loop()
    for uri, language, text, line, expected in cases:
        open_doc(completer, uri, text, language)
        sent = loop.time()
        result = await asyncio.wait_for(completer.text_document_inline_completion_async(
            types.InlineCompletionParams(
                text_document=types.TextDocumentIdentifier(uri=uri),
                position=types.Position(line=line, character=0),
                context=types.InlineCompletionContext(
                    trigger_kind=types.InlineCompletionTriggerKind.Automatic))), 30)
        assert loop.time() - sent < 10, uri  # "within a few seconds", generously
        texts = [item.insert_text for item in result.items] if result is not None else []
        assert texts == ([expected] if expected else []), (uri, texts)
    assert (await asyncio.wait_for(stats(completer), 5))["openDocuments"] == 2
