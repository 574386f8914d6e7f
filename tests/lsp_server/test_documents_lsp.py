"""didOpen / didChange / didClose through a real client, in both position encodings."""

from __future__ import annotations

import asyncio
import hashlib

from lsprotocol import types
from pytest_lsp import LanguageClient

from analysis.documents.document import Document

URI = "file:///tmp/stagecoder-test/example.py"
TEXT = 'def grüße(name):\n    """Say hi 👋."""\n    return f"hallo {name}"\n'


def position(text: str, index: int, encoding: str) -> types.Position:
    """The LSP position of a str index, counted in the given encoding."""
    line = text.count("\n", 0, index)
    line_start = text.rfind("\n", 0, index) + 1
    prefix = text[line_start:index]
    if encoding == "utf-8":
        col = len(prefix.encode("utf-8"))
    elif encoding == "utf-16":
        col = len(prefix.encode("utf-16-le")) // 2
    else:
        col = len(prefix)
    return types.Position(line=line, character=col)


async def state(client: LanguageClient, uri: str = URI) -> dict | None:
    return await client.workspace_execute_command_async(
        types.ExecuteCommandParams(command="stagecoder.documentState", arguments=[uri])
    )


def open_doc(client: LanguageClient, text: str = TEXT, uri: str = URI, lang: str = "python"):
    client.text_document_did_open(types.DidOpenTextDocumentParams(
        text_document=types.TextDocumentItem(uri=uri, language_id=lang, version=1, text=text)))


async def test_open_change_close(client: LanguageClient):
    encoding = client.init_result.capabilities.position_encoding
    open_doc(client)
    got = await state(client)
    assert got["sha256"] == hashlib.sha256(TEXT.encode()).hexdigest()
    assert got["language"] == "python" and got["version"] == 1 and not got["hasErrors"]

    # Replace "hallo" (after the multi-byte characters) and insert after the emoji.
    text = TEXT
    edits = []
    for old, new in (("hallo", "hello"), ("👋", "👋🌍"), ("grüße", "greet")):
        i = text.index(old)
        rng = types.Range(start=position(text, i, encoding),
                          end=position(text, i + len(old), encoding))
        edits.append(types.TextDocumentContentChangePartial(range=rng, text=new))
        text = text[:i] + new + text[i + len(old):]
        client.text_document_did_change(types.DidChangeTextDocumentParams(
            text_document=types.VersionedTextDocumentIdentifier(uri=URI, version=len(edits) + 1),
            content_changes=[edits[-1]]))
    got = await state(client)
    assert got["sha256"] == hashlib.sha256(text.encode()).hexdigest(), (encoding, text)
    assert got["version"] == 4
    assert got["syntaxTree"] == str(Document("x", text, "python").tree.root_node)

    # A full-text change replaces everything.
    client.text_document_did_change(types.DidChangeTextDocumentParams(
        text_document=types.VersionedTextDocumentIdentifier(uri=URI, version=5),
        content_changes=[types.TextDocumentContentChangeWholeDocument(text="x = 1\n")]))
    got = await state(client)
    assert got["sha256"] == hashlib.sha256(b"x = 1\n").hexdigest() and got["version"] == 5

    client.text_document_did_close(types.DidCloseTextDocumentParams(
        text_document=types.TextDocumentIdentifier(uri=URI)))
    assert await state(client) is None


async def test_unknown_language_is_plain_text(client: LanguageClient):
    open_doc(client, "some notes\nmore\n", "file:///tmp/notes.txt", "plaintext")
    got = await state(client, "file:///tmp/notes.txt")
    assert got["language"] == "plaintext" and got["syntaxTree"] is None
    assert got["lineCount"] == 3


async def wait_for_log(client: LanguageClient, needle: str, timeout: float = 5.0) -> str:
    """The first log message containing `needle`, polling until the timeout."""
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while loop.time() < end:
        for msg in client.log_messages:
            if needle in msg.message:
                return msg.message
        await asyncio.sleep(0.05)
    raise AssertionError(f"no log message containing {needle!r}: "
                         f"{[m.message for m in client.log_messages]}")
