"""textDocument/inlineCompletion: ghost-text completions (staged generation lands here)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from lsprotocol import types

if TYPE_CHECKING:
    from lsp_server.server import StagecoderServer


def register(server: StagecoderServer) -> None:
    """Register the inline completion handler (advertised only with options, see STACK-NOTES)."""

    @server.feature(types.TEXT_DOCUMENT_INLINE_COMPLETION, types.InlineCompletionOptions())
    async def inline_completion(
        ls: StagecoderServer, params: types.InlineCompletionParams
    ) -> types.InlineCompletionList | None:
        if ls.documents.get(params.text_document.uri) is None:
            return None
        return None  # the staged pipeline is wired in by the staged-generation work
