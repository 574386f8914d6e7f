"""The server indexes its workspace with progress, and the index follows didChange (pytest-lsp)."""

from __future__ import annotations

import asyncio
import shutil
import time

import pytest
import pytest_lsp
from lsprotocol import types
from pytest_lsp import ClientServerConfig, LanguageClient

from analysis.documents.store import path_to_uri
from tests.analysis.context.context_cases import FIXTURES
from tests.lsp_server.conftest import SERVER_COMMAND, initialize_params


@pytest_lsp.fixture(config=ClientServerConfig(server_command=SERVER_COMMAND))
async def client(lsp_client: LanguageClient, tmp_path_factory):
    project = tmp_path_factory.mktemp("ws") / "project"
    shutil.copytree(FIXTURES / "python", project)
    lsp_client.project = project
    lsp_client.registrations = []

    @lsp_client.feature(types.CLIENT_REGISTER_CAPABILITY)
    def register_capability(params: types.RegistrationParams) -> None:
        lsp_client.registrations.extend(params.registrations)  # as VS Code would

    await lsp_client.initialize_session(
        initialize_params("visual-studio-code", root_uri=path_to_uri(project)))
    yield
    await lsp_client.shutdown_session()


async def command(client: LanguageClient, name: str, *args):
    return await client.workspace_execute_command_async(
        types.ExecuteCommandParams(command=name, arguments=list(args)))


async def eventually(probe, timeout: float = 15.0):
    """Poll an async probe until it returns something truthy."""
    deadline = time.monotonic() + timeout
    while True:
        result = await probe()
        if result or time.monotonic() > deadline:
            return result
        await asyncio.sleep(0.1)


def open_doc(client: LanguageClient, path, version: int = 1) -> str:
    uri = path_to_uri(path)
    client.text_document_did_open(types.DidOpenTextDocumentParams(text_document=types.
                                  TextDocumentItem(uri=uri, language_id="python",
                                                   version=version, text=path.read_text())))
    return uri


@pytest.mark.timeout(60)
async def test_index_is_built_with_progress_and_follows_edits(client: LanguageClient):
    async def ready():
        state = await command(client, "stagecoder.indexState")
        return state if state["ready"] else None

    state = await eventually(ready)
    assert state and state["files"] == 3 and state["definitions"] >= 14
    reports = [r for token, r in client.progress_reports.items() if "index" in str(token)]
    assert reports, client.progress_reports
    kinds = [type(v).__name__ for v in reports[0]]
    assert kinds[0] == "WorkDoneProgressBegin" and kinds[-1] == "WorkDoneProgressEnd"
    assert reports[0][0].title == "stagecoder: indexing workspace"
    assert "3 files" in reports[0][-1].message
    watched = [r for r in client.registrations
               if r.method == types.WORKSPACE_DID_CHANGE_WATCHED_FILES]
    assert watched  # the options arrive as plain JSON on the client side
    glob = watched[0].register_options["watchers"][0]["globPattern"]
    assert glob.startswith("**/*.{") and "py," in glob and "rs," in glob

    project = client.project
    pricing = open_doc(client, project / "shop" / "pricing.py")
    cart_path = project / "shop" / "cart.py"
    cart = open_doc(client, cart_path)
    lines = cart_path.read_text().split("\n")
    row = next(i for i, line in enumerate(lines) if "return apply_discount(" in line)

    # Type a call to a function that does not exist yet, then define it in the other file.
    call = "        extra = bulk_discount("
    client.text_document_did_change(types.DidChangeTextDocumentParams(
        text_document=types.VersionedTextDocumentIdentifier(uri=cart, version=2),
        content_changes=[types.TextDocumentContentChangePartial(
            range=types.Range(start=types.Position(line=row, character=0),
                              end=types.Position(line=row, character=0)),
            text=call + ")\n")]))
    end = len((project / "shop" / "pricing.py").read_text().split("\n")) - 1
    client.text_document_did_change(types.DidChangeTextDocumentParams(
        text_document=types.VersionedTextDocumentIdentifier(uri=pricing, version=2),
        content_changes=[types.TextDocumentContentChangePartial(
            range=types.Range(start=types.Position(line=end, character=0),
                              end=types.Position(line=end, character=0)),
            text="\n\ndef bulk_discount(amount):\n    \"\"\"Five per cent off.\"\"\"\n"
                 "    return apply_discount(amount, 5)\n")]))

    async def related():
        out = await command(client, "stagecoder.completionContext", cart, row, len(call))
        names = {s["name"] for s in out["context"]["related"]}
        return out if "bulk_discount" in names else None

    out = await eventually(related)
    assert out is not None, "the index never picked up the edit"
    assert out["context"]["hole"]["kind"] == "arguments"
    assert "def bulk_discount(amount):" in out["prompt"]["text"]
    # The edit in pricing.py is also a recent edit that cart.py's context can show.
    assert any(s["kind"] == "recent_edit" for s in out["context"]["related"])
