"""The one enable gate: does stagecoder serve a document at all (completions, diagnostics, actions)?

A document is served when `enable` is on and neither of its language's names is listed in
`disabledLanguages` (compared without case): the canonical name ("tsx") and the LSP languageId
("typescriptreact"). A file read from disk has no languageId; it goes by its grammar's first
one, so one entry turns a language off for open documents and for files on disk alike.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from analysis.documents.document import Document
    from analysis.settings import Settings


def language_names(doc: Document) -> frozenset[str]:
    """The names the document's language goes by (canonical name, languageId), lower case."""
    language_id = doc.language_id
    if not language_id and doc.spec is not None and doc.spec.language_ids:
        language_id = doc.spec.language_ids[0]
    return frozenset(n.lower() for n in (doc.language, language_id) if n)


def enabled_for(doc: Document, settings: Settings) -> bool:
    """True when the settings let stagecoder complete, review and act on this document."""
    if not settings.enable:
        return False
    disabled = {name.lower() for name in settings.disabled_languages}
    return not (disabled & language_names(doc))
