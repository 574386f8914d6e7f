"""The completion engine: one object that the language server and the CLI share.

It owns the model clients (the completion model and the chat client, rebuilt when their endpoint
changes), the context builder over the workspace index the front end hands it, the typing-through
cache and the known-name cache, and turns (document, offset) into at most one staged completion.
`complete_for` is the editor's entry: a keystroke that types into the shown suggestion is
answered from the cache, and a newer request for a document supersedes the older one (its model
stream is closed, so vLLM aborts it). Errors from the model come back as a value
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
from analysis.index.workspace_index import SymbolIndex
from analysis.scope.names import KnownNames
from analysis.settings import Settings
from generation.completion.cache import TypingThroughCache
from generation.completion.pipeline import (
    Candidate,
    CompletionModel,
    best,
    prepare_at,
    run_all,
    stream_candidates,
)
from generation.completion.prompts import build_fim_prompt
from generation.model.client import ModelClient
from generation.model.errors import ModelError
from generation.model.replicas import affinity_key


@dataclass(slots=True)
class Outcome:
    """The engine's answer for one request."""

    text: str | None
    from_cache: bool = False
    candidates: list[Candidate] = field(default_factory=list)
    error: ModelError | None = None
    server_ms: float = 0.0  # time spent outside the model: context, stages, cache
    superseded: bool = False  # a newer request for the same document took over


ModelFactory = Callable[[Settings], CompletionModel]


class CompletionEngine:
    """Context -> prompt -> model -> stages -> best candidate, with the typing-through cache."""

    def __init__(self, settings: Settings, model_factory: ModelFactory,
                 index: SymbolIndex | None = None) -> None:
        self.settings = settings
        self._factory = model_factory
        self._index = index  # the workspace index (the front end's), if any
        self._builder: ContextBuilder | None = None
        self._model: CompletionModel | None = None
        self._chat: ModelClient | None = None
        self._inflight: dict[str, asyncio.Future[Outcome]] = {}  # uri -> running completion
        self.names = KnownNames()
        self.cache = TypingThroughCache()
        self.model_calls = 0
        self.server_ms: deque[float] = deque(maxlen=2000)  # recent per-request server times
        self.server_cpu_ms: deque[float] = deque(maxlen=2000)  # the same, on-CPU time only
        self._closing: set[asyncio.Task] = set()  # old models' pools being closed

    def update_settings(self, settings: Settings) -> None:
        """Take new settings; a model client is rebuilt on next use if its endpoint changed."""
        completion_changed = (settings.completion != self.settings.completion
                              or settings.priority != self.settings.priority)
        if completion_changed and self._model is not None:
            old, self._model = self._model, None
            self._close_later(old)
        chat_changed = (settings.chat != self.settings.chat
                        or settings.priority != self.settings.priority)
        if chat_changed and self._chat is not None:
            chat, self._chat = self._chat, None
            self._close_later(chat)
        self.settings = settings

    def _close_later(self, client: object) -> None:
        """Release an old endpoint's connection pool (in the background: callers are sync)."""
        close = getattr(client, "aclose", None)
        if close is not None:
            with contextlib.suppress(RuntimeError):  # no running loop: nothing to close on
                task = asyncio.get_running_loop().create_task(close())
                self._closing.add(task)
                task.add_done_callback(self._closing.discard)

    async def aclose(self) -> None:
        """Close the model clients' connection pools (the owner is shutting down)."""
        for client in (self._model, self._chat):
            close = getattr(client, "aclose", None)
            if close is not None:
                await close()
        self._model = self._chat = None
        await asyncio.gather(*self._closing, return_exceptions=True)

    def use_index(self, index: SymbolIndex | None) -> None:
        """Build contexts over `index` from now on (the front end rebuilt its workspace index)."""
        self._index = index

    def context_builder(self) -> ContextBuilder:
        """The context builder over the workspace index for the settings in force (kept while
        neither changes)."""
        builder = self._builder
        if (builder is None or builder.settings != self.settings.context
                or builder.index is not self._index):
            builder = self._builder = ContextBuilder(self._index, self.settings.context)
        return builder

    @property
    def model(self) -> CompletionModel:
        """The model for the completion endpoint (built lazily)."""
        if self._model is None:
            self._model = self._factory(self.settings)
        return self._model

    def chat_client(self) -> ModelClient:
        """The client for the chat endpoint, for rewrites (their vLLM priority); built lazily,
        closed when the endpoint changes."""
        if self._chat is None:
            self._chat = ModelClient(self.settings.chat,
                                     priority=self.settings.priority.rewrite)
        return self._chat

    async def complete_for(self, doc: Document, offset: int) -> Outcome:
        """The editor's completion at `offset`: from the cache, or staged from the model.

        It supersedes an older request for the same document (that one answers an empty,
        `superseded` outcome and its model stream closes). Cancelling the caller cancels the
        completion (the stream closes, vLLM aborts) and raises CancelledError.
        """
        uri = doc.uri
        previous = self._inflight.pop(uri, None)
        if previous is not None and not previous.done():
            previous.cancel()
        cached = self._cached(doc, offset)  # looked up now: the next edit may be on its way
        if cached is not None:
            return cached
        inner = asyncio.ensure_future(self.complete(doc, offset, use_cache=False))
        self._inflight[uri] = inner
        try:
            return await inner
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if current is not None and current.cancelling():
                inner.cancel()
                raise  # the caller was cancelled (the client's $/cancelRequest)
            return Outcome(None, superseded=True)  # a newer request cancelled `inner`
        finally:
            if self._inflight.get(uri) is inner:
                del self._inflight[uri]

    async def complete(self, doc: Document, offset: int, *, use_cache: bool = True,
                       affinity: str | None = None) -> Outcome:
        """One staged completion at `offset` (the document is snapshotted first); its model
        requests are routed by `affinity` (default: the document's URI)."""
        cached = self._cached(doc, offset) if use_cache else None
        if cached is not None:
            return cached
        started = time.perf_counter()
        cpu_started = time.thread_time()
        ctx, inputs = prepare_at(doc, offset, self.context_builder(), self.names)
        if inputs is None:  # a secret file: nothing of it may reach a model
            return Outcome(None, server_ms=(time.perf_counter() - started) * 1e3)
        prompt = build_fim_prompt(ctx).text
        prep_ms = (time.perf_counter() - started) * 1e3
        prep_cpu_ms = (time.thread_time() - cpu_started) * 1e3
        self.model_calls += 1
        try:
            # A document's requests stay on one replica while it is up (its prefix cache).
            with affinity_key(affinity or doc.uri):
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
            self.cache.store(inputs.doc.uri, inputs.doc.source, offset, chosen.text)
        stage_ms = (time.perf_counter() - stages_started) * 1e3
        self.server_ms.append(prep_ms + stage_ms)
        self.server_cpu_ms.append(prep_cpu_ms + (time.thread_time() - stages_cpu_started) * 1e3)
        return Outcome(chosen.text if chosen else None, candidates=candidates,
                       server_ms=prep_ms + stage_ms)

    def _cached(self, doc: Document, offset: int) -> Outcome | None:
        """The typing-through cache's answer (the rest of the shown suggestion), if any."""
        started = time.perf_counter()
        cpu_started = time.thread_time()
        text = self.cache.lookup(doc.uri, doc.source, offset)  # counts the hit or the miss
        if text is None:
            return None
        elapsed = (time.perf_counter() - started) * 1e3
        self.server_ms.append(elapsed)
        self.server_cpu_ms.append((time.thread_time() - cpu_started) * 1e3)
        return Outcome(text, from_cache=True, server_ms=elapsed)

    def stats(self) -> dict[str, object]:
        """Counters for inspection: model calls, cache hits, pool, recent server times (ms)."""
        counts = getattr(self._model, "connection_counts", None)
        answered = getattr(self._model, "answered_by", None)
        replicas = getattr(self._model, "replica_stats", None)
        return {
            "modelCalls": self.model_calls,
            # Streams by the model name vLLM answered with (a LoRA adapter's, when one ran).
            "answeredBy": answered() if answered is not None else {},
            "inflight": len(self._inflight),  # completions running now
            # The model's HTTP connections by state ({} before the first call, or in-process).
            "modelConnections": counts() if counts is not None else {},
            # Each completion replica: up or down, requests in flight, answered, failed, retried.
            "replicas": replicas() if replicas is not None else [],
            "chatReplicas": self._chat.replicas.stats() if self._chat is not None else [],
            "cacheHits": self.cache.hits,
            "cacheMisses": self.cache.misses,
            "cacheBytes": self.cache.size_bytes,
            "serverMs": [round(x, 3) for x in self.server_ms],
            "serverCpuMs": [round(x, 3) for x in self.server_cpu_ms],
        }

