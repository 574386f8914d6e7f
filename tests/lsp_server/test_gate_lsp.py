"""The one enable gate over LSP: `disabledLanguages` turns completions, diagnostics and code
actions off together for a language, and leaves the others alone.

The same TypeScript text is opened twice: as `.ts` (languageId "typescript") and as `.tsx`
("typescriptreact", disabled). The model is scripted in the server process.
"""

from __future__ import annotations

import os
from pathlib import Path

import attrs
import pytest_lsp
from lsprotocol import types
from pytest_lsp import ClientServerConfig, LanguageClient, client_capabilities

from tests.lsp_server._lsp_helpers import diagnostics, open_doc
from tests.lsp_server.conftest import PROFILES, SERVER_COMMAND, accept_registrations

ROOT = Path(__file__).resolve().parents[2]
TS = "file:///tmp/stagecoder-gate/shapes.ts"
TSX = "file:///tmp/stagecoder-gate/shapes.tsx"
TEXT = ('function isText(value: unknown): boolean {\n'
        '  return typeof value === "strng";\n'
        '}\n'
        '\n'
        'function area(r: number): number {\n'
        '  \n'
        '}\n')
CURSOR = types.Position(line=5, character=2)
SELECTION = types.Range(start=types.Position(line=0, character=0),
                        end=types.Position(line=2, character=1))
OPTIONS = {"disabledLanguages": ["typescriptreact"], "stages": {"candidates": 1}}


@pytest_lsp.fixture(params=PROFILES, config=ClientServerConfig(
    server_command=SERVER_COMMAND,
    server_env={**os.environ, "PYTHONPATH": str(ROOT),
                "STAGECODER_MODEL_FACTORY": "tests.fakes.models:scripted",
                "STAGECODER_FAKE_TEXT": "return r * r;\n}\n"}))
async def client(request, lsp_client: LanguageClient):
    """A client for each profile, with inline completion."""
    caps = client_capabilities(request.param)
    caps = attrs.evolve(caps, text_document=attrs.evolve(
        caps.text_document, inline_completion=types.InlineCompletionClientCapabilities()))
    accept_registrations(lsp_client)
    await lsp_client.initialize_session(types.InitializeParams(
        capabilities=caps, initialization_options=OPTIONS))
    yield
    await lsp_client.shutdown_session()


async def open_with_diagnostics(client: LanguageClient, uri: str,
                                language_id: str) -> list[types.Diagnostic]:
    """Open a document and wait for its diagnostics (pulled, or the publish that follows the
    open: a push client must be waiting for it before the next document opens)."""
    open_doc(client, uri, TEXT, language_id)
    return await diagnostics(client, uri, 1)


async def completion(client: LanguageClient, uri: str) -> types.InlineCompletionList | None:
    return await client.text_document_inline_completion_async(types.InlineCompletionParams(
        text_document=types.TextDocumentIdentifier(uri=uri), position=CURSOR,
        context=types.InlineCompletionContext(
            trigger_kind=types.InlineCompletionTriggerKind.Invoked)))


async def code_actions(client: LanguageClient, uri: str, rng: types.Range,
                       diags: list[types.Diagnostic]) -> list[types.CodeAction] | None:
    return await client.text_document_code_action_async(types.CodeActionParams(
        text_document=types.TextDocumentIdentifier(uri=uri), range=rng,
        context=types.CodeActionContext(diagnostics=diags)))


async def test_an_enabled_language_gets_completions_diagnostics_and_actions(
        client: LanguageClient) -> None:
    [diag] = await open_with_diagnostics(client, TS, "typescript")
    result = await completion(client, TS)
    assert result is not None and [i.insert_text for i in result.items] == ["return r * r;"]
    assert diag.code == "SC307" and diag.range == types.Range(
        start=types.Position(line=1, character=26), end=types.Position(line=1, character=33))
    fixes = await code_actions(client, TS, diag.range, [diag])
    assert fixes is not None
    assert [a.title for a in fixes] == ['Compare with "string" (SC307)',
                                        "Rewrite selection with the model"]
    actions = await code_actions(client, TS, SELECTION, [])
    assert actions is not None
    assert [a.title for a in actions] == ["Rewrite selection with the model"]


async def test_a_disabled_language_gets_none_of_them(client: LanguageClient) -> None:
    # The .ts document's diagnostic, fix included, fits the .tsx text exactly (the same text,
    # the same version): only the gate keeps its quick fix away.
    [diag] = await open_with_diagnostics(client, TS, "typescript")
    assert await open_with_diagnostics(client, TSX, "typescriptreact") == []
    assert await completion(client, TSX) is None
    assert await code_actions(client, TSX, diag.range, [diag]) is None
    assert await code_actions(client, TSX, SELECTION, []) is None
    # Nothing went to the model for the .tsx document.
    stats = await client.workspace_execute_command_async(
        types.ExecuteCommandParams(command="stagecoder.stats"))
    assert stats["modelCalls"] == 0
