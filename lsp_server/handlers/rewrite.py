"""codeAction/resolve for refactor.rewrite: the model's rewrite, with progress and cancellation.

Called from `code_action.resolve`. Work-done progress (server-initiated, cancellable) runs while
the model streams; `$/cancelRequest` for the resolve request, or the user cancelling the
progress, cancels the task, which closes the HTTP stream so vLLM stops generating. The chat
client is the engine's (one pool per endpoint, closed when the endpoint changes).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from lsprotocol import types

from analysis.documents.gate import enabled_for
from analysis.documents.store import uri_to_path
from analysis.secrets import is_secret_file
from generation.chat.rewrite import rewrite_selection
from generation.model.errors import ModelError
from lsp_server.convert import bytes_to_lsp_range, edits_to_workspace_edit

if TYPE_CHECKING:
    from lsp_server.server import StagecoderServer

REPORT_EVERY = 32  # characters of model output between progress reports


def _supports_progress(ls: StagecoderServer) -> bool:
    window = ls.client_capabilities.window
    return bool(window and window.work_done_progress)


async def resolve_rewrite(ls: StagecoderServer, action: types.CodeAction,
                          data: dict[str, Any]) -> types.CodeAction:
    """Fill in the action's edit from the chat model; an action without edit when it fails."""
    uri = str(data.get("uri"))
    doc = ls.documents.get(uri)
    if doc is not None and not enabled_for(doc, ls.settings):
        return action  # turned off since the action was offered
    if doc is None or doc.version != data.get("version"):
        ls.tell_once("rewrite:stale", "stagecoder: the document changed since the rewrite was "
                     "offered; select the code and ask again.", types.MessageType.Info)
        return action
    path = uri_to_path(uri)
    if path is not None and is_secret_file(path):
        ls.tell_once("rewrite:secret", f"stagecoder: {path.name} looks like a secrets file; it "
                     "is never sent to a model.", types.MessageType.Warning)
        return action
    try:
        l1, c1, l2, c2 = (int(v) for v in data["range"])
    except (KeyError, TypeError, ValueError):
        return action
    start, _ = doc.offset_at(l1, c1, ls.encoding)
    end, _ = doc.offset_at(l2, c2, ls.encoding)
    snapshot = doc.snapshot()
    token = f"stagecoder-rewrite-{uuid.uuid4()}"
    progress = await _begin(ls, token)
    outcome = "cancelled"
    try:
        result = await rewrite_selection(ls.engine.chat_client(), snapshot, start, end,
                                         ls.settings.stages,
                                         on_text=_reporter(ls, token) if progress else None)
        outcome = "done"
    except ModelError as exc:
        outcome = "failed"
        ls.tell_once(f"model:{ls.settings.chat.url}", f"stagecoder: the rewrite failed: {exc}")
        return action
    finally:
        if progress:
            ls.work_done_progress.end(token, types.WorkDoneProgressEnd(message=outcome))
            ls.work_done_progress.tokens.pop(token, None)
    if result.text is None:
        detail = "; ".join(f"{d.stage}: {d.detail}" for d in result.decisions) or "no code"
        ls.tell_once("rewrite:rejected", f"stagecoder: the model's rewrite did not pass the "
                     f"checks ({detail}).", types.MessageType.Info)
        return action
    edit = types.TextEdit(range=bytes_to_lsp_range(snapshot, start, end, ls.encoding),
                          new_text=result.text)
    action.edit = edits_to_workspace_edit(uri, [edit])
    return action


async def _begin(ls: StagecoderServer, token: str) -> bool:
    """Start cancellable progress; the user's cancel cancels the current task."""
    if not _supports_progress(ls):
        return False
    try:
        await ls.work_done_progress.create_async(token)
    except Exception as exc:  # the client refused the token: go on without progress
        ls.log(f"stagecoder: no progress for the rewrite ({exc})", types.MessageType.Log)
        return False
    ls.work_done_progress.begin(token, types.WorkDoneProgressBegin(
        title="stagecoder: rewriting the selection", cancellable=True,
        message="waiting for the model"))
    task, loop = asyncio.current_task(), asyncio.get_running_loop()
    future = ls.work_done_progress.tokens.get(token)
    if task is not None and future is not None:
        future.add_done_callback(
            lambda f: loop.call_soon_threadsafe(task.cancel) if f.cancelled() else None)
    return True


def _reporter(ls: StagecoderServer, token: str) -> Callable[[str], None]:
    shown = [0]

    def report(text: str) -> None:
        if len(text) - shown[0] >= REPORT_EVERY:
            shown[0] = len(text)
            ls.work_done_progress.report(token, types.WorkDoneProgressReport(
                message=f"{len(text)} characters from the model"))

    return report
