"""textDocument/inlineCompletion and textDocument/completion: staged completions.

A newer request for a document supersedes the older one (its model stream is closed and it
answers empty); `$/cancelRequest` cancels the handler's task, which closes the model stream so
vLLM aborts. Clients without inline completion get the same text as a completion item.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from lsprotocol import types

from generation.model.errors import ModelError
from lsp_server import status

if TYPE_CHECKING:
    from lsp_server.server import StagecoderServer

log = logging.getLogger(__name__)


async def staged_text(ls: StagecoderServer, uri: str, position: types.Position) -> str | None:
    """The staged completion at a position, or None (nothing to offer, superseded, error)."""
    doc = ls.documents.get(uri)
    settings = ls.settings
    if doc is None or not settings.enable or doc.too_large:
        return None
    disabled = settings.disabled_languages
    if doc.language in disabled or doc.language_id in disabled:
        return None
    offset, clamped = doc.offset_at(position.line, position.character, ls.encoding)
    if clamped:
        ls.log(f"stagecoder: completion position {position.line}:{position.character} is "
               f"outside {uri}; no completion.", types.MessageType.Warning)
        return None
    engine = ls.engine
    cached = engine.from_cache(doc, offset)
    if cached is not None:
        return cached
    inner = asyncio.ensure_future(engine.complete(doc, offset, use_cache=False))
    previous = ls.inflight.pop(uri, None)
    if previous is not None and not previous.done():
        previous.cancel()  # superseded: its stream closes and vLLM aborts it
    ls.inflight[uri] = inner
    shown = status.reporter(ls)
    shown.begin()  # "working" only if this takes a while (see lsp_server/status.py)
    try:
        outcome = await inner
    except asyncio.CancelledError:
        current = asyncio.current_task()
        if current is not None and current.cancelling():
            inner.cancel()
            raise  # this request was cancelled by the client: pygls answers -32800
        return None  # superseded by a newer request for the same document
    except Exception as exc:  # a bug must cost one completion, not the session
        log.exception("inline completion failed")
        status.send(ls, "ready", "completion failed")
        ls.tell_once("completion-failed", f"stagecoder: a completion failed ({exc!r}); "
                     "details in the server log.", types.MessageType.Error)
        return None
    finally:
        shown.end()
        if ls.inflight.get(uri) is inner:
            del ls.inflight[uri]
    if outcome.error is not None:
        report_model_error(ls, outcome.error)
        return None
    ls.forget_told("model-unreachable")
    status.send(ls, "ready", "model answered")
    return outcome.text


def report_model_error(ls: StagecoderServer, error: ModelError) -> None:
    """Tell the user once that the model is unreachable (not once per keystroke)."""
    status.send(ls, "unreachable", str(error))
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
