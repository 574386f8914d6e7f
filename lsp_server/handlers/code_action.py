"""textDocument/codeAction and codeAction/resolve: quick fixes and refactors."""

from __future__ import annotations

from typing import TYPE_CHECKING

from lsprotocol import types

if TYPE_CHECKING:
    from lsp_server.server import StagecoderServer

KINDS = [
    types.CodeActionKind.QuickFix,
    types.CodeActionKind.RefactorExtract,
    types.CodeActionKind.RefactorRewrite,
]


def register(server: StagecoderServer) -> None:
    """Register the code action handlers."""

    @server.feature(
        types.TEXT_DOCUMENT_CODE_ACTION,
        types.CodeActionOptions(code_action_kinds=KINDS, resolve_provider=True),
    )
    def code_action(
        ls: StagecoderServer, params: types.CodeActionParams
    ) -> list[types.CodeAction] | None:
        return []
