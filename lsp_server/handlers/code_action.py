"""textDocument/codeAction and codeAction/resolve: quick fixes, extract function, model rewrite.

- quickfix: one action per stagecoder diagnostic that carries a fix in its `data` (the check is
  never re-run here); stale diagnostics (older document version) get no action.
- refactor.extract: "Extract function" for a Python selection of whole statements, computed
  here (deterministic and cheap). A refusal is always visible: a disabled action with the
  reason where the client supports that (`disabledSupport`), else one `window/showMessage`
  when the user asked for it (`only` admits refactor.extract, or triggerKind Invoked);
  automatic requests (a lightbulb) stay quiet.
- refactor.rewrite: "Rewrite selection with the model"; the edit is computed lazily in
  codeAction/resolve (chat model + staged checks), with work-done progress, and stops when the
  request is cancelled or the user cancels the progress.

A document the enable gate (`analysis.documents.gate.enabled_for`) turns off gets no action.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from lsprotocol import types

from analysis.documents.gate import enabled_for
from analysis.refactor.extract_function import Refusal, extract_function
from analysis.review.findings import Fix
from lsp_server.convert import (
    diagnostic_fix,
    edits_to_workspace_edit,
    fix_to_text_edits,
    lsp_range_to_bytes,
)
from lsp_server.handlers.rewrite import resolve_rewrite

if TYPE_CHECKING:
    from analysis.documents.document import Document
    from lsp_server.server import StagecoderServer

KINDS = [
    types.CodeActionKind.QuickFix,
    types.CodeActionKind.RefactorExtract,
    types.CodeActionKind.RefactorRewrite,
]
REWRITE = "stagecoder.rewrite"


def _wants(only: Any, kind: str) -> bool:
    """True when the client's `only` filter admits `kind` (a prefix admits its sub-kinds)."""
    return not only or any(kind == o or kind.startswith(f"{o}.") for o in only)


def quick_fixes(ls: StagecoderServer, doc: Document,
                params: types.CodeActionParams) -> list[types.CodeAction]:
    """Quick fixes from the fixes stored in the diagnostics' data."""
    actions = []
    for diagnostic in params.context.diagnostics:
        found = diagnostic_fix(diagnostic, doc, ls.encoding)
        if found is None:
            continue
        version, title, safe, edits = found
        if doc.version != version:
            continue  # computed for another version: its offsets no longer hold
        actions.append(types.CodeAction(
            title=f"{title} ({diagnostic.code})", kind=types.CodeActionKind.QuickFix,
            diagnostics=[diagnostic], is_preferred=safe,
            edit=edits_to_workspace_edit(params.text_document.uri, edits)))
    return actions


def extract_action(ls: StagecoderServer, doc: Document,
                   params: types.CodeActionParams) -> types.CodeAction | None:
    """The extract-function action for a non-empty selection (None when not applicable)."""
    start, end, _ = lsp_range_to_bytes(doc, params.range, ls.encoding)
    if start == end or doc.language != "python":
        return None
    result = extract_function(doc, start, end)
    title = "Extract function"
    if isinstance(result, Refusal):
        caps = ls.client_capabilities.text_document
        disabled_ok = bool(caps and caps.code_action and caps.code_action.disabled_support)
        if disabled_ok:
            return types.CodeAction(title=title, kind=types.CodeActionKind.RefactorExtract,
                                    disabled=types.CodeActionDisabled(reason=result.reason))
        if _asked_for_extract(params):  # Neovim 0.11 has no disabledSupport: say it once
            ls.window_show_message(types.ShowMessageParams(
                type=types.MessageType.Info, message=f"{title}: {result.reason}"))
        return None
    edits = fix_to_text_edits(doc, Fix.safe(title, *result.edits), ls.encoding)
    return types.CodeAction(title=f"{title} `{result.name}`",
                            kind=types.CodeActionKind.RefactorExtract,
                            edit=edits_to_workspace_edit(params.text_document.uri, edits))


def _asked_for_extract(params: types.CodeActionParams) -> bool:
    """True when the user asked for code actions (not a lightbulb's automatic request), or the
    request names refactor.extract in `only`."""
    only = params.context.only
    if only and _wants(only, types.CodeActionKind.RefactorExtract):
        return True
    return params.context.trigger_kind == types.CodeActionTriggerKind.Invoked


def rewrite_action(doc: Document, params: types.CodeActionParams) -> types.CodeAction | None:
    """The lazy rewrite action: only data now, the edit comes from codeAction/resolve."""
    rng = params.range
    if (rng.start.line, rng.start.character) == (rng.end.line, rng.end.character):
        return None
    data = {"action": REWRITE, "uri": params.text_document.uri, "version": doc.version,
            "range": [rng.start.line, rng.start.character, rng.end.line, rng.end.character]}
    return types.CodeAction(title="Rewrite selection with the model",
                            kind=types.CodeActionKind.RefactorRewrite, data=data)


def register(server: StagecoderServer) -> None:
    """Register the code action handlers."""

    @server.feature(
        types.TEXT_DOCUMENT_CODE_ACTION,
        types.CodeActionOptions(code_action_kinds=KINDS, resolve_provider=True),
    )
    def code_action(
        ls: StagecoderServer, params: types.CodeActionParams
    ) -> list[types.CodeAction] | None:
        doc = ls.documents.get(params.text_document.uri)
        if doc is None or not enabled_for(doc, ls.settings):
            return None
        only = params.context.only
        actions: list[types.CodeAction] = []
        if _wants(only, types.CodeActionKind.QuickFix):
            actions.extend(quick_fixes(ls, doc, params))
        if doc.spec is not None:
            if _wants(only, types.CodeActionKind.RefactorExtract):
                extract = extract_action(ls, doc, params)
                if extract is not None:
                    actions.append(extract)
            if _wants(only, types.CodeActionKind.RefactorRewrite):
                rewrite = rewrite_action(doc, params)
                if rewrite is not None:
                    actions.append(rewrite)
        return actions or None

    @server.feature(types.CODE_ACTION_RESOLVE)
    async def resolve(ls: StagecoderServer, action: types.CodeAction) -> types.CodeAction:
        data = action.data
        if not isinstance(data, dict) or data.get("action") != REWRITE:
            return action
        return await resolve_rewrite(ls, action, data)
