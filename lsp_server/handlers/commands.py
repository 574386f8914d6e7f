"""workspace/executeCommand: inspection commands for users debugging what the server holds.

`stagecoder.documentState` returns a document's version, language, size, a hash of its text and
its syntax tree (like "Show Syntax Tree" in other language servers) as an s-expression of at most
SYNTAX_TREE_CHARS characters, built without recursion (tree-sitter's own `str(node)` recurses in
C and crashes the server on a 30,000-deep document); `syntaxTreeTruncated` says when it was cut.
`stagecoder.showSettings` returns the settings in force after merging every source.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Any

import msgspec
from lsprotocol import types

from analysis.documents.tree_walks import sexp

if TYPE_CHECKING:
    from lsp_server.server import StagecoderServer

DOCUMENT_STATE = "stagecoder.documentState"
SHOW_SETTINGS = "stagecoder.showSettings"
STATS = "stagecoder.stats"
SYNTAX_TREE_CHARS = 200_000


def register(server: StagecoderServer) -> None:
    """Register the inspection commands."""
    # Commands take the server from this closure: pygls resolves a command's annotations at
    # run time, and an `ls: StagecoderServer` parameter would need a runtime import of it.

    @server.command(DOCUMENT_STATE)
    def document_state(*args: Any) -> dict[str, Any] | None:
        uri = args[0] if args and isinstance(args[0], str) else None
        doc = server.documents.get(uri) if uri else None
        if doc is None:
            server.log(f"stagecoder: {DOCUMENT_STATE}: {uri!r} is not an open document.",
                       types.MessageType.Warning)
            return None
        tree, cut = sexp(doc.tree.root_node, SYNTAX_TREE_CHARS) if doc.tree else (None, False)
        return {
            "uri": doc.uri,
            "version": doc.version,
            "language": doc.language,
            "lineCount": doc.line_count,
            "bytes": len(doc.source),
            "sha256": hashlib.sha256(doc.source).hexdigest(),
            "tooLarge": doc.too_large,
            "hasErrors": doc.has_errors(),
            "syntaxTree": tree,
            "syntaxTreeTruncated": cut,
        }

    @server.command(SHOW_SETTINGS)
    def show_settings(*args: Any) -> Any:
        return msgspec.to_builtins(server.settings)

    @server.command(STATS)
    def stats(*args: Any) -> dict[str, Any]:
        return {**server.engine.stats(), "openDocuments": len(server.documents),
                "partialAccepts": server.engine.cache.partial_accepts,
                "nextEdit": server.next_edits.stats()}
