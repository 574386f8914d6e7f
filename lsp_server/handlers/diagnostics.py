"""textDocument/diagnostic (pull) and textDocument/publishDiagnostics (push): review findings.

Clients that advertise pull diagnostics ask; the others get a publish after open and after each
change (debounced, so typing does not re-run the rules on every keystroke). Both paths run the
same `analysis.review.checks.analyze_report` as `stagecoder review`, and put each finding's fix in
`Diagnostic.data` for the code action handler.

Nothing here blocks the event loop: a file that is not open is read in a worker thread (through
the bounded reader: a FIFO or /dev/zero is reported, never read), and the rules run in a worker
thread (of two) on a snapshot of the document, within `review.timeBudget` seconds. A file cut
short by the budget (or by its nesting) still gets the findings made so far, and the log says so
once per document version. A cancelled request, or a publish overtaken by a newer one, stops
its rules. What the pushes need to remember is the server's `Publishing` (`ls.diagnostics`).
"""

from __future__ import annotations

import asyncio
import functools
import zlib
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import msgspec
from lsprotocol import types

from analysis.budget import Budget
from analysis.documents.document import Document
from analysis.documents.gate import enabled_for
from analysis.documents.store import uri_to_path
from analysis.review.checks import analyze_report
from lsp_server.convert import finding_to_diagnostic

if TYPE_CHECKING:
    from lsp_server.server import StagecoderServer

PUBLISH_DELAY_S = 0.25
TOLD_ENTRIES = 1_000  # documents whose "cut short" message is remembered (oldest forgotten)
# Rules run here, not in the loop's default executor (which DNS lookups of the model client
# share); two at a time, so the event loop competes for the interpreter with at most two.
_ANALYSIS = ThreadPoolExecutor(max_workers=2, thread_name_prefix="stagecoder-analysis")


@dataclass(slots=True)
class Publishing:
    """The server's diagnostics bookkeeping: scheduled and running pushes, messages told."""

    pending: dict[str, asyncio.TimerHandle] = field(default_factory=dict)  # uri -> debounce
    running: dict[str, asyncio.Task] = field(default_factory=dict)  # uri -> publish under way
    tasks: set[asyncio.Task] = field(default_factory=set)  # strong references to publishes
    told: OrderedDict[str, tuple[object, str]] = field(  # uri -> (version, reason) told
        default_factory=OrderedDict)


async def diagnostics_for(ls: StagecoderServer, doc: Document,
                          version_key: object | None = None) -> list[types.Diagnostic]:
    """The diagnostics of one document under the current settings (computed off the loop).

    `version_key` names the content for the "cut short" message (default: the version).
    """
    settings = ls.settings
    if not enabled_for(doc, settings):
        return []
    snap = doc.snapshot()  # the editor may edit the document while the worker reads it
    path = _relative_path(ls, doc.uri)
    budget = Budget(settings.review.time_budget)
    try:
        report = await asyncio.get_running_loop().run_in_executor(
            _ANALYSIS, functools.partial(analyze_report, snap, settings, path=path,
                                         budget=budget))
    except asyncio.CancelledError:
        budget.stop()  # the worker stops at its next check instead of running to the budget
        raise
    if report.truncated:
        _tell_truncated(ls, snap.uri, snap.version if version_key is None else version_key,
                        report.truncated)
    encoding = ls.encoding
    return [finding_to_diagnostic(snap, f, encoding) for f in report.findings]


def _tell_truncated(ls: StagecoderServer, uri: str, version: object, reason: str) -> None:
    """Log why a document's diagnostics are incomplete, once per version and reason."""
    told = ls.diagnostics.told
    if told.get(uri) == (version, reason):
        return
    told[uri] = (version, reason)
    told.move_to_end(uri)
    while len(told) > TOLD_ENTRIES:
        told.popitem(last=False)
    ls.log(f"stagecoder: diagnostics for {uri} are incomplete: {reason}.",
           types.MessageType.Warning)


def _relative_path(ls: StagecoderServer, uri: str) -> str | None:
    """The document's path relative to the workspace root (for perPathIgnores)."""
    path = uri_to_path(uri)
    try:
        root = ls.workspace.root_path
    except RuntimeError:
        root = None
    if path is None or not root:
        return None
    try:
        return path.relative_to(Path(root)).as_posix()
    except ValueError:
        return path.as_posix()


def _settings_key(ls: StagecoderServer) -> int:
    """Changes whenever a setting that affects diagnostics changes (part of the result id)."""
    s = ls.settings
    return zlib.crc32(msgspec.json.encode([s.review, s.enable, s.disabled_languages]))


def pulls(ls: StagecoderServer) -> bool:
    """True when the client asks for diagnostics itself (textDocument/diagnostic)."""
    caps = ls.client_capabilities.text_document
    return bool(caps and caps.diagnostic)


def publish_now(ls: StagecoderServer, uri: str) -> None:
    """Start publishing the current diagnostics of a document (empty once it is closed); a
    publish still under way for it is stopped: its findings are for an older version."""
    state = ls.diagnostics
    state.pending.pop(uri, None)
    previous = state.running.pop(uri, None)
    if previous is not None:
        previous.cancel()
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:  # no event loop (in-process use): publish before returning
        asyncio.run(_publish(ls, uri))
        return
    task = loop.create_task(_publish(ls, uri))
    state.running[uri] = task
    state.tasks.add(task)
    task.add_done_callback(lambda t: _finished(state, uri, t))


def _finished(state: Publishing, uri: str, task: asyncio.Task) -> None:
    state.tasks.discard(task)
    if state.running.get(uri) is task:
        del state.running[uri]


async def _publish(ls: StagecoderServer, uri: str) -> None:
    doc = ls.documents.get(uri)
    version = doc.version if doc is not None else None
    items: list[types.Diagnostic] = []
    if doc is None:
        ls.diagnostics.told.pop(uri, None)
    else:
        items = await diagnostics_for(ls, doc)
        current = ls.documents.get(uri)
        if current is not doc or current.version != version:
            return  # edited or closed meanwhile: the publish that change scheduled will do
    ls.text_document_publish_diagnostics(types.PublishDiagnosticsParams(
        uri=uri, diagnostics=items, version=version))


def document_changed(ls: StagecoderServer, uri: str, *, immediately: bool = False) -> None:
    """Hook for didOpen/didChange/didClose: schedule a publish for clients that do not pull."""
    if pulls(ls):
        return
    pending = ls.diagnostics.pending
    handle = pending.pop(uri, None)
    if handle is not None:
        handle.cancel()
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        loop = None
    if immediately or loop is None:
        publish_now(ls, uri)
    else:
        pending[uri] = loop.call_later(PUBLISH_DELAY_S, publish_now, ls, uri)


def register(server: StagecoderServer) -> None:
    """Register the pull diagnostics handler."""

    @server.feature(
        types.TEXT_DOCUMENT_DIAGNOSTIC,
        types.DiagnosticOptions(
            identifier="stagecoder", inter_file_dependencies=False, workspace_diagnostics=False
        ),
    )
    async def diagnostic(
        ls: StagecoderServer, params: types.DocumentDiagnosticParams
    ) -> types.DocumentDiagnosticReport:
        uri = params.text_document.uri
        doc = ls.documents.get(uri)
        version_key: object
        if doc is not None:
            result_id = f"{uri}@{doc.version}:{_settings_key(ls)}"
            version_key = doc.version
        else:  # not open: read from disk (in a worker: never on the loop); the id follows it
            loaded = await asyncio.to_thread(ls.documents.load, uri)
            if loaded.problem:
                ls.log(f"stagecoder: {loaded.problem}", types.MessageType.Warning)
            doc = loaded.document
            content = zlib.crc32(doc.source) if doc else "none"
            result_id = version_key = f"{uri}@disk:{content}:{_settings_key(ls)}"
        if params.previous_result_id == result_id:
            return types.RelatedUnchangedDocumentDiagnosticReport(result_id=result_id)
        items = await diagnostics_for(ls, doc, version_key) if doc is not None else []
        return types.RelatedFullDocumentDiagnosticReport(items=items, result_id=result_id)
