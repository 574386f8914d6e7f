"""`stagecoder eval`'s engine: holes cut by tree-sitter (the same seed, the same holes), scored
with the stages on and off from one model answer per hole."""

from __future__ import annotations

import asyncio

from analysis.documents.document import Document
from analysis.settings import Settings, StageSettings
from generation.completion.engine import CompletionEngine
from generation.completion.evaluate import EvalHole, cut_holes, evaluate, report
from tests.fakes.models import ScriptedModel

SOURCE = '''def total(prices, qty):
    result = 0
    for p in prices:
        result += p * qty
        result -= 1
    return result


def mean(values):
    count = len(values)
    return sum(values) / count
'''


def docs() -> list[tuple[str, Document]]:
    return [("/w/shop.py", Document("file:///w/shop.py", SOURCE, "python"))]


def test_holes_are_cut_in_the_engine_s_shapes_and_the_seed_fixes_them():
    holes = cut_holes(docs(), 20, seed=3)
    assert {h.kind for h in holes} == {"line", "block", "function_body"}
    for hole in holes:
        assert hole.source[hole.offset:].decode().startswith(hole.middle)
    block = next(h for h in holes if h.kind == "block")
    assert block.middle == "        result += p * qty\n        result -= 1\n"
    assert [(h.kind, h.offset) for h in cut_holes(docs(), 20, seed=3)] == [
        (h.kind, h.offset) for h in holes]
    assert len(cut_holes(docs(), 2, seed=3)) == 2


def test_stages_on_and_off_come_from_the_same_answer(monkeypatch):
    # The model closes a bracket the line never opened: the stages cut it off, the raw
    # output does not parse in place.
    monkeypatch.setenv("STAGECODER_FAKE_TEXT", "len(values))\n")
    settings = Settings(stages=StageSettings(candidates=1))
    engine = CompletionEngine(settings, lambda _settings: ScriptedModel())
    hole = EvalHole("/w/shop.py", "python", SOURCE.encode(), SOURCE.index("len(values)"),
                    "len(values)", "line")
    rows, errors = asyncio.run(evaluate([hole], settings, engine))
    result = report(rows, errors, files=1, seed=0, skipped=[])
    assert (result.holes, result.errors) == (1, 0)
    assert (result.stages_on.exact_match, result.stages_off.exact_match) == (1.0, 0.0)
    assert (result.stages_on.syntax_valid, result.stages_off.syntax_valid) == (1.0, 0.0)
    assert result.by_kind["line"]["on"].exact_match == 1.0
    assert set(result.latency_ms) == {"requestP50", "requestP95", "serverP50", "serverP95"}
