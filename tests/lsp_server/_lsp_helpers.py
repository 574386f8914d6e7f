"""Helpers for the diagnostics and code action LSP tests (both pull and push clients)."""

from __future__ import annotations

import asyncio

from lsprotocol import types
from pytest_lsp import LanguageClient


def pulls(client: LanguageClient) -> bool:
    """True when the client profile asks for diagnostics (textDocument/diagnostic)."""
    caps = client.capabilities.text_document if client.capabilities else None
    return bool(caps and caps.diagnostic)


def open_doc(client: LanguageClient, uri: str, text: str, lang: str = "python") -> None:
    client.text_document_did_open(types.DidOpenTextDocumentParams(
        text_document=types.TextDocumentItem(uri=uri, language_id=lang, version=1, text=text)))


def replace_all(client: LanguageClient, uri: str, version: int, text: str) -> None:
    client.text_document_did_change(types.DidChangeTextDocumentParams(
        text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=version),
        content_changes=[types.TextDocumentContentChangeWholeDocument(text=text)]))


async def diagnostics(client: LanguageClient, uri: str, version: int,
                      timeout: float = 10.0) -> list[types.Diagnostic]:
    """The document's diagnostics for `version`: pulled, or waited for as a publish."""
    if pulls(client):
        report = await client.text_document_diagnostic_async(types.DocumentDiagnosticParams(
            text_document=types.TextDocumentIdentifier(uri=uri)))
        assert report.kind == "full", report
        assert report.result_id is not None and f"@{version}:" in report.result_id
        return list(report.items)

    async def published() -> list[types.Diagnostic]:
        while True:
            params = await client.wait_for_notification(types.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS)
            if params.uri == uri and params.version == version:
                return list(params.diagnostics)

    return await asyncio.wait_for(published(), timeout)


def offset(text: str, position: types.Position) -> int:
    """A str index for an LSP position (the tests use ASCII text: every encoding agrees)."""
    lines = text.split("\n")
    return sum(len(line) + 1 for line in lines[: position.line]) + position.character


def apply(text: str, edits: list[types.TextEdit]) -> str:
    """Apply LSP text edits to a text (back to front)."""
    for edit in sorted(edits, key=lambda e: (e.range.start.line, e.range.start.character),
                       reverse=True):
        text = text[: offset(text, edit.range.start)] + edit.new_text + \
            text[offset(text, edit.range.end):]
    return text


def range_of(text: str, first: str, last: str) -> types.Range:
    """The LSP range from the start of `first` to the end of `last` (ASCII text)."""
    start = text.index(first)
    end = text.index(last, start) + len(last)

    def pos(index: int) -> types.Position:
        line = text.count("\n", 0, index)
        return types.Position(line=line, character=index - (text.rfind("\n", 0, index) + 1))

    return types.Range(start=pos(start), end=pos(end))
