"""textDocument/didOpen, didChange, didClose, didSave: keep the DocumentStore in step."""

from __future__ import annotations

from typing import TYPE_CHECKING

from lsprotocol import types

from lsp_server.handlers import diagnostics

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
        edited_lines: list[int] = []  # where each partial change starts, for the index
        for change in params.content_changes:
            if isinstance(change, types.TextDocumentContentChangePartial):
                rng = change.range
                edited_lines.append(rng.start.line)
                before = ls.documents.get(uri)
                old = before.source if before is not None else b""
                result = ls.documents.change(
                    uri, (rng.start.line, rng.start.character),
                    (rng.end.line, rng.end.character), change.text, encoding, version,
                )
                if result is not None:  # the next-edit history (generation/next_edit/)
                    ls.next_edits.record(uri, old, result.start_byte, result.old_end_byte,
                                         change.text)
                if result is not None and result.clamped:
                    ls.log(
                        f"stagecoder: didChange for {uri} has a position outside the document "
                        f"({rng.start.line}:{rng.start.character}-{rng.end.line}:"
                        f"{rng.end.character}); clamped to the document's end.",
                        types.MessageType.Warning,
                    )
            else:
                before = ls.documents.get(uri)
                old = before.source if before is not None else b""
                ls.documents.change(uri, None, None, change.text, encoding, version)
                after = ls.documents.get(uri)
                if after is not None:
                    ls.next_edits.history.record_replace_all(uri, old, after.source)
        diagnostics.document_changed(ls, uri)
        ls.indexer.document_changed(uri, edited_lines)

    @server.feature(types.TEXT_DOCUMENT_DID_CLOSE)
    def did_close(ls: StagecoderServer, params: types.DidCloseTextDocumentParams) -> None:
        if not ls.documents.close(params.text_document.uri):
            ls.log(f"stagecoder: didClose for {params.text_document.uri}, which is not open.",
                   types.MessageType.Warning)
        diagnostics.document_changed(ls, params.text_document.uri, immediately=True)
        ls.indexer.document_closed(params.text_document.uri)
        ls.engine.names.forget(params.text_document.uri)  # its known-name cache goes with it
        ls.next_edits.forget(params.text_document.uri)  # its edit history too

    @server.feature(types.TEXT_DOCUMENT_DID_SAVE)
    def did_save(ls: StagecoderServer, params: types.DidSaveTextDocumentParams) -> None:
        """The store already has every edit; the workspace index re-reads the document."""
        ls.indexer.document_saved(params.text_document.uri)
