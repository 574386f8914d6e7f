"""The completion engine: one object that the language server and the CLI share.

It owns the model, the typing-through cache and the known-name cache, and turns (document,
offset) into at most one staged completion. Errors from the model come back as a value
(`Outcome.error`), never as an exception, so a front end can tell the user once and move on.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from analysis.context.builder import ContextBuilder
from analysis.documents.document import Document
from analysis.scope.names import KnownNames
from analysis.settings import Settings
from generation.completion.cache import TypingThroughCache
from generation.completion.pipeline import (
    Candidate,
    CompletionModel,
    best,
    prepare,
    run_all,
    stream_candidates,
)
from generation.completion.prompts import build_fim_prompt
from generation.model.errors import ModelError


@dataclass(slots=True)
class Outcome:
    """The engine's answer for one request."""

    text: str | None
    from_cache: bool = False
    candidates: list[Candidate] = field(default_factory=list)
    error: ModelError | None = None
    server_ms: float = 0.0  # time spent outside the model: context, stages, cache


ModelFactory = Callable[[Settings], CompletionModel]
ContextSource = Callable[[], ContextBuilder]


class CompletionEngine:
    """Context -> prompt -> model -> stages -> best candidate, with the typing-through cache."""

    def __init__(self, settings: Settings, model_factory: ModelFactory,
                 contexts: ContextSource | None = None) -> None:
        self.settings = settings
        self._factory = model_factory
        self._contexts = contexts  # the server's builder (with the workspace index), if any
        self._own_builder: ContextBuilder | None = None
        self._model: CompletionModel | None = None
        self.names = KnownNames()
        self.cache = TypingThroughCache()
        self.model_calls = 0
        self.server_ms: deque[float] = deque(maxlen=2000)  # recent per-request server times
        self.server_cpu_ms: deque[float] = deque(maxlen=2000)  # the same, on-CPU time only
        self._closing: set[asyncio.Task] = set()  # old models' pools being closed

    def update_settings(self, settings: Settings) -> None:
        """Take new settings; the model is rebuilt on next use if its endpoint changed."""
        if settings.completion != self.settings.completion and self._model is not None:
            old, self._model = self._model, None
            close = getattr(old, "aclose", None)
            if close is not None:  # release the old endpoint's connection pool
                with contextlib.suppress(RuntimeError):  # no running loop: nothing to close on
                    task = asyncio.get_running_loop().create_task(close())
                    self._closing.add(task)
                    task.add_done_callback(self._closing.discard)
        self.settings = settings

    def context_builder(self) -> ContextBuilder:
        """The context builder: the workspace's when the front end gave one, else a local one."""
        if self._contexts is not None:
            return self._contexts()
        if self._own_builder is None or self._own_builder.settings != self.settings.context:
            self._own_builder = ContextBuilder(None, self.settings.context)
        return self._own_builder

    @property
    def model(self) -> CompletionModel:
        """The model for the completion endpoint (built lazily)."""
        if self._model is None:
            self._model = self._factory(self.settings)
        return self._model

    def from_cache(self, doc: Document, offset: int) -> str | None:
        """The rest of the shown suggestion if the user typed along with it."""
        return self.cache.lookup(doc.uri, doc.source, offset)

    async def complete(self, doc: Document, offset: int, kind_hint: str | None = None,
                       *, use_cache: bool = True) -> Outcome:
        """One staged completion at `offset` (the document is snapshotted first)."""
        started = time.perf_counter()
        cpu_started = time.thread_time()
        cached = self.from_cache(doc, offset) if use_cache else None
        if cached is not None:
            elapsed = (time.perf_counter() - started) * 1e3
            self.server_ms.append(elapsed)
            self.server_cpu_ms.append((time.thread_time() - cpu_started) * 1e3)
            return Outcome(cached, from_cache=True, server_ms=elapsed)
        snap = doc.snapshot()
        ctx = self.context_builder().build(snap, offset)
        if ctx.excluded:  # a secret file: nothing of it may reach a model
            return Outcome(None, server_ms=(time.perf_counter() - started) * 1e3)
        inputs = prepare(snap, offset, self.names, kind_hint or ctx.hole)
        prompt = build_fim_prompt(ctx).text
        prep_ms = (time.perf_counter() - started) * 1e3
        prep_cpu_ms = (time.thread_time() - cpu_started) * 1e3
        self.model_calls += 1
        try:
            raws = await stream_candidates(inputs, self.model, prompt,
                                           max(1, self.settings.stages.candidates),
                                           self.settings.completion.max_tokens)
        except ModelError as exc:
            return Outcome(None, error=exc, server_ms=prep_ms)
        stages_started = time.perf_counter()
        stages_cpu_started = time.thread_time()
        candidates = run_all(inputs, raws, self.settings.stages)
        chosen = best(candidates)
        if chosen is not None and chosen.text:
            self.cache.store(snap.uri, snap.source, offset, chosen.text)
        stage_ms = (time.perf_counter() - stages_started) * 1e3
        self.server_ms.append(prep_ms + stage_ms)
        self.server_cpu_ms.append(prep_cpu_ms + (time.thread_time() - stages_cpu_started) * 1e3)
        return Outcome(chosen.text if chosen else None, candidates=candidates,
                       server_ms=prep_ms + stage_ms)

    def stats(self) -> dict[str, object]:
        """Counters for inspection: model calls, cache hits, pool, recent server times (ms)."""
        counts = getattr(self._model, "connection_counts", None)
        return {
            "modelCalls": self.model_calls,
            # The model's HTTP connections by state ({} before the first call, or in-process).
            "modelConnections": counts() if counts is not None else {},
            "cacheHits": self.cache.hits,
            "cacheMisses": self.cache.misses,
            "cacheBytes": self.cache.size_bytes,
            "serverMs": [round(x, 3) for x in self.server_ms],
            "serverCpuMs": [round(x, 3) for x in self.server_cpu_ms],
        }

