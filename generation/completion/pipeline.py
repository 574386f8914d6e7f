"""The staged pipeline: stream candidates from the model, then structure -> naming -> boundary.

`prepare_at(doc, offset, builder, names)` is the one way to get to the stages: it snapshots the
document, builds the `CompletionContext` (which holds the cursor's `Hole`) and the stage inputs
from it. The editor's engine, `stagecoder stages`/`context`/`complete`, the replay benchmark and
the stage tests all call it, so a replay runs exactly what the editor runs. `run_stages` is pure
(no model): one raw output in, the final text and each stage's decision out. `stream_candidates`
streams `n` candidates and stops each as soon as its syntactic unit is complete (closing the
stream makes vLLM abort the request); `best` ranks: parses in context > names resolve > mean
token log-probability.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from typing import Protocol

from analysis.context.builder import CompletionContext, ContextBuilder
from analysis.context.hole import Hole
from analysis.documents.document import Document
from analysis.documents.trial import TrialParser, region_view
from analysis.index.workspace_index import SymbolIndex
from analysis.scope.members import MemberFacts
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

    doc: Document  # the snapshot the context was built from
    view: Document  # the same text; in a file broken elsewhere, the cursor's unit's own tree
    hole: Hole  # the context's
    unit: structure.Unit  # how the structure stage cuts at this hole
    known: set[str]
    convention: str | None
    trials: TrialParser
    modules: frozenset[str] = frozenset()  # imports and top-level definitions (cached)
    index: SymbolIndex | None = None  # the workspace's, for members of its classes and modules
    _scope: frozenset[str] | None = None
    _members: MemberFacts | None = None

    def in_scope(self) -> frozenset[str]:
        """Names visible at the cursor plus builtins (computed on first use: ~1 ms)."""
        if self._scope is None:
            builtins = BUILTINS.get(self.doc.language, frozenset())
            self._scope = self.modules | scope_names(self.view, self.hole.scopes) | builtins
        return self._scope

    @property
    def workspace_names(self) -> _IndexNames:
        """Names the workspace index defines somewhere (empty without an index)."""
        return _IndexNames(self.index)

    def members_of(self, obj: str, made: Iterable[str] = ()) -> frozenset[str] | None:
        """Members of an object named at the cursor (None: not known), read on first use;
        `made`: those the completion gives it (see `MemberFacts.of`)."""
        if self._members is None:
            self._members = MemberFacts(self.view, self.hole.scopes, self.index, self.doc,
                                        self.hole.offset)
        return self._members.of(obj, made)


@dataclass(frozen=True, slots=True)
class _IndexNames:
    """`name in` the workspace index: some file of the workspace defines `name`."""

    index: SymbolIndex | None

    def __contains__(self, name: object) -> bool:
        return self.index is not None and isinstance(name, str) and bool(
            self.index.lookup(name))


def stage_inputs(doc: Document, ctx: CompletionContext, names: KnownNames,
                 index: SymbolIndex | None = None) -> StageInputs:
    """The stage inputs for a context built from `doc` (see `prepare_at`)."""
    offset = ctx.hole.offset
    return StageInputs(
        doc=doc,
        view=region_view(doc, offset),
        hole=ctx.hole,
        unit=structure.unit_for(ctx.hole, doc.language),
        known=names.known(doc, offset),
        convention=names.convention(doc) if doc.spec else None,
        trials=TrialParser(doc, offset),
        modules=names.module_names(doc, ctx.import_names) if doc.spec else frozenset(),
        index=index,
    )


def prepare_at(doc: Document, offset: int, builder: ContextBuilder, names: KnownNames
               ) -> tuple[CompletionContext, StageInputs | None]:
    """The context at `offset` of a snapshot of `doc`, and the stage inputs from it; no inputs
    for a file kept from the model (nothing of it may be completed)."""
    snap = doc.snapshot()
    ctx = builder.build(snap, offset)
    if ctx.excluded:
        return ctx, None
    return ctx, stage_inputs(snap, ctx, names, builder.index)


def run_stages(inputs: StageInputs, raw: str, settings: StageSettings,
               mean_logprob: float = 0.0) -> Candidate:
    """Structure, naming and boundary checks on one raw model output."""
    cand = Candidate(raw=raw, text=None, mean_logprob=mean_logprob)
    shaped = structure.run(inputs.doc, inputs.unit, raw, inputs.trials)
    cand.decisions.append(Decision("structure", shaped.decision, shaped.detail))
    if shaped.text is None or shaped.trial is None:
        return cand
    text, trial = shaped.text, shaped.trial
    cand.parses = True
    if settings.naming:
        tree = inputs.doc.tree is not None
        named = naming.run(text, inputs.hole.offset, trial, inputs.known, inputs.convention,
                           inputs.in_scope if tree else None,
                           inputs.members_of if tree else None, inputs.doc.language,
                           inputs.workspace_names)
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
            if "\n" in delta.text and structure.unit_complete(inputs.unit, texts[i]):
                done[i] = True
                if all(done):
                    break  # leaving the context closes the stream: vLLM aborts the rest
    return [(texts[i], logprob[i] / tokens[i] if tokens[i] else 0.0) for i in range(n)]


def run_all(inputs: StageInputs, raws: list[tuple[str, float]], settings: StageSettings
            ) -> list[Candidate]:
    """The stages on every raw candidate."""
    return [run_stages(inputs, text, settings, lp) for text, lp in raws]
