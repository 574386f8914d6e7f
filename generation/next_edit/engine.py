"""The next-edit engine: (document, cursor) -> at most one checked edit, from the model or not.

It shares the completion engine's settings, context builder and known-name cache, and owns what
is its own: the edit history (fed from didChange), the shown rewrites (typing through a shown
edit asks no model), the next-edit model client (rebuilt when its endpoint changes) and the
requests in flight. `suggest_for` is the editor's entry; like `CompletionEngine.complete_for`, a
newer request for a document supersedes the older one (its model stream closes, so vLLM aborts
it) and cancelling the caller cancels the request and raises CancelledError. Before the model
is asked, the request waits `nextEdit.debounceMs`: a request superseded meanwhile costs nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Protocol

import msgspec

from analysis.documents.document import Document
from analysis.settings import EndpointSettings, Settings
from generation.completion.engine import CompletionEngine
from generation.completion.pipeline import Decision, prepare_at
from generation.model.client import ChatMessage, ModelClient
from generation.model.errors import ModelError
from generation.model.replicas import affinity_key
from generation.next_edit.checks import ByteEdit, CheckedEdit, check_edit
from generation.next_edit.diffing import TextEdit, apply, minimal_edits, to_bytes
from generation.next_edit.formats import NextEditInput, Prompt, format_named
from generation.next_edit.history import EditHistory
from generation.next_edit.region import Region, region_at
from generation.next_edit.shown import ShownEdits

MAX_REGION_BYTES = 16 << 10  # a region larger than this (a minified line) gets no next edit


class EditModel(Protocol):
    """What the engine needs from a model: a stream of text pieces for a prompt."""

    def stream(self, prompt: Prompt, *, max_tokens: int
               ) -> contextlib.AbstractAsyncContextManager[AsyncIterator[str]]:
        """Stream the answer; leaving the context closes the request."""
        ...


class ClientEditModel:
    """A `ModelClient` behind `EditModel`: chat prompts to /v1/chat/completions, text prompts
    to /v1/completions, greedy, streamed (closing the stream makes vLLM abort)."""

    def __init__(self, client: ModelClient) -> None:
        self.client = client

    @contextlib.asynccontextmanager
    async def stream(self, prompt: Prompt, *, max_tokens: int) -> AsyncIterator[AsyncIterator[str]]:
        """The model's answer as pieces of text."""
        stop = list(prompt.stop) or None
        if prompt.chat:
            messages = [ChatMessage(role, content) for role, content in prompt.messages]
            stream = self.client.stream_chat(messages, max_tokens=max_tokens, temperature=0.0,
                                             stop=stop)
        else:
            stream = self.client.stream_complete(prompt.text, max_tokens=max_tokens,
                                                 temperature=0.0, stop=stop)
        async with stream:
            yield stream

    async def aclose(self) -> None:
        """Close the client's connection pool."""
        await self.client.aclose()


def endpoint_for(settings: Settings) -> EndpointSettings:
    """The endpoint next edits go to: chat for instruct prompts, completion for zeta, with
    `nextEdit.model` as the model when set."""
    ne = settings.next_edit
    base = settings.completion if ne.format == "zeta" else settings.chat
    return msgspec.structs.replace(base, model=ne.model or base.model, max_tokens=ne.max_tokens)


def default_model_factory(settings: Settings) -> EditModel:
    """vLLM over HTTP, at the next-edit endpoint, with the next-edit priority."""
    return ClientEditModel(ModelClient(endpoint_for(settings),
                                       priority=settings.priority.next_edit))


@dataclass(slots=True)
class NextEditOutcome:
    """The engine's answer for one request."""

    edit: ByteEdit | None
    region: Region | None = None
    from_cache: bool = False
    superseded: bool = False
    error: ModelError | None = None
    decisions: list[Decision] = field(default_factory=list)
    answer: str | None = None  # the model's rewrite of the region (None: no change)
    server_ms: float = 0.0  # time spent outside the model
    pieces: int = 0  # streamed pieces received from the model
    snapshot: Document | None = None  # the text the edit applies to (its version)


class NextEditEngine:
    """History, shown rewrites, model client and supersession for next-edit suggestions."""

    def __init__(self, engine: CompletionEngine,
                 model_factory: Callable[[Settings], EditModel] = default_model_factory) -> None:
        self.engine = engine  # settings, context builder, known names
        self._factory = model_factory
        self._model: EditModel | None = None
        self._model_key: tuple | None = None
        self.history = EditHistory(excludes=engine.settings.context.exclude)
        self.shown = ShownEdits()
        self._inflight: dict[str, asyncio.Future[NextEditOutcome]] = {}
        self._closing: set[asyncio.Task] = set()
        self.model_calls = 0
        self.stream_pieces = 0
        self.shown_count = 0  # edits the engine answered with
        self.shown_to_user = 0  # didShowInlineEdit notifications
        self.accepted = 0  # accept commands the editor ran
        self.server_ms: deque[float] = deque(maxlen=2000)

    @property
    def settings(self) -> Settings:
        """The settings in force (the completion engine's)."""
        return self.engine.settings

    def model(self) -> EditModel:
        """The model for the next-edit endpoint; rebuilt when the endpoint changes."""
        s = self.settings
        key = (endpoint_for(s), s.priority.next_edit, s.next_edit.format)
        if self._model is None or key != self._model_key:
            if self._model is not None:
                self._close_later(self._model)
            self._model, self._model_key = self._factory(s), key
        return self._model

    def _close_later(self, model: object) -> None:
        close = getattr(model, "aclose", None)
        if close is not None:
            with contextlib.suppress(RuntimeError):
                task = asyncio.get_running_loop().create_task(close())
                self._closing.add(task)
                task.add_done_callback(self._closing.discard)

    async def aclose(self) -> None:
        """Close the model client (the owner is shutting down)."""
        close = getattr(self._model, "aclose", None)
        if close is not None:
            await close()
        self._model = None
        await asyncio.gather(*self._closing, return_exceptions=True)

    # -- history --

    def record(self, uri: str, before: bytes, start: int, end: int, text: str) -> None:
        """One content change of an open document (from didChange)."""
        self.history.use_excludes(self.settings.context.exclude)
        self.history.record(uri, before, start, end, text)

    def forget(self, uri: str) -> None:
        """A document was closed: its history and shown rewrite go."""
        self.history.forget(uri)
        self.shown.forget(uri)

    # -- requests --

    async def suggest_for(self, doc: Document, offset: int) -> NextEditOutcome:
        """The next edit at `offset`, superseding an older request for the same document."""
        uri = doc.uri
        previous = self._inflight.pop(uri, None)
        if previous is not None and not previous.done():
            previous.cancel()
        inner = asyncio.ensure_future(self.suggest(doc, offset))
        self._inflight[uri] = inner
        try:
            return await inner
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if current is not None and current.cancelling():
                inner.cancel()
                raise
            return NextEditOutcome(None, superseded=True)
        finally:
            if self._inflight.get(uri) is inner:
                del self._inflight[uri]

    async def suggest(self, doc: Document, offset: int) -> NextEditOutcome:
        """One next edit at `offset` of a snapshot of `doc`: from the shown rewrite when the
        user typed along with it, else from the model after the debounce."""
        started = time.perf_counter()
        settings = self.settings
        self.history.use_excludes(settings.context.exclude)
        if not settings.next_edit.enabled or self.history.excluded(doc.uri) or doc.too_large:
            return NextEditOutcome(None)
        snap = doc.snapshot()
        resume = self.shown.lookup(snap.uri, snap.source)
        if resume is not None:
            edits = minimal_edits(resume.current, resume.answer)
            cursor_char = len(snap.source[resume.start:offset].decode("utf-8", "replace"))
            outcome = self._first_passing(snap, resume.start, resume.current, edits,
                                          cursor_char, ())
            outcome.from_cache = True
            outcome.answer = resume.answer
            outcome.snapshot = snap
            outcome.server_ms = (time.perf_counter() - started) * 1e3
            self.server_ms.append(outcome.server_ms)
            return outcome
        prep_started = time.perf_counter()
        request = self.prepare(snap, offset)
        if request is None:
            return NextEditOutcome(None)
        fmt = format_named(settings.next_edit.format)
        prompt = fmt.build(request)
        prep_ms = (time.perf_counter() - prep_started) * 1e3
        if settings.next_edit.debounce_ms > 0:
            await asyncio.sleep(settings.next_edit.debounce_ms / 1000)
        self.model_calls += 1
        pieces = 0
        text = ""
        try:
            with affinity_key(snap.uri):
                async with self.model().stream(prompt, max_tokens=settings.next_edit.max_tokens
                                               ) as stream:
                    async for piece in stream:
                        pieces += 1
                        text += piece
                        if fmt.complete(text):
                            break  # leaving the context closes the stream: vLLM aborts
        except ModelError as exc:
            self.stream_pieces += pieces
            return NextEditOutcome(None, region=request.region, error=exc, server_ms=prep_ms,
                                   pieces=pieces)
        self.stream_pieces += pieces
        after = time.perf_counter()
        outcome = self.judge(snap, request, fmt.parse(text, request))
        outcome.pieces = pieces
        outcome.snapshot = snap
        outcome.server_ms = prep_ms + (time.perf_counter() - after) * 1e3
        self.server_ms.append(outcome.server_ms)
        return outcome

    def prepare(self, snap: Document, offset: int) -> NextEditInput | None:
        """The format's input at `offset`: region, excerpt and history (None: nothing to ask)."""
        ctx_path = self.engine.context_builder().build(snap, offset)
        if ctx_path.excluded:
            return None
        region = region_at(snap, offset, ctx_path.path)
        if region.end - region.start > MAX_REGION_BYTES:
            return None
        history = tuple(self.history.render(snap.uri, ctx_path.path,
                                            self.settings.next_edit.max_history_tokens))
        return NextEditInput(ctx_path.path, snap.language, history, region)

    def judge(self, snap: Document, request: NextEditInput, answer: str | None
              ) -> NextEditOutcome:
        """The model's rewrite of the region (None: no change) -> the edit to show, checked."""
        region = request.region
        if answer is None:
            return NextEditOutcome(None, region=region, decisions=[
                Decision("model", "no change", "the model proposes no edit")])
        edits = minimal_edits(region.text, answer)
        masked = region.masked
        allowed = [e for e in edits if not any(_touches(e, span) for span in masked)]
        touched = len(edits) - len(allowed)
        # What the rewrite means for the text as it is (a masked secret is never replaced).
        rewrite = apply(region.original, allowed)
        self.shown.store(snap.uri, snap.source, region.start, region.end, region.original,
                         rewrite)
        notes = (Decision("secrets", "dropped", f"{touched} edit(s) touch a masked secret"),
                 ) if touched else ()
        outcome = self._first_passing(snap, region.start, region.original, allowed,
                                      region.cursor_in_text, notes)
        outcome.region = region
        outcome.answer = rewrite
        if outcome.edit is None:
            self.shown.forget(snap.uri)
        return outcome

    def _first_passing(self, snap: Document, start: int, text: str, edits: list[TextEdit],
                       cursor_char: int, notes: tuple[Decision, ...]) -> NextEditOutcome:
        """The edit nearest the cursor that passes the stages (at most one is shown)."""
        decisions = list(notes)
        if not edits:
            decisions.append(Decision("diff", "no change", "the rewrite equals the region"))
            return NextEditOutcome(None, decisions=decisions)
        ordered = sorted(edits, key=lambda e: (min(abs(e.start - cursor_char),
                                                   abs(e.end - cursor_char)), e.start))
        for edit in ordered:
            lo, hi = to_bytes(text, start, edit)
            checked = self.check(snap, ByteEdit(lo, hi, edit.text))
            decisions.extend(checked.decisions)
            if checked.edit is not None:
                self.shown_count += 1
                return NextEditOutcome(checked.edit, decisions=decisions)
        return NextEditOutcome(None, decisions=decisions)

    def check(self, snap: Document, edit: ByteEdit) -> CheckedEdit:
        """The stages on one edit, with the stage inputs at its first line."""
        line_start = snap.source.rfind(b"\n", 0, edit.start) + 1
        _, inputs = prepare_at(snap, line_start, self.engine.context_builder(),
                               self.engine.names)
        if inputs is None:
            return CheckedEdit(None, [Decision("secrets", "dropped", "a file kept from models")])
        return check_edit(inputs, edit, self.settings.stages)

    def stats(self) -> dict[str, object]:
        """Counters for inspection."""
        return {
            "modelCalls": self.model_calls,
            "streamPieces": self.stream_pieces,
            "answered": self.shown_count,
            "shown": self.shown_to_user,
            "accepted": self.accepted,
            "inflight": len(self._inflight),
            "cacheHits": self.shown.hits,
            "cacheMisses": self.shown.misses,
            "historyBytes": self.history.size_bytes,
            "serverMs": [round(x, 3) for x in self.server_ms],
        }


def _touches(edit: TextEdit, span: tuple[int, int]) -> bool:
    return (edit.start < span[1] and edit.end > span[0]) or (
        edit.start == edit.end and span[0] < edit.start < span[1])
