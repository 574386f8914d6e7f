"""NextEditEngine with a scripted in-process model: answers, "no change", typing through a shown
edit with no model call, supersede, cancel, masked secrets, the setting that turns it off."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import msgspec
import pytest

from analysis.documents.document import Document
from analysis.settings import NextEditSettings, Settings
from generation.completion.engine import CompletionEngine
from generation.next_edit.engine import NextEditEngine
from generation.next_edit.formats import NO_CHANGE, Prompt

URI = "file:///w/shapes.py"
BEFORE = ("import math\n\n\ndef area(r):\n    return math.pi * r * r\n\n\n"
          "def perimeter(r):\n    return 2 * math.pi * r\n")
AFTER = BEFORE.replace("def area(r):\n    return math.pi * r * r",
                       "def area(radius):\n    return math.pi * radius * radius")
CURSOR = AFTER.index("def perimeter(r)") + len("def perimeter(")
TARGET = AFTER.replace("def perimeter(r):\n    return 2 * math.pi * r",
                       "def perimeter(radius):\n    return 2 * math.pi * radius")


class ScriptedModel:
    """Answers each prompt with the next scripted text, in pieces of 5 characters; a test may
    hold the stream open with `release`."""

    def __init__(self, *answers: str, held: bool = False) -> None:
        self.answers = list(answers)
        self.prompts: list[Prompt] = []
        self.opens = self.closes = 0
        self.release = asyncio.Event()
        self.opened = asyncio.Event()
        if not held:
            self.release.set()

    @contextlib.asynccontextmanager
    async def stream(self, prompt: Prompt, *, max_tokens: int) -> AsyncIterator[AsyncIterator[str]]:
        self.opens += 1
        self.prompts.append(prompt)
        self.opened.set()
        answer = self.answers.pop(0) if self.answers else NO_CHANGE
        try:
            yield self._pieces(answer)
        finally:
            self.closes += 1

    async def _pieces(self, text: str) -> AsyncIterator[str]:
        await self.release.wait()
        for i in range(0, len(text), 5):
            yield text[i:i + 5]


def region_answer(engine: NextEditEngine, doc: Document, new_doc_text: str) -> str:
    """The oracle's answer: the region of `doc` at the cursor as it is in `new_doc_text`."""
    request = engine.prepare(doc.snapshot(), CURSOR)
    assert request is not None
    region = request.region
    tail = len(doc.source) - region.end
    new = new_doc_text.encode()
    return new[region.start:len(new) - tail].decode()


def make(model: ScriptedModel, **next_edit: object) -> tuple[NextEditEngine, Document]:
    settings = msgspec.structs.replace(
        Settings(), next_edit=NextEditSettings(**{"debounce_ms": 0, **next_edit}))  # type: ignore[arg-type]
    engine = NextEditEngine(CompletionEngine(settings, lambda s: None), lambda s: model)  # type: ignore[arg-type,return-value]
    engine.record(URI, BEFORE.encode(), 0, len(BEFORE), AFTER)
    return engine, Document(URI, AFTER, "python", 2)


def fenced(region: str) -> str:
    return f"```python\n{region}```"


async def test_the_rewrite_becomes_one_checked_edit_and_the_prompt_holds_the_history() -> None:
    model = ScriptedModel()
    engine, doc = make(model)
    model.answers.append(fenced(region_answer(engine, doc, TARGET)))
    outcome = await engine.suggest_for(doc, CURSOR)
    assert outcome.edit is not None and outcome.error is None and not outcome.from_cache
    start, end = outcome.edit.start, outcome.edit.end
    applied = doc.source[:start] + outcome.edit.text.encode() + doc.source[end:]
    assert applied.decode() == TARGET
    assert outcome.pieces > 1  # streamed
    user = model.prompts[0].messages[1][1]
    assert "+def area(radius):" in user and "def perimeter(<|cursor|>r):" in user
    assert (model.opens, model.closes) == (1, 1)


async def test_no_change_is_no_edit() -> None:
    model = ScriptedModel(NO_CHANGE)
    engine, doc = make(model)
    outcome = await engine.suggest_for(doc, CURSOR)
    assert outcome.edit is None and outcome.decisions[-1].action == "no change"


@pytest.mark.parametrize(("bad", "stage"), [
    ("def perimeter(radius:\n    return 2 * math.pi * radius", "structure"),
    ("def perimeter(r):\n    return 2 * math.pi * r * golden_ratio_constant", "naming"),
])
async def test_an_edit_a_stage_rejects_is_not_shown(bad: str, stage: str) -> None:
    model = ScriptedModel()
    engine, doc = make(model)
    broken = AFTER.replace("def perimeter(r):\n    return 2 * math.pi * r", bad)
    model.answers.append(fenced(region_answer(engine, doc, broken)))
    outcome = await engine.suggest_for(doc, CURSOR)
    assert outcome.edit is None
    assert outcome.decisions[-1].stage == stage and outcome.decisions[-1].action == "dropped"


async def test_typing_along_with_the_shown_edit_asks_no_model() -> None:
    target = TARGET.replace("print", "print")  # two separate edits: header and body
    model = ScriptedModel()
    engine, doc = make(model)
    model.answers.append(fenced(region_answer(engine, doc, target)))
    first = await engine.suggest_for(doc, CURSOR)
    assert first.edit is not None and model.opens == 1
    # The user types "adius" after "perimeter(r": part of the suggestion.
    at = CURSOR + 1
    doc.replace_bytes(at, at, "adius", version=3)
    again = await engine.suggest_for(doc, at + 5)
    assert again.from_cache and model.opens == 1
    assert again.edit is not None
    applied = doc.source[:again.edit.start] + again.edit.text.encode() + doc.source[again.edit.end:]
    assert applied.decode() == TARGET
    # Something foreign typed: the shown rewrite no longer applies; the model is asked.
    doc.replace_bytes(0, 0, "# note\n", version=4)
    await engine.suggest_for(doc, at + 12)
    assert model.opens == 2


async def test_a_newer_request_supersedes_and_closes_the_older_stream() -> None:
    model = ScriptedModel(held=True)
    engine, doc = make(model)
    older = asyncio.ensure_future(engine.suggest_for(doc, CURSOR))
    await model.opened.wait()
    newer = asyncio.ensure_future(engine.suggest_for(doc, CURSOR))
    first = await older
    assert first.superseded and first.edit is None and model.closes == 1
    model.release.set()
    await newer
    assert model.closes == 2


async def test_cancelling_the_caller_closes_the_stream() -> None:
    model = ScriptedModel(held=True)
    engine, doc = make(model)
    task = asyncio.ensure_future(engine.suggest_for(doc, CURSOR))
    await model.opened.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await asyncio.sleep(0)
    assert model.closes == 1 and engine.stats()["inflight"] == 0


async def test_debounce_superseded_request_never_reaches_the_model() -> None:
    model = ScriptedModel(NO_CHANGE, NO_CHANGE)
    engine, doc = make(model, debounce_ms=200)
    older = asyncio.ensure_future(engine.suggest_for(doc, CURSOR))
    await asyncio.sleep(0.01)
    await engine.suggest_for(doc, CURSOR)
    assert (await older).superseded and model.opens == 1


async def test_an_edit_that_touches_a_masked_secret_is_dropped() -> None:
    secret = 'API_TOKEN = "ghp_' + "Zx9" * 12 + '"\n'
    source = "x = 1\n" + secret + "\n\ny = 2\n"
    model = ScriptedModel()
    engine, _ = make(model)
    doc = Document("file:///w/conf.py", source, "python", 1)
    request = engine.prepare(doc.snapshot(), 0)
    assert request is not None and "Zx9" not in request.region.text
    # The model "restores" what it saw as xxxx, and renames y: only the rename may come back.
    model.answers.append(fenced(request.region.text.replace("y = 2", "z = 2")
                                .replace("x" * 36, "A" * 36)))
    outcome = await engine.suggest_for(doc, 0)
    assert any(d.stage == "secrets" for d in outcome.decisions)
    assert outcome.edit is not None and outcome.edit.text == "z"


async def test_secret_files_and_the_setting_turn_it_off() -> None:
    model = ScriptedModel("x")
    engine, doc = make(model, enabled=False)
    assert (await engine.suggest_for(doc, CURSOR)).edit is None
    engine2, _ = make(model)
    env = Document("file:///w/.env", "TOKEN=1\n", "plaintext", 1)
    assert (await engine2.suggest_for(env, 0)).edit is None
    assert model.opens == 0
