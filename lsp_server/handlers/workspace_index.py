"""workspace/didChangeWatchedFiles and the index's inspection commands.

The index's lifecycle (build after `initialized`, progress, watchers, re-indexing open
documents) is the server's `IndexService` (lsp_server/index_service.py); this module only
routes the protocol to it. Two inspection commands: `stagecoder.indexState` (is the index
ready, how big) and `stagecoder.completionContext` (uri, line, character: the context and the
exact FIM prompt there, what `stagecoder context` prints on the command line).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import msgspec
from lsprotocol import types

from generation.completion.prompts import build_fim_prompt

if TYPE_CHECKING:
    from lsp_server.server import StagecoderServer

INDEX_STATE = "stagecoder.indexState"
COMPLETION_CONTEXT = "stagecoder.completionContext"


def register(server: StagecoderServer) -> None:
    """Register the file-event handler and the index's inspection commands."""

    @server.feature(types.WORKSPACE_DID_CHANGE_WATCHED_FILES)
    async def did_change_watched_files(ls: StagecoderServer,
                                       params: types.DidChangeWatchedFilesParams) -> None:
        """Files changed on disk outside the editor: re-read or forget them."""
        await ls.indexer.files_changed(params.changes)

    # Commands take the server from this closure: pygls resolves a command's annotations at
    # run time, and an `ls: StagecoderServer` parameter would need a runtime import of it.
    @server.command(INDEX_STATE)
    def index_state(*args: Any) -> dict[str, Any]:
        """Whether the index is ready and how much it holds."""
        return server.indexer.state()

    @server.command(COMPLETION_CONTEXT)
    def completion_context(*args: Any) -> dict[str, Any] | None:
        """The completion context and FIM prompt at [uri, line, character]."""
        uri, line, character = (*args, None, None, None)[:3]
        doc = server.documents.get(uri) if isinstance(uri, str) else None
        if doc is None or not isinstance(line, int) or not isinstance(character, int):
            server.log(f"stagecoder: {COMPLETION_CONTEXT} needs [uri of an open document, line, "
                       f"character]; got {list(args)!r}.", types.MessageType.Warning)
            return None
        context = server.engine.context_builder().build_at(doc, line, character, server.encoding)
        prompt = build_fim_prompt(context)
        return {"context": msgspec.to_builtins(context), "prompt": msgspec.to_builtins(prompt)}
