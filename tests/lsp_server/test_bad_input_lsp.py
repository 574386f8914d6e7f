"""Bad input never kills the server: each case gets a clear log message and serving goes on."""

from __future__ import annotations

import hashlib

import pytest
from lsprotocol import types
from pytest_lsp import LanguageClient

from tests.lsp_server.test_documents_lsp import open_doc, state, wait_for_log

URI = "file:///tmp/stagecoder-bad/example.py"


async def still_serving(client: LanguageClient) -> None:
    """The server answers a fresh request after the bad one."""
    open_doc(client, "ok = True\n", "file:///tmp/alive.py")
    got = await state(client, "file:///tmp/alive.py")
    assert got is not None and got["sha256"] == hashlib.sha256(b"ok = True\n").hexdigest()


async def test_out_of_range_positions(client: LanguageClient):
    open_doc(client, "a = 1\nb = 2\n", URI)
    client.text_document_did_change(types.DidChangeTextDocumentParams(
        text_document=types.VersionedTextDocumentIdentifier(uri=URI, version=2),
        content_changes=[types.TextDocumentContentChangePartial(
            range=types.Range(start=types.Position(line=40, character=3),
                              end=types.Position(line=41, character=0)),
            text="c = 3\n")]))
    message = await wait_for_log(client, "outside the document")
    assert URI in message and "40:3" in message
    got = await state(client, URI)
    assert got["sha256"] == hashlib.sha256(b"a = 1\nb = 2\nc = 3\n").hexdigest()
    # A character past the end of a line clamps to the line's end.
    client.text_document_did_change(types.DidChangeTextDocumentParams(
        text_document=types.VersionedTextDocumentIdentifier(uri=URI, version=3),
        content_changes=[types.TextDocumentContentChangePartial(
            range=types.Range(start=types.Position(line=0, character=99),
                              end=types.Position(line=0, character=99)),
            text="0")]))
    got = await state(client, URI)
    assert got["sha256"] == hashlib.sha256(b"a = 10\nb = 2\nc = 3\n").hexdigest()
    await still_serving(client)


async def test_edit_to_unopened_document(client: LanguageClient):
    client.text_document_did_change(types.DidChangeTextDocumentParams(
        text_document=types.VersionedTextDocumentIdentifier(uri="file:///never.py", version=2),
        content_changes=[types.TextDocumentContentChangeWholeDocument(text="x")]))
    message = await wait_for_log(client, "not open")
    assert "file:///never.py" in message
    client.text_document_did_close(types.DidCloseTextDocumentParams(
        text_document=types.TextDocumentIdentifier(uri="file:///never2.py")))
    await wait_for_log(client, "never2.py")
    await still_serving(client)


async def test_invalid_utf8_on_disk(client: LanguageClient, tmp_path):
    path = tmp_path / "broken.py"
    path.write_bytes(b"x = '\xff\xfe caf\xc3'\n")
    report = await client.text_document_diagnostic_async(types.DocumentDiagnosticParams(
        text_document=types.TextDocumentIdentifier(uri=path.as_uri())))
    assert report.kind == "full"
    message = await wait_for_log(client, "invalid UTF-8")
    assert "broken.py" in message
    await still_serving(client)


@pytest.mark.parametrize("where", ["open", "disk"])
async def test_twenty_megabyte_file(client: LanguageClient, tmp_path, where: str):
    big = "x = 1  # padding padding padding padding padding padding padding\n" * 320_000
    assert len(big) > 20_000_000
    if where == "open":
        open_doc(client, big, "file:///tmp/big.py")
        message = await wait_for_log(client, "over the")
        assert "big.py" in message and "MB" in message
        got = await state(client, "file:///tmp/big.py")
        assert got["tooLarge"] is True and got["syntaxTree"] is None
    else:
        path = tmp_path / "big.py"
        path.write_text(big)
        await client.text_document_diagnostic_async(types.DocumentDiagnosticParams(
            text_document=types.TextDocumentIdentifier(uri=path.as_uri())))
        message = await wait_for_log(client, "over the")
        assert "big.py" in message
    await still_serving(client)


async def test_binary_and_missing_files_on_disk(client: LanguageClient, tmp_path):
    binary = tmp_path / "blob.py"
    binary.write_bytes(b"\x00\x01\x02" * 100)
    for uri in (binary.as_uri(), (tmp_path / "missing.py").as_uri()):
        report = await client.text_document_diagnostic_async(types.DocumentDiagnosticParams(
            text_document=types.TextDocumentIdentifier(uri=uri)))
        assert report.kind == "full" and list(report.items) == []
    await wait_for_log(client, "binary file")
    await wait_for_log(client, "no such file")
    await still_serving(client)
