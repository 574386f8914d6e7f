"""Review diagnostics over LSP: pulled (Neovim profile) or published (VS Code 1.65 profile, which
has no pull support), after open and after change, with fixes carried in `data`."""

from __future__ import annotations

from lsprotocol import types
from pytest_lsp import LanguageClient

from tests.lsp_server._lsp_helpers import diagnostics, open_doc, pulls, replace_all

URI = "file:///tmp/stagecoder-review/example.py"
TEXT = 'def f(items=[]):\n    return items\n'
CHANGED = 'def f(items=None):\n    if items is "":\n        return None\n    return items\n'


async def test_diagnostics_after_open_and_change(client: LanguageClient) -> None:
    open_doc(client, URI, TEXT)
    first = await diagnostics(client, URI, 1)
    assert [(d.code, d.range.start.line, d.range.start.character) for d in first] == [
        ("SC303", 0, 12)]
    assert first[0].source == "stagecoder"
    assert first[0].severity == types.DiagnosticSeverity.Warning

    replace_all(client, URI, 2, CHANGED)
    second = await diagnostics(client, URI, 2)
    # The default is None now (no more SC303), but the comparison is identity with a literal.
    assert [(d.code, d.range.start.line) for d in second] == [("SC305", 1)]
    fix = second[0].data["fix"]
    assert fix["safe"] is False and fix["edits"] == [[1, 13, 1, 15, "=="]]  # offered, unsafe
    assert second[0].data["version"] == 2


async def test_unreachable_code_is_tagged_unnecessary(client: LanguageClient) -> None:
    uri = "file:///tmp/stagecoder-review/dead.js"
    open_doc(client, uri, "function f() {\n  return 1;\n  g();\n}\n", "javascript")
    [diag] = await diagnostics(client, uri, 1)
    assert diag.code == "SC301" and list(diag.tags or ()) == [types.DiagnosticTag.Unnecessary]


async def test_pull_answers_unchanged_for_the_same_version(client: LanguageClient) -> None:
    if not pulls(client):
        return  # push-only profile: nothing to pull
    open_doc(client, URI, TEXT)
    ident = types.TextDocumentIdentifier(uri=URI)
    full = await client.text_document_diagnostic_async(
        types.DocumentDiagnosticParams(text_document=ident))
    again = await client.text_document_diagnostic_async(
        types.DocumentDiagnosticParams(text_document=ident, previous_result_id=full.result_id))
    assert again.kind == "unchanged"
    assert again.result_id == full.result_id


async def test_close_clears_published_diagnostics(client: LanguageClient) -> None:
    if pulls(client):
        return  # pull clients drop diagnostics of closed documents themselves
    open_doc(client, URI, TEXT)
    assert await diagnostics(client, URI, 1)
    client.text_document_did_close(types.DidCloseTextDocumentParams(
        text_document=types.TextDocumentIdentifier(uri=URI)))
    params = await client.wait_for_notification(types.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS)
    assert params.uri == URI and list(params.diagnostics) == []
