"""Scripted completion models, selected in a server subprocess by STAGECODER_MODEL_FACTORY.

`scripted` reads its behaviour from the environment:
- STAGECODER_FAKE_TEXT: the raw text every candidate streams (default: "    return 42\\n");
- STAGECODER_FAKE_DELAY: seconds to wait before each piece (default 0);
- STAGECODER_FAKE_LOG: a file that gets one line per stream opened and per stream closed,
  so tests can see that a cancelled request's stream was closed.
`down` raises ModelUnavailable like a server that is not running.
`recording` is `scripted` that also appends every prompt it is sent, as one JSON string per line,
to the file named by STAGECODER_RECORD_PROMPTS (what a model server would have received).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
from collections.abc import AsyncIterator

from analysis.settings import Settings
from generation.completion.pipeline import Delta
from generation.model.errors import ModelUnavailable


def _log(line: str) -> None:
    path = os.environ.get("STAGECODER_FAKE_LOG")
    if path:
        with open(path, "a", encoding="utf-8") as fh:
            fh.write(line + "\n")


class ScriptedModel:
    """Streams the configured text in small pieces, to every candidate."""

    def __init__(self) -> None:
        self.text = os.environ.get("STAGECODER_FAKE_TEXT", "    return 42\n")
        self.delay = float(os.environ.get("STAGECODER_FAKE_DELAY", "0"))

    @contextlib.asynccontextmanager
    async def stream(self, prompt: str, *, n: int, max_tokens: int
                     ) -> AsyncIterator[AsyncIterator[Delta]]:
        _log("open")
        try:
            yield self._pieces(n)
        finally:
            _log("closed")

    async def _pieces(self, n: int) -> AsyncIterator[Delta]:
        for k in range(0, len(self.text), 4):
            if self.delay:
                await asyncio.sleep(self.delay)
            for i in range(n):
                yield Delta(i, self.text[k:k + 4], -0.1, 1)


class DownModel:
    """A model whose server is not running."""

    @contextlib.asynccontextmanager
    async def stream(self, prompt: str, *, n: int, max_tokens: int
                     ) -> AsyncIterator[AsyncIterator[Delta]]:
        raise ModelUnavailable("http://127.0.0.1:9", "connection refused")
        yield  # pragma: no cover


def scripted(settings: Settings) -> ScriptedModel:
    """Factory for STAGECODER_MODEL_FACTORY=tests.fakes.models:scripted."""
    return ScriptedModel()


def down(settings: Settings) -> DownModel:
    """Factory for STAGECODER_MODEL_FACTORY=tests.fakes.models:down."""
    return DownModel()


class BrokenModel:
    """A model whose stream fails with an unexpected (non-ModelError) exception."""

    @contextlib.asynccontextmanager
    async def stream(self, prompt: str, *, n: int, max_tokens: int
                     ) -> AsyncIterator[AsyncIterator[Delta]]:
        raise RuntimeError("boom")
        yield  # pragma: no cover


def broken(settings: Settings) -> BrokenModel:
    """Factory for STAGECODER_MODEL_FACTORY=tests.fakes.models:broken."""
    return BrokenModel()


class RecordingModel(ScriptedModel):
    """A scripted model that writes down every prompt before it streams."""

    def __init__(self, path: str) -> None:
        super().__init__()
        self.path = path

    @contextlib.asynccontextmanager
    async def stream(self, prompt: str, *, n: int, max_tokens: int
                     ) -> AsyncIterator[AsyncIterator[Delta]]:
        with open(self.path, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(prompt) + "\n")
        async with super().stream(prompt, n=n, max_tokens=max_tokens) as pieces:
            yield pieces


def recording(settings: Settings) -> RecordingModel:
    """Factory for STAGECODER_MODEL_FACTORY=tests.fakes.models:recording."""
    return RecordingModel(os.environ["STAGECODER_RECORD_PROMPTS"])
