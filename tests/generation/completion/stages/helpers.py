"""Build stage inputs from source text with a cursor mark."""

from __future__ import annotations

from analysis.documents.document import Document
from analysis.scope.names import KnownNames
from analysis.settings import StageSettings
from generation.completion.pipeline import Candidate, StageInputs, prepare, run_stages

CURSOR = "█"


def inputs(source: str, language: str, kind_hint: str | None = None) -> StageInputs:
    """Stage inputs for `source` with the cursor where CURSOR stands."""
    offset = len(source[: source.index(CURSOR)].encode())
    doc = Document(f"file:///t.{language}", source.replace(CURSOR, ""), language)
    return prepare(doc, offset, KnownNames(), kind_hint)


def staged(source: str, language: str, raw: str, **settings) -> Candidate:
    """Run all stages on one raw output."""
    return run_stages(inputs(source, language), raw, StageSettings(**settings))


def completed(source: str, cand: Candidate) -> str:
    """The file text with the candidate inserted."""
    return source.replace(CURSOR, cand.text or "")
