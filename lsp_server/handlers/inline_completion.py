"""textDocument/inlineCompletion and textDocument/completion: staged completions.

The engine answers (`CompletionEngine.complete_for`): from the typing-through cache, or from the
model, a newer request for a document superseding the older one (which answers empty).
`$/cancelRequest` cancels the handler's task, which closes the model stream so vLLM aborts, and
pygls answers -32800. Clients without inline completion get the same text as a completion item.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from lsprotocol import types

from analysis.documents.gate import enabled_for
from generation.model.errors import ModelError

if TYPE_CHECKING:
    from lsp_server.server import StagecoderServer

log = logging.getLogger(__name__)


async def staged_text(ls: StagecoderServer, uri: str, position: types.Position) -> str | None:
    """The staged completion at a position, or None (nothing to offer, superseded, error)."""
    doc = ls.documents.get(uri)
    if doc is None or doc.too_large or not enabled_for(doc, ls.settings):
        return None
    offset, clamped = doc.offset_at(position.line, position.character, ls.encoding)
    if clamped:
        ls.log(f"stagecoder: completion position {position.line}:{position.character} is "
               f"outside {uri}; no completion.", types.MessageType.Warning)
        return None
    ls.status.begin()  # "working" only if this takes a while (see lsp_server/status.py)
    try:
        outcome = await ls.engine.complete_for(doc, offset)
    except Exception as exc:  # a bug must cost one completion, not the session
        log.exception("inline completion failed")
        ls.status.show("ready", "completion failed")
        ls.tell_once("completion-failed", f"stagecoder: a completion failed ({exc!r}); "
                     "details in the server log.", types.MessageType.Error)
        return None
    finally:
        ls.status.end()
    if outcome.error is not None:
        report_model_error(ls, outcome.error)
        return None
    if not (outcome.from_cache or outcome.superseded):  # the model did answer
        ls.forget_told("model-unreachable")
        ls.status.show("ready", "model answered")
    return outcome.text


def report_model_error(ls: StagecoderServer, error: ModelError) -> None:
    """Tell the user once that the model is unreachable (not once per keystroke)."""
    ls.status.show("unreachable", str(error))
    ls.tell_once(
        "model-unreachable",
        f"stagecoder: no completions: {error}. Start a server with `stagecoder model serve` "
        "or set stagecoder.completion.url.",
    )


def register(server: StagecoderServer) -> None:
    """Register inline completion (advertised only with options) and completion items."""

    @server.feature(types.TEXT_DOCUMENT_INLINE_COMPLETION, types.InlineCompletionOptions())
    async def inline_completion(
        ls: StagecoderServer, params: types.InlineCompletionParams
    ) -> types.InlineCompletionList | None:
        text = await staged_text(ls, params.text_document.uri, params.position)
        if not text:
            return None
        here = types.Range(start=params.position, end=params.position)
        return types.InlineCompletionList(
            items=[types.InlineCompletionItem(insert_text=text, range=here)]
        )

    @server.feature(types.TEXT_DOCUMENT_COMPLETION, types.CompletionOptions())
    async def completion(
        ls: StagecoderServer, params: types.CompletionParams
    ) -> types.CompletionList | None:
        caps = ls.client_capabilities.text_document
        if caps is not None and caps.inline_completion is not None:
            return None  # the client shows ghost text from inlineCompletion instead
        text = await staged_text(ls, params.text_document.uri, params.position)
        if not text:
            return None
        here = types.Range(start=params.position, end=params.position)
        first = text.strip().splitlines()[0] if text.strip() else text
        item = types.CompletionItem(
            label=first[:60],
            kind=types.CompletionItemKind.Snippet,
            detail="stagecoder",
            documentation=types.MarkupContent(kind=types.MarkupKind.Markdown,
                                              value=f"```\n{text}\n```"),
            text_edit=types.TextEdit(range=here, new_text=text),
            insert_text_format=types.InsertTextFormat.PlainText,
            sort_text="0",
        )
        return types.CompletionList(is_incomplete=True, items=[item])
