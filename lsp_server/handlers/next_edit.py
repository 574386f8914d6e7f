"""textDocument/copilotInlineEdit (alias stagecoder/nextEdit), textDocument/didShowInlineEdit,
textDocument/didPartiallyAcceptCompletion: next-edit suggestions and partial accepts.

The next-edit request has Copilot's shape, so clients written for Copilot's language server
(Neovim's copilot-lsp) work unchanged: params are `TextDocumentPositionParams` whose
`textDocument` carries the `version`; the result is `{edits: [{text, range, textDocument: {uri,
version}, command}]}` (alternatives; stagecoder sends at most one). The engine
(generation/next_edit/engine.py) answers; supersede and `$/cancelRequest` reach vLLM as for
inline completions (the handler's task is cancelled, the stream closes). A request for a version
the server no longer holds gets no edit. `textDocument/didPartiallyAcceptCompletion` (`{item,
acceptedLength}`, the length in UTF-16 units of the item's text) moves the typing-through cache
of inline completions past the accepted part.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from lsprotocol import types
from pygls.exceptions import JsonRpcInvalidParams

from analysis.documents.gate import enabled_for
from lsp_server.convert import bytes_to_lsp_range
from lsp_server.handlers.inline_completion import report_model_error

if TYPE_CHECKING:
    from lsp_server.server import StagecoderServer

log = logging.getLogger(__name__)

INLINE_EDIT = "textDocument/copilotInlineEdit"
NEXT_EDIT = "stagecoder/nextEdit"
DID_SHOW = "textDocument/didShowInlineEdit"
DID_PARTIALLY_ACCEPT = "textDocument/didPartiallyAcceptCompletion"
ACCEPTED = "stagecoder.didAcceptNextEdit"


def _get(obj: Any, key: str) -> Any:
    """A field of a params object (pygls hands unknown methods' params over as objects)."""
    if isinstance(obj, dict):
        return obj.get(key)
    return getattr(obj, key, None)


def _position_params(params: Any) -> tuple[str, int | None, int, int]:
    """(uri, version, line, character) of TextDocumentPositionParams; -32602 when malformed."""
    doc = _get(params, "textDocument")
    pos = _get(params, "position")
    uri = _get(doc, "uri") if doc is not None else None
    version = _get(doc, "version") if doc is not None else None
    line = _get(pos, "line") if pos is not None else None
    char = _get(pos, "character") if pos is not None else None
    if not isinstance(uri, str):
        raise JsonRpcInvalidParams("textDocument.uri must be a string")
    if version is not None and (type(version) is not int):
        raise JsonRpcInvalidParams("textDocument.version must be an integer")
    if type(line) is not int or type(char) is not int or line < 0 or char < 0:
        raise JsonRpcInvalidParams("position must hold non-negative integers line, character")
    return uri, version, line, char


async def inline_edits(ls: StagecoderServer, params: Any) -> dict[str, Any]:
    """The next edit at the position, as Copilot's result shape (`{"edits": []}`: none)."""
    uri, version, line, character = _position_params(params)
    none: dict[str, Any] = {"edits": []}
    doc = ls.documents.get(uri)
    if doc is None or doc.too_large or not enabled_for(doc, ls.settings):
        return none
    if version is not None and version != doc.version:
        return none  # the client asks about a text the server no longer holds
    offset, clamped = doc.offset_at(line, character, ls.encoding)
    if clamped:
        ls.log(f"stagecoder: next-edit position {line}:{character} is outside {uri}; "
               "no edit.", types.MessageType.Warning)
        return none
    ls.status.begin()
    try:
        outcome = await ls.next_edits.suggest_for(doc, offset)
    except Exception as exc:  # a bug must cost one suggestion, not the session
        log.exception("next edit failed")
        ls.tell_once("next-edit-failed", f"stagecoder: a next-edit suggestion failed ({exc!r}); "
                     "details in the server log.", types.MessageType.Error)
        return none
    finally:
        ls.status.end()
    if outcome.error is not None:
        report_model_error(ls, outcome.error)
        return none
    if not (outcome.from_cache or outcome.superseded):
        ls.forget_told("model-unreachable")
    snap = outcome.snapshot
    if outcome.edit is None or snap is None:
        return none
    rng = bytes_to_lsp_range(snap, outcome.edit.start, outcome.edit.end, ls.encoding)
    return {"edits": [{
        "text": outcome.edit.text,
        "range": {"start": {"line": rng.start.line, "character": rng.start.character},
                  "end": {"line": rng.end.line, "character": rng.end.character}},
        "textDocument": {"uri": uri, "version": snap.version},
        "command": {"title": "Accept next edit", "command": ACCEPTED,
                    "arguments": [uri, snap.version]},
    }]}


def _utf16_prefix_bytes(text: str, units: int) -> int:
    """UTF-8 bytes of the first `units` UTF-16 code units of `text` (a split pair is left out)."""
    count = 0
    for i, ch in enumerate(text):
        width = 2 if ord(ch) > 0xFFFF else 1
        if count + width > units:
            return len(text[:i].encode("utf-8", "surrogatepass"))
        count += width
    return len(text.encode("utf-8", "surrogatepass"))


def register(server: StagecoderServer) -> None:
    """Register the next-edit methods (advertised under `experimental`), the accept command
    and partial accepts of inline completions."""
    server.experimental_capabilities["copilotInlineEdit"] = True
    server.experimental_capabilities["stagecoderNextEdit"] = {"method": NEXT_EDIT}

    @server.feature(INLINE_EDIT)
    async def copilot_inline_edit(ls: StagecoderServer, params: Any) -> dict[str, Any]:
        return await inline_edits(ls, params)

    @server.feature(NEXT_EDIT)
    async def next_edit(ls: StagecoderServer, params: Any) -> dict[str, Any]:
        return await inline_edits(ls, params)

    @server.feature(DID_SHOW)
    def did_show(ls: StagecoderServer, params: Any) -> None:
        ls.next_edits.shown_to_user += 1

    @server.command(ACCEPTED)
    def accepted(*args: Any) -> None:
        server.next_edits.accepted += 1

    @server.feature(DID_PARTIALLY_ACCEPT)
    def did_partially_accept(ls: StagecoderServer, params: Any) -> None:
        item = _get(params, "item")
        length = _get(params, "acceptedLength")
        text = _get(item, "insertText") if item is not None else None
        if isinstance(text, dict):  # a StringValue snippet
            text = text.get("value")
        if not isinstance(text, str) or type(length) is not int or length < 0:
            ls.log("stagecoder: didPartiallyAcceptCompletion without item.insertText or "
                   "acceptedLength; ignored.", types.MessageType.Log)
            return
        accepted_bytes = _utf16_prefix_bytes(text, length)
        for uri in ls.engine.cache.keys_showing(text):
            doc = ls.documents.get(uri)
            if doc is not None and ls.engine.cache.accept_prefix(uri, doc.source, text,
                                                                 accepted_bytes):
                return
