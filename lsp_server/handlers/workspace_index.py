"""The workspace symbol index: built after `initialized`, kept current from edits and file events.

`initialized`: index the workspace folders in the background (worker threads, one batch at a
time) with work-done progress; the index is `ls.index`. Open documents feed it too: an edit is
noted as a recent region at once and re-indexed after a short pause in typing, a save re-indexes
at once, a close re-reads the file from disk. `workspace/didChangeWatchedFiles` covers files
changed outside the editor (watchers are registered when the client allows it).

Two inspection commands: `stagecoder.indexState` (is the index ready, how big) and
`stagecoder.completionContext` (uri, line, character: the context and the exact FIM prompt
there, what `stagecoder context` prints on the command line).
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from pathlib import Path
from typing import Any

import msgspec
from lsprotocol import types

from analysis.context.builder import ContextBuilder
from analysis.documents.languages import supported_extensions
from analysis.documents.store import uri_to_path
from analysis.index.workspace_index import SymbolIndex
from generation.completion.prompts import build_fim_prompt

# A runtime import (not TYPE_CHECKING): pygls resolves command handlers' annotations.
from lsp_server.server import StagecoderServer

INDEX_STATE = "stagecoder.indexState"
COMPLETION_CONTEXT = "stagecoder.completionContext"
REINDEX_DELAY_S = 0.4  # after the last keystroke
BATCH = 64  # files per worker-thread call while building


def register(server: StagecoderServer) -> None:
    """Create `server.index` and register the index's lifecycle and file-event handlers."""
    server.index = SymbolIndex(server.settings.context.exclude,  # type: ignore[attr-defined]
                               max_file_bytes=server.settings.max_file_bytes)
    server.index_ready = asyncio.Event()  # type: ignore[attr-defined]

    @server.feature(types.WORKSPACE_DID_CHANGE_WATCHED_FILES)
    async def did_change_watched_files(ls: StagecoderServer,
                                       params: types.DidChangeWatchedFilesParams) -> None:
        """Files changed on disk outside the editor: re-read or forget them."""
        index: SymbolIndex = ls.index  # type: ignore[attr-defined]
        for change in params.changes:
            path = uri_to_path(change.uri)
            if path is None or ls.documents.get(change.uri) is not None:
                continue  # open documents are indexed from the editor's text, not the disk
            if change.type == types.FileChangeType.Deleted:
                await asyncio.to_thread(index.remove, path)
            else:
                await asyncio.to_thread(index.update_path, path)

    @server.command(INDEX_STATE)
    def index_state(ls: StagecoderServer, *args: Any) -> dict[str, Any]:
        """Whether the index is ready and how much it holds."""
        index: SymbolIndex = ls.index  # type: ignore[attr-defined]
        return {"ready": ls.index_ready.is_set(),  # type: ignore[attr-defined]
                "roots": list(index.roots), "files": len(index),
                "definitions": index.symbol_count, "recentEdits": len(index.recent_edits())}

    @server.command(COMPLETION_CONTEXT)
    def completion_context(ls: StagecoderServer, *args: Any) -> dict[str, Any] | None:
        """The completion context and FIM prompt at [uri, line, character]."""
        uri, line, character = (*args, None, None, None)[:3]
        doc = ls.documents.get(uri) if isinstance(uri, str) else None
        if doc is None or not isinstance(line, int) or not isinstance(character, int):
            ls.log(f"stagecoder: {COMPLETION_CONTEXT} needs [uri of an open document, line, "
                   f"character]; got {list(args)!r}.", types.MessageType.Warning)
            return None
        context = context_builder(ls).build_at(doc, line, character, ls.encoding)
        prompt = build_fim_prompt(context)
        return {"context": msgspec.to_builtins(context), "prompt": msgspec.to_builtins(prompt)}


def context_builder(ls: StagecoderServer) -> ContextBuilder:
    """A ContextBuilder over `ls.index` for the settings in force (kept while they stay)."""
    builder: ContextBuilder | None = getattr(ls, "_context_builder", None)
    index: SymbolIndex = ls.index  # type: ignore[attr-defined]
    if builder is None or builder.settings != ls.settings.context or builder.index is not index:
        builder = ContextBuilder(index, ls.settings.context)
        ls._context_builder = builder  # type: ignore[attr-defined]
    return builder


# ---------------------------------------------------------------------- document hooks


def document_changed(ls: StagecoderServer, params: types.DidChangeTextDocumentParams) -> None:
    """After didChange: note the edited region now, re-index the document after a pause."""
    uri = params.text_document.uri
    doc = ls.documents.get(uri)
    index: SymbolIndex | None = getattr(ls, "index", None)
    if doc is None or index is None:
        return
    for change in params.content_changes:
        if isinstance(change, types.TextDocumentContentChangePartial):
            line = min(change.range.start.line, doc.line_count - 1)
            index.note_edit(doc, doc.line_span(line)[0])
    _schedule(ls, uri, REINDEX_DELAY_S)


def document_saved(ls: StagecoderServer, params: types.DidSaveTextDocumentParams) -> None:
    """After didSave: re-index the document now."""
    _schedule(ls, params.text_document.uri, 0.0)


def document_closed(ls: StagecoderServer, params: types.DidCloseTextDocumentParams) -> None:
    """After didClose: the file on disk is the truth again."""
    uri = params.text_document.uri
    pending = _pending(ls).pop(uri, None)
    if pending is not None:
        pending.cancel()
    path = uri_to_path(uri)
    index: SymbolIndex | None = getattr(ls, "index", None)
    if path is not None and index is not None:
        _spawn(ls, asyncio.to_thread(index.update_path, path))


def _pending(ls: StagecoderServer) -> dict[str, asyncio.TimerHandle]:
    table = getattr(ls, "_index_pending", None)
    if table is None:
        table = ls._index_pending = {}  # type: ignore[attr-defined]
    return table


def _schedule(ls: StagecoderServer, uri: str, delay: float) -> None:
    """Re-index an open document after `delay` seconds, replacing any earlier schedule."""
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:  # no loop (unit use): index now
        _reindex_now(ls, uri)
        return
    pending = _pending(ls)
    if (old := pending.pop(uri, None)) is not None:
        old.cancel()
    pending[uri] = loop.call_later(delay, _reindex_soon, ls, uri)


def _reindex_soon(ls: StagecoderServer, uri: str) -> None:
    _pending(ls).pop(uri, None)
    doc = ls.documents.get(uri)
    if doc is None or doc.too_large:
        return
    snapshot = doc.snapshot()  # taken on the loop: no edit can interleave
    _spawn(ls, asyncio.to_thread(ls.index.update_document, snapshot))  # type: ignore[attr-defined]


def _reindex_now(ls: StagecoderServer, uri: str) -> None:
    doc = ls.documents.get(uri)
    if doc is not None and not doc.too_large:
        ls.index.update_document(doc.snapshot())  # type: ignore[attr-defined]


def _spawn(ls: StagecoderServer, work: Any) -> None:
    task = asyncio.ensure_future(work)
    tasks: set[asyncio.Future] = getattr(ls, "_index_tasks", set())
    ls._index_tasks = tasks  # type: ignore[attr-defined]
    tasks.add(task)
    task.add_done_callback(tasks.discard)


# ---------------------------------------------------------------------- building


async def on_initialized(ls: StagecoderServer, params: types.InitializedParams) -> None:
    """Start the build (it runs on; `initialized` is a notification and needs no answer)."""
    _spawn(ls, _build(ls))
    await _watch_files(ls)


async def _build(ls: StagecoderServer) -> None:
    roots = workspace_roots(ls)
    index = SymbolIndex(ls.settings.context.exclude, max_file_bytes=ls.settings.max_file_bytes)
    ls.index = index  # type: ignore[attr-defined]
    if not roots:
        ls.index_ready.set()  # type: ignore[attr-defined]
        return
    token = await _begin_progress(ls)
    message = ""
    try:
        paths = await asyncio.to_thread(index.prepare, roots)
        for start in range(0, len(paths), BATCH):
            await asyncio.to_thread(index.index_paths, paths[start:start + BATCH])
            done = min(start + BATCH, len(paths))
            _report(ls, token, done, len(paths))
        for uri in ls.documents.uris():  # edits made while the build ran win over the disk
            doc = ls.documents.get(uri)
            if doc is not None and not doc.too_large:
                index.update_document(doc.snapshot())
        message = f"{len(index)} files, {index.symbol_count} definitions"
        ls.log(f"stagecoder: workspace index ready: {message}.")
    except Exception as exc:  # a broken index must not take the server down
        message = f"failed: {exc}"
        ls.log(f"stagecoder: workspace index {message}", types.MessageType.Error)
    finally:
        _end(ls, token, message)
        ls.index_ready.set()  # type: ignore[attr-defined]


def workspace_roots(ls: StagecoderServer) -> list[Path]:
    """Folders of the workspace (or its root), as paths."""
    roots: list[Path] = []
    with contextlib.suppress(RuntimeError):
        for folder in ls.workspace.folders.values():
            path = uri_to_path(folder.uri)
            if path is not None and path.is_dir():
                roots.append(path)
        if not roots and ls.workspace.root_path:
            root = Path(ls.workspace.root_path)
            if root.is_dir():
                roots.append(root)
    return roots


async def _begin_progress(ls: StagecoderServer) -> str | None:
    caps = ls.client_capabilities.window
    if not (caps and caps.work_done_progress):
        return None
    token = f"stagecoder/index/{uuid.uuid4().hex}"
    try:
        await ls.work_done_progress.create_async(token)
    except Exception:  # the client refused: index without progress
        return None
    ls.work_done_progress.begin(token, types.WorkDoneProgressBegin(
        title="stagecoder: indexing workspace", percentage=0, cancellable=False))
    return token


def _report(ls: StagecoderServer, token: str | None, done: int, total: int) -> None:
    if token is not None:
        ls.work_done_progress.report(token, types.WorkDoneProgressReport(
            message=f"{done}/{total} files", percentage=int(done * 100 / max(total, 1))))


def _end(ls: StagecoderServer, token: str | None, message: str) -> None:
    if token is not None:
        ls.work_done_progress.end(token, types.WorkDoneProgressEnd(message=message))


async def _watch_files(ls: StagecoderServer) -> None:
    """Ask the client to report file changes on disk, when it supports dynamic registration."""
    caps = ls.client_capabilities.workspace
    watched = caps.did_change_watched_files if caps else None
    if not (watched and watched.dynamic_registration):
        return
    exts = ",".join(sorted(e.lstrip(".") for e in supported_extensions()))
    options = types.DidChangeWatchedFilesRegistrationOptions(
        watchers=[types.FileSystemWatcher(glob_pattern=f"**/*.{{{exts}}}")])
    registration = types.Registration(id=f"stagecoder/watch/{uuid.uuid4().hex}",
                                      method=types.WORKSPACE_DID_CHANGE_WATCHED_FILES,
                                      register_options=options)
    try:
        await ls.client_register_capability_async(
            types.RegistrationParams(registrations=[registration]))
    except Exception as exc:  # watchers are a bonus: saves still keep the index current
        ls.log(f"stagecoder: could not register file watchers: {exc}", types.MessageType.Info)
