"""textDocument/diagnostic (pull) and textDocument/publishDiagnostics (push): review findings.

Clients that advertise pull diagnostics ask; the others get a publish after open and after each
change (debounced, so typing does not re-run the rules on every keystroke). Both paths run the
same `analysis.checks.analyze` as `stagecoder review`, and put each finding's fix in
`Diagnostic.data` for the code action handler.
"""

from __future__ import annotations

import asyncio
import zlib
from pathlib import Path
from typing import TYPE_CHECKING

import msgspec
from lsprotocol import types

from analysis.checks import analyze
from analysis.document import Document
from analysis.workspace import uri_to_path
from lsp_server.convert import finding_to_diagnostic

if TYPE_CHECKING:
    from lsp_server.server import StagecoderServer

PUBLISH_DELAY_S = 0.25
_pending: dict[str, asyncio.TimerHandle] = {}


def diagnostics_for(ls: StagecoderServer, doc: Document) -> list[types.Diagnostic]:
    """The diagnostics of one document under the current settings."""
    settings = ls.settings
    if not settings.enable or doc.language in settings.disabled_languages:
        return []
    findings = analyze(doc, settings, path=_relative_path(ls, doc.uri))
    return [finding_to_diagnostic(doc, f, ls.encoding) for f in findings]


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
    """Publish the current diagnostics of an open document (empty once it is closed)."""
    _pending.pop(uri, None)
    doc = ls.documents.get(uri)
    items = diagnostics_for(ls, doc) if doc is not None else []
    ls.text_document_publish_diagnostics(types.PublishDiagnosticsParams(
        uri=uri, diagnostics=items, version=doc.version if doc is not None else None))


def document_changed(ls: StagecoderServer, uri: str, *, immediately: bool = False) -> None:
    """Hook for didOpen/didChange/didClose: schedule a publish for clients that do not pull."""
    if pulls(ls):
        return
    handle = _pending.pop(uri, None)
    if handle is not None:
        handle.cancel()
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        publish_now(ls, uri)
        return
    if immediately:
        publish_now(ls, uri)
    else:
        _pending[uri] = loop.call_later(PUBLISH_DELAY_S, publish_now, ls, uri)


def register(server: StagecoderServer) -> None:
    """Register the pull diagnostics handler."""

    @server.feature(
        types.TEXT_DOCUMENT_DIAGNOSTIC,
        types.DiagnosticOptions(
            identifier="stagecoder", inter_file_dependencies=False, workspace_diagnostics=False
        ),
    )
    def diagnostic(
        ls: StagecoderServer, params: types.DocumentDiagnosticParams
    ) -> types.DocumentDiagnosticReport:
        uri = params.text_document.uri
        doc = ls.documents.get(uri)
        if doc is not None:
            result_id = f"{uri}@{doc.version}:{_settings_key(ls)}"
        else:  # not open: read from disk; the id follows the content, not a version
            loaded = ls.documents.load(uri)
            if loaded.problem:
                ls.log(f"stagecoder: {loaded.problem}", types.MessageType.Warning)
            doc = loaded.document
            content = zlib.crc32(doc.source) if doc else "none"
            result_id = f"{uri}@disk:{content}:{_settings_key(ls)}"
        if params.previous_result_id == result_id:
            return types.RelatedUnchangedDocumentDiagnosticReport(result_id=result_id)
        items = diagnostics_for(ls, doc) if doc is not None else []
        return types.RelatedFullDocumentDiagnosticReport(items=items, result_id=result_id)
