"""The staged pipeline: stream candidates from the model, then structure -> naming -> boundary.

`run_stages` is pure (no model): it takes one raw output and returns the final text with each
stage's decision, so replay tools and tests use exactly what the editor gets. `generate` streams
`n` candidates, stops each as soon as its syntactic unit is complete (closing the stream makes
vLLM abort the request), runs the stages and ranks: parses in context > names resolve > mean
token log-probability.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Protocol

from analysis.documents.document import Document
from analysis.documents.trial import TrialParser
from analysis.scope.names import BUILTINS, KnownNames
from analysis.scope.visible import scope_names
from analysis.settings import StageSettings
from generation.completion.stages import boundary, naming, structure


@dataclass(frozen=True, slots=True)
class Delta:
    """A piece of one streamed candidate."""

    index: int
    text: str
    logprob: float = 0.0  # sum of the piece's token log-probabilities
    tokens: int = 0


class CompletionModel(Protocol):
    """What the pipeline needs from a model: a stream of candidate pieces for a prompt."""

    def stream(
        self, prompt: str, *, n: int, max_tokens: int
    ) -> contextlib.AbstractAsyncContextManager[AsyncIterator[Delta]]:
        """Stream `n` candidates; leaving the context closes the request."""
        ...


@dataclass(frozen=True, slots=True)
class Decision:
    """What one stage did to a candidate."""

    stage: str
    action: str
    detail: str


@dataclass(slots=True)
class Candidate:
    """One candidate after the stages."""

    raw: str
    text: str | None
    decisions: list[Decision] = field(default_factory=list)
    parses: bool = False
    names_resolve: bool = False
    mean_logprob: float = 0.0

    def rank_key(self) -> tuple[bool, bool, float]:
        """Sort key, best first when reversed: parses, then names, then log-probability."""
        return (self.parses, self.names_resolve, self.mean_logprob)


@dataclass(slots=True)
class StageInputs:
    """Everything the stages need about the place of the completion, computed once."""

    doc: Document
    hole: structure.Hole
    known: set[str]
    convention: str | None
    trials: TrialParser
    modules: frozenset[str] = frozenset()  # imports and top-level definitions (cached)
    _scope: frozenset[str] | None = None

    def in_scope(self) -> frozenset[str]:
        """Names visible at the cursor plus builtins (computed on first use: ~1 ms)."""
        if self._scope is None:
            builtins = BUILTINS.get(self.doc.language, frozenset())
            offset = self.hole.offset
            line_start = self.doc.source.rfind(b"\n", 0, offset) + 1
            if not self.doc.source[line_start:offset].strip():
                # On a blank line after a body the tree says "outside the function" while the
                # indentation says inside: look from the last code before the cursor.
                offset = max(len(self.doc.source[:line_start].rstrip()) - 1, 0)
            self._scope = self.modules | scope_names(self.doc, offset) | builtins
        return self._scope


def prepare(doc: Document, offset: int, names: KnownNames, kind_hint: str | None = None
            ) -> StageInputs:
    """Inputs for the stages at `offset` of `doc`."""
    known = names.known(doc, offset)
    return StageInputs(
        doc=doc,
        hole=structure.find_hole(doc, offset, kind_hint),
        known=known,
        convention=names.convention(doc) if doc.spec else None,
        trials=TrialParser(doc, offset),
        modules=names.module_names(doc) if doc.spec else frozenset(),
    )


def run_stages(inputs: StageInputs, raw: str, settings: StageSettings,
               mean_logprob: float = 0.0) -> Candidate:
    """Structure, naming and boundary checks on one raw model output."""
    cand = Candidate(raw=raw, text=None, mean_logprob=mean_logprob)
    shaped = structure.run(inputs.doc, inputs.hole, raw, inputs.trials)
    cand.decisions.append(Decision("structure", shaped.decision, shaped.detail))
    if shaped.text is None or shaped.trial is None:
        return cand
    text, trial = shaped.text, shaped.trial
    cand.parses = True
    if settings.naming:
        named = naming.run(text, inputs.hole.offset, trial, inputs.known, inputs.convention,
                           inputs.in_scope if inputs.doc.tree is not None else None)
        cand.decisions.append(Decision("naming", named.decision, named.detail))
        if named.text != text:
            retrial = inputs.trials.trial(named.text)
            if retrial.ok:
                text, trial = named.text, retrial
        cand.names_resolve = not named.unresolved
    else:
        cand.names_resolve = True
    if settings.boundary_checks:
        guarded = boundary.run(inputs.doc, inputs.hole, text, trial)
        cand.decisions.append(Decision("boundary", guarded.decision, guarded.detail))
        if guarded.text != text:
            retrial = inputs.trials.trial(guarded.text)
            if retrial.ok:
                text = guarded.text
            else:
                cand.decisions.append(Decision("boundary", "reverted", "guard did not parse"))
    if inputs.doc.source.find(b"\r\n") != -1:
        text = text.replace("\r\n", "\n").replace("\n", "\r\n")
    cand.text = text
    return cand


def best(candidates: list[Candidate]) -> Candidate | None:
    """The best candidate with text, by rank; None when all were dropped."""
    alive = [c for c in candidates if c.text]
    return max(alive, key=Candidate.rank_key) if alive else None


async def stream_candidates(inputs: StageInputs, model: CompletionModel, prompt: str,
                            n: int, max_tokens: int) -> list[tuple[str, float]]:
    """Stream `n` raw candidates, each stopped once its unit is complete: (text, mean logprob)."""
    texts = [""] * n
    logprob = [0.0] * n
    tokens = [0] * n
    done = [False] * n
    async with model.stream(prompt, n=n, max_tokens=max_tokens) as deltas:
        async for delta in deltas:
            i = delta.index
            if i >= n or done[i]:
                continue
            texts[i] += delta.text
            logprob[i] += delta.logprob
            tokens[i] += delta.tokens
            if "\n" in delta.text and structure.unit_complete(inputs.hole, texts[i]):
                done[i] = True
                if all(done):
                    break  # leaving the context closes the stream: vLLM aborts the rest
    return [(texts[i], logprob[i] / tokens[i] if tokens[i] else 0.0) for i in range(n)]


def run_all(inputs: StageInputs, raws: list[tuple[str, float]], settings: StageSettings
            ) -> list[Candidate]:
    """The stages on every raw candidate."""
    return [run_stages(inputs, text, settings, lp) for text, lp in raws]
