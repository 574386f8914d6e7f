"""textDocument/didOpen, didChange, didClose, didSave: keep the DocumentStore in step."""

from __future__ import annotations

from typing import TYPE_CHECKING

from lsprotocol import types

from lsp_server.handlers import diagnostics, workspace_index

if TYPE_CHECKING:
    from lsp_server.server import StagecoderServer


def register(server: StagecoderServer) -> None:
    """Register the document synchronisation handlers."""

    @server.feature(types.TEXT_DOCUMENT_DID_OPEN)
    def did_open(ls: StagecoderServer, params: types.DidOpenTextDocumentParams) -> None:
        item = params.text_document
        doc = ls.documents.open(item.uri, item.text, item.language_id, item.version)
        if doc.too_large:
            ls.log(
                f"stagecoder: {item.uri} is {len(doc.source) / 1e6:.1f} MB, over the "
                f"{ls.settings.max_file_bytes / 1e6:.1f} MB limit (maxFileBytes); "
                "held as plain text, no analysis or completions for it.",
                types.MessageType.Warning,
            )
        elif doc.spec is None:
            ls.log(
                f"stagecoder: no grammar for language '{item.language_id}' ({item.uri}); "
                "using plain-text context.",
                types.MessageType.Info,
            )
        diagnostics.document_changed(ls, item.uri, immediately=True)

    @server.feature(types.TEXT_DOCUMENT_DID_CHANGE)
    def did_change(ls: StagecoderServer, params: types.DidChangeTextDocumentParams) -> None:
        uri = params.text_document.uri
        version = params.text_document.version
        if ls.documents.get(uri) is None:
            ls.log(f"stagecoder: didChange for {uri}, which is not open; ignored.",
                   types.MessageType.Warning)
            return
        encoding = ls.encoding
        for change in params.content_changes:
            if isinstance(change, types.TextDocumentContentChangePartial):
                rng = change.range
                result = ls.documents.change(
                    uri, (rng.start.line, rng.start.character),
                    (rng.end.line, rng.end.character), change.text, encoding, version,
                )
                if result is not None and result.clamped:
                    ls.log(
                        f"stagecoder: didChange for {uri} has a position outside the document "
                        f"({rng.start.line}:{rng.start.character}-{rng.end.line}:"
                        f"{rng.end.character}); clamped to the document's end.",
                        types.MessageType.Warning,
                    )
            else:
                ls.documents.change(uri, None, None, change.text, encoding, version)
        diagnostics.document_changed(ls, uri)
        workspace_index.document_changed(ls, params)

    @server.feature(types.TEXT_DOCUMENT_DID_CLOSE)
    def did_close(ls: StagecoderServer, params: types.DidCloseTextDocumentParams) -> None:
        if not ls.documents.close(params.text_document.uri):
            ls.log(f"stagecoder: didClose for {params.text_document.uri}, which is not open.",
                   types.MessageType.Warning)
        diagnostics.document_changed(ls, params.text_document.uri, immediately=True)
        workspace_index.document_closed(ls, params)

    @server.feature(types.TEXT_DOCUMENT_DID_SAVE)
    def did_save(ls: StagecoderServer, params: types.DidSaveTextDocumentParams) -> None:
        """The store already has every edit; the workspace index re-reads the document."""
        workspace_index.document_saved(ls, params)
