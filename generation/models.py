"""Completion models the engine can drive: vLLM over HTTP, or a factory named for tests.

`STAGECODER_MODEL_FACTORY=module:attr` names a callable `attr(settings) -> CompletionModel`;
benchmarks and tests use it to put an instant in-process model behind a real server.
"""

from __future__ import annotations

import contextlib
import importlib
import os
from collections.abc import AsyncIterator, Callable

from analysis.settings import EndpointSettings, Settings
from generation.client import ModelClient
from generation.pipeline import CompletionModel, Delta

FACTORY_ENV = "STAGECODER_MODEL_FACTORY"
EOS = "<｜end▁of▁sentence｜>"


class VllmCompletionModel:
    """FIM completions from a vLLM server's /v1/completions, streamed."""

    def __init__(self, settings: EndpointSettings) -> None:
        self.settings = settings
        self.client = ModelClient(settings)

    @contextlib.asynccontextmanager
    async def stream(self, prompt: str, *, n: int, max_tokens: int
                     ) -> AsyncIterator[AsyncIterator[Delta]]:
        """Stream `n` candidates; leaving the context closes the HTTP stream (vLLM aborts)."""
        async with self.client.stream_candidates(prompt, n=n, max_tokens=max_tokens) as pieces:
            yield _deltas(pieces)

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self.client.aclose()


async def _deltas(pieces: AsyncIterator) -> AsyncIterator[Delta]:
    async for piece in pieces:
        yield Delta(piece.index, piece.text.replace(EOS, ""), piece.logprob, piece.tokens)


def model_factory() -> Callable[[Settings], CompletionModel]:
    """The factory named by STAGECODER_MODEL_FACTORY, else vLLM over HTTP."""
    name = os.environ.get(FACTORY_ENV, "")
    if name:
        module, _, attr = name.partition(":")
        return getattr(importlib.import_module(module), attr)
    return lambda settings: VllmCompletionModel(settings.completion)
