"""Build stage inputs from source text with a cursor mark, through the editor's own call."""

from __future__ import annotations

from analysis.context.builder import ContextBuilder
from analysis.documents.document import Document
from analysis.scope.names import KnownNames
from analysis.settings import StageSettings
from generation.completion.pipeline import Candidate, StageInputs, prepare_at, run_stages

CURSOR = "█"


def inputs(source: str, language: str) -> StageInputs:
    """Stage inputs for `source` with the cursor where CURSOR stands (`prepare_at`, as the
    engine makes them)."""
    offset = len(source[: source.index(CURSOR)].encode())
    doc = Document(f"file:///t.{language}", source.replace(CURSOR, ""), language)
    _, prepared = prepare_at(doc, offset, ContextBuilder(), KnownNames())
    assert prepared is not None
    return prepared


def staged(source: str, language: str, raw: str, **settings) -> Candidate:
    """Run all stages on one raw output."""
    return run_stages(inputs(source, language), raw, StageSettings(**settings))


def completed(source: str, cand: Candidate) -> str:
    """The file text with the candidate inserted."""
    return source.replace(CURSOR, cand.text or "")
