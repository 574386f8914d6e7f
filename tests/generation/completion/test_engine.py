"""CompletionEngine: supersession, cancellation, the one cache path, and the clients it owns.

The model here is an in-process fake whose stream the test holds open with an event, so the
order of things is awaited, never slept for.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import msgspec
import pytest

from analysis.documents.document import Document
from analysis.index.workspace_index import SymbolIndex
from analysis.settings import EndpointSettings, Settings, StageSettings
from generation.completion.engine import CompletionEngine
from generation.completion.pipeline import Delta

SOURCE = "import math\n\n\ndef area(radius):\n\n"
OFFSET = len(SOURCE) - 1  # the empty line in the body
ANSWER = "    return math.pi * radius ** 2\n\n\ndef other():\n    pass\n"
SHOWN = "    return math.pi * radius ** 2"  # what the stages keep of ANSWER


class HeldModel:
    """Streams ANSWER once `release` is set; counts the streams opened and closed."""

    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.opened = asyncio.Event()
        self.opens = self.closes = 0

    @contextlib.asynccontextmanager
    async def stream(self, prompt: str, *, n: int, max_tokens: int
                     ) -> AsyncIterator[AsyncIterator[Delta]]:
        self.opens += 1
        self.opened.set()
        try:
            yield self._pieces(n)
        finally:
            self.closes += 1

    async def _pieces(self, n: int) -> AsyncIterator[Delta]:
        await self.release.wait()
        for i in range(n):
            yield Delta(i, ANSWER, -0.1, 8)


def settings(**changes: object) -> Settings:
    return msgspec.structs.replace(Settings(), **{"stages": StageSettings(candidates=1),
                                                  **changes})


def engine_with(model: HeldModel) -> CompletionEngine:
    return CompletionEngine(settings(), lambda s: model)


def document(text: str = SOURCE, version: int = 1) -> Document:
    return Document("file:///engine/calc.py", text, "python", version)


async def test_a_newer_request_supersedes_the_older_one() -> None:
    model = HeldModel()
    engine = engine_with(model)
    older = asyncio.ensure_future(engine.complete_for(document(), OFFSET))
    await model.opened.wait()
    newer = asyncio.ensure_future(engine.complete_for(document(), OFFSET))
    first = await older  # answered at once, before the model says anything
    assert (first.text, first.superseded, first.error) == (None, True, None)
    assert model.closes == 1  # its stream was closed: vLLM aborts the request
    model.release.set()
    second = await newer
    assert second.text == SHOWN and not second.superseded
    assert (model.opens, model.closes) == (2, 2)
    assert engine.stats()["inflight"] == 0


async def test_cancelling_the_caller_closes_the_stream_and_raises() -> None:
    model = HeldModel()
    engine = engine_with(model)
    request = asyncio.ensure_future(engine.complete_for(document(), OFFSET))
    await model.opened.wait()
    request.cancel()
    with pytest.raises(asyncio.CancelledError):
        await request
    assert model.closes == 1
    assert engine.stats()["inflight"] == 0


async def test_typing_into_the_suggestion_is_answered_from_the_cache() -> None:
    model = HeldModel()
    model.release.set()
    engine = engine_with(model)
    shown = await engine.complete_for(document(), OFFSET)
    assert shown.text == SHOWN and not shown.from_cache
    typed = SHOWN[:10]
    again = await engine.complete_for(
        document(SOURCE[:OFFSET] + typed + SOURCE[OFFSET:], 2), OFFSET + len(typed))
    assert (again.text, again.from_cache) == (SHOWN[10:], True)
    figures = engine.stats()
    assert (figures["modelCalls"], figures["cacheHits"], figures["cacheMisses"]) == (1, 1, 1)
    # A keystroke that disagrees with the suggestion goes back to the model.
    off = await engine.complete_for(document(SOURCE[:OFFSET] + "#" + SOURCE[OFFSET:], 3),
                                    OFFSET + 1)
    assert not off.from_cache and engine.stats()["modelCalls"] == 2


async def test_an_answer_from_the_cache_supersedes_a_request_in_flight_too() -> None:
    model = HeldModel()
    model.release.set()
    engine = engine_with(model)
    await engine.complete_for(document(), OFFSET)  # shown, and cached
    model.release.clear()
    model.opened.clear()
    elsewhere = document(SOURCE + "\n", 2)  # a miss: this one goes to the model and waits
    pending = asyncio.ensure_future(engine.complete_for(elsewhere, OFFSET))
    await model.opened.wait()
    typed = document(SOURCE[:OFFSET] + SHOWN[:4] + SOURCE[OFFSET:], 3)
    hit = await engine.complete_for(typed, OFFSET + 4)
    assert (hit.text, hit.from_cache) == (SHOWN[4:], True)
    assert (await pending).superseded and model.closes == 2


async def test_the_chat_client_is_shared_and_closed_when_its_endpoint_changes() -> None:
    engine = engine_with(HeldModel())
    client = engine.chat_client()
    assert engine.chat_client() is client
    pool = client.http  # the connection pool, opened on first use
    engine.update_settings(settings(stages=StageSettings(candidates=3)))  # chat unchanged
    assert engine.chat_client() is client
    engine.update_settings(settings(chat=EndpointSettings(url="http://127.0.0.1:9")))
    fresh = engine.chat_client()
    assert fresh is not client and fresh.url == "http://127.0.0.1:9"
    await asyncio.gather(*engine._closing)  # the close runs in the background
    assert pool.is_closed


async def test_contexts_are_built_over_the_index_the_front_end_hands_over() -> None:
    engine = engine_with(HeldModel())
    assert engine.context_builder().index is None  # the CLI: no workspace
    index = SymbolIndex([])
    engine.use_index(index)
    builder = engine.context_builder()
    assert builder.index is index and engine.context_builder() is builder  # kept
    engine.use_index(SymbolIndex([]))
    assert engine.context_builder() is not builder
