"""enabled_for: which names of a document's language `disabledLanguages` matches."""

from __future__ import annotations

import pytest

from analysis.documents.document import Document
from analysis.documents.gate import enabled_for
from analysis.settings import Settings

OPEN_TSX = Document("file:///w/app.tsx", "const a = 1;\n", "typescriptreact")
DISK_TSX = Document("file:///w/app.tsx", "const a = 1;\n")  # read from disk: no languageId
OPEN_TS = Document("file:///w/app.ts", "const a = 1;\n", "typescript")
MARKDOWN = Document("file:///w/notes.md", "# notes\n", "markdown")  # no grammar


@pytest.mark.parametrize(("doc", "disabled", "served"), [
    (OPEN_TSX, ["typescriptreact"], False),
    (OPEN_TSX, ["tsx"], False),  # the canonical name
    (OPEN_TSX, ["TypeScriptReact"], False),  # without regard to case
    (OPEN_TSX, ["typescript"], True),  # another language
    (DISK_TSX, ["typescriptreact"], False),  # goes by its grammar's languageId
    (OPEN_TS, ["typescriptreact"], True),
    (OPEN_TS, [], True),
    (MARKDOWN, ["markdown"], False),  # the languageId, though there is no grammar
    (MARKDOWN, ["plaintext"], False),  # ... and the canonical name of no grammar
])
def test_disabled_languages(doc: Document, disabled: list[str], served: bool) -> None:
    assert enabled_for(doc, Settings(disabled_languages=disabled)) is served


def test_enable_off_turns_everything_off() -> None:
    assert not any(enabled_for(d, Settings(enable=False)) for d in (OPEN_TSX, OPEN_TS, MARKDOWN))
