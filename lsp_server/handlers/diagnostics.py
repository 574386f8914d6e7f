"""textDocument/diagnostic (pull): review findings as diagnostics."""

from __future__ import annotations

from typing import TYPE_CHECKING

from lsprotocol import types

if TYPE_CHECKING:
    from lsp_server.server import StagecoderServer


def register(server: StagecoderServer) -> None:
    """Register the pull diagnostics handler."""

    @server.feature(
        types.TEXT_DOCUMENT_DIAGNOSTIC,
        types.DiagnosticOptions(
            identifier="stagecoder", inter_file_dependencies=False, workspace_diagnostics=False
        ),
    )
    def diagnostic(
        ls: StagecoderServer, params: types.DocumentDiagnosticParams
    ) -> types.DocumentDiagnosticReport:
        uri = params.text_document.uri
        loaded = ls.documents.load(uri)
        if loaded.problem:
            ls.log(f"stagecoder: {loaded.problem}", types.MessageType.Warning)
        doc = loaded.document
        result_id = f"{uri}@{doc.version if doc else 'none'}"
        if params.previous_result_id == result_id:
            return types.UnchangedDocumentDiagnosticReport(result_id=result_id)
        return types.FullDocumentDiagnosticReport(items=[], result_id=result_id)
