"""The workspace index's lifecycle in the server: build, keep current, report progress.

After `initialized` the workspace folders are indexed in the background (worker threads, one
batch at a time) with work-done progress, and the client is asked to watch the files. Open
documents feed the index too: an edit is noted as a recent region at once and re-indexed after
a short pause in typing, a save re-indexes at once, a close re-reads the file from disk, and
files changed outside the editor are re-read or forgotten. Each new index is handed to the
completion engine, which builds its contexts over it (the index itself is
`analysis/index/workspace_index.py`).
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Coroutine, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lsprotocol import types

from analysis.documents.languages import supported_extensions
from analysis.documents.store import uri_to_path
from analysis.index.workspace_index import SymbolIndex

if TYPE_CHECKING:  # the server owns this service
    from lsp_server.server import StagecoderServer

REINDEX_DELAY_S = 0.4  # after the last keystroke
BATCH = 64  # files per worker-thread call while building


class IndexService:
    """The server's workspace index, its background build and the events that keep it current."""

    def __init__(self, server: StagecoderServer) -> None:
        self._ls = server
        self.index = self._new_index()
        self.ready = asyncio.Event()  # set once the first build ended (or had nothing to do)
        self._pending: dict[str, asyncio.TimerHandle] = {}  # uri -> scheduled re-index
        self._tasks: set[asyncio.Future[Any]] = set()  # builds and re-reads under way

    def _new_index(self) -> SymbolIndex:
        settings = self._ls.settings
        index = SymbolIndex(settings.context.exclude, max_file_bytes=settings.max_file_bytes)
        self._ls.engine.use_index(index)
        return index

    def state(self) -> dict[str, Any]:
        """Whether the index is ready and how much it holds (`stagecoder.indexState`)."""
        index = self.index
        return {"ready": self.ready.is_set(), "roots": list(index.roots), "files": len(index),
                "definitions": index.symbol_count, "recentEdits": len(index.recent_edits())}

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        """Start the build (it runs on in the background) and ask for file watchers."""
        self._spawn(self._build())
        await self._watch_files()

    async def _build(self) -> None:
        ls = self._ls
        roots = self.workspace_roots()
        index = self.index = self._new_index()  # the settings in force now (excludes, size)
        if not roots:
            self.ready.set()
            return
        token = await self._begin_progress()
        message = ""
        try:
            paths = await asyncio.to_thread(index.prepare, roots)
            for start in range(0, len(paths), BATCH):
                await asyncio.to_thread(index.index_paths, paths[start:start + BATCH])
                self._report(token, min(start + BATCH, len(paths)), len(paths))
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
            self._end(token, message)
            self.ready.set()

    def workspace_roots(self) -> list[Path]:
        """Folders of the workspace (or its root), as paths."""
        roots: list[Path] = []
        workspace = self._ls.workspace
        with contextlib.suppress(RuntimeError):
            for folder in workspace.folders.values():
                path = uri_to_path(folder.uri)
                if path is not None and path.is_dir():
                    roots.append(path)
            if not roots and workspace.root_path:
                root = Path(workspace.root_path)
                if root.is_dir():
                    roots.append(root)
        return roots

    # ------------------------------------------------------------------ document events

    def document_changed(self, uri: str, lines: Iterable[int]) -> None:
        """After didChange (`lines`: where the edits start): note the edited regions now,
        re-index the document after a pause in typing."""
        doc = self._ls.documents.get(uri)
        if doc is None:
            return
        for line in lines:
            self.index.note_edit(doc, doc.line_span(min(line, doc.line_count - 1))[0])
        self._schedule(uri, REINDEX_DELAY_S)

    def document_saved(self, uri: str) -> None:
        """After didSave: re-index the document now."""
        self._schedule(uri, 0.0)

    def document_closed(self, uri: str) -> None:
        """After didClose: the file on disk is the truth again."""
        pending = self._pending.pop(uri, None)
        if pending is not None:
            pending.cancel()
        path = uri_to_path(uri)
        if path is not None:
            self._spawn(asyncio.to_thread(self.index.update_path, path))

    async def files_changed(self, changes: Iterable[types.FileEvent]) -> None:
        """Files changed on disk outside the editor: re-read or forget them."""
        for change in changes:
            path = uri_to_path(change.uri)
            if path is None or self._ls.documents.get(change.uri) is not None:
                continue  # open documents are indexed from the editor's text, not the disk
            if change.type == types.FileChangeType.Deleted:
                await asyncio.to_thread(self.index.remove, path)
            else:
                await asyncio.to_thread(self.index.update_path, path)

    def _schedule(self, uri: str, delay: float) -> None:
        """Re-index an open document after `delay` seconds, replacing any earlier schedule."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # no loop (unit use): index now
            doc = self._ls.documents.get(uri)
            if doc is not None and not doc.too_large:
                self.index.update_document(doc.snapshot())
            return
        if (old := self._pending.pop(uri, None)) is not None:
            old.cancel()
        self._pending[uri] = loop.call_later(delay, self._reindex, uri)

    def _reindex(self, uri: str) -> None:
        self._pending.pop(uri, None)
        doc = self._ls.documents.get(uri)
        if doc is None or doc.too_large:
            return
        snapshot = doc.snapshot()  # taken on the loop: no edit can interleave
        self._spawn(asyncio.to_thread(self.index.update_document, snapshot))

    def _spawn(self, work: Coroutine[Any, Any, Any]) -> None:
        task = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # ------------------------------------------------------------------ the client's side

    async def _begin_progress(self) -> str | None:
        ls = self._ls
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

    def _report(self, token: str | None, done: int, total: int) -> None:
        if token is not None:
            self._ls.work_done_progress.report(token, types.WorkDoneProgressReport(
                message=f"{done}/{total} files", percentage=int(done * 100 / max(total, 1))))

    def _end(self, token: str | None, message: str) -> None:
        if token is not None:
            self._ls.work_done_progress.end(token, types.WorkDoneProgressEnd(message=message))

    async def _watch_files(self) -> None:
        """Ask the client to report file changes on disk, when it supports dynamic registration."""
        ls = self._ls
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
