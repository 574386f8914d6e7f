"""Prompt formats: the prompt each writes (snapshots) and how each reads an answer back.

Snapshots live in tests/fixtures/next_edit/; regenerate with STAGECODER_UPDATE_SNAPSHOTS=1 and
review the diff.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from analysis.documents.document import Document
from generation.next_edit.formats import (
    NO_CHANGE,
    DeepSeekInstruct,
    NextEditInput,
    Zeta,
    format_named,
)
from generation.next_edit.history import EditHistory
from generation.next_edit.region import region_at

SNAPSHOTS = Path(__file__).parents[2] / "fixtures" / "next_edit"
UPDATE = bool(os.environ.get("STAGECODER_UPDATE_SNAPSHOTS"))
URI = "file:///w/shapes.py"
BEFORE = ("import math\n\n\ndef area(r):\n    return math.pi * r * r\n\n\n"
          "def perimeter(r):\n    return 2 * math.pi * r\n\n\n"
          "print(area(2), perimeter(2))\n")
AFTER = BEFORE.replace("def area(r):\n    return math.pi * r * r",
                       "def area(radius):\n    return math.pi * radius * radius")


def request() -> NextEditInput:
    history = EditHistory()
    history.record(URI, BEFORE.encode(), 0, len(BEFORE), AFTER)  # one whole-region change
    history.forget(URI)
    history.record_replace_all(URI, BEFORE.encode(), AFTER.encode())
    doc = Document(URI, AFTER, "python", 3)
    cursor = AFTER.index("def perimeter(r)") + len("def perimeter(")
    return NextEditInput("shapes.py", "python",
                         tuple(history.render(URI, "shapes.py", 1000)),
                         region_at(doc, cursor, "shapes.py"))


def snapshot(name: str, text: str) -> None:
    path = SNAPSHOTS / name
    if UPDATE:
        SNAPSHOTS.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    assert path.is_file(), f"no snapshot {name}: run with STAGECODER_UPDATE_SNAPSHOTS=1, review"
    assert text == path.read_text(encoding="utf-8")


def test_deepseek_instruct_prompt_snapshot() -> None:
    prompt = DeepSeekInstruct().build(request())
    assert prompt.chat and [role for role, _ in prompt.messages] == ["system", "user"]
    snapshot("deepseek_instruct.snap", "\n\n=====\n\n".join(c for _, c in prompt.messages))


def test_zeta_prompt_snapshot() -> None:
    prompt = Zeta().build(request())
    assert not prompt.chat and prompt.stop == ("<|editable_region_end|>",)
    snapshot("zeta.snap", prompt.text)


def test_the_prompt_holds_the_history_the_region_and_the_cursor() -> None:
    req = request()
    text = DeepSeekInstruct().build(req).messages[1][1]
    assert "-def area(r):\n-    return math.pi * r * r\n+def area(radius):" in text
    assert "def perimeter(<|cursor|>r):" in text
    zeta = Zeta().build(req).text
    assert 'User edited "shapes.py":\n```diff\n--- a/shapes.py' in zeta
    assert "def perimeter(<|user_cursor_is_here|>r):" in zeta
    assert zeta.index("<|editable_region_start|>") < zeta.index("<|user_cursor_is_here|>") < \
        zeta.index("<|editable_region_end|>")


def test_deepseek_answers_read_back() -> None:
    req = request()
    fmt = DeepSeekInstruct()
    new_region = req.region.text.replace("perimeter(r)", "perimeter(radius)")
    answer = f"Here is the region:\n```python\n{new_region}```\n"
    assert fmt.parse(answer, req) == new_region
    assert fmt.parse(NO_CHANGE, req) is None
    assert fmt.parse(f"  {NO_CHANGE}\n", req) is None
    assert fmt.parse("I would rename the parameter.", req) is None  # no code: no edit
    assert fmt.complete(answer) and fmt.complete(NO_CHANGE)
    assert not fmt.complete("```python\ndef perimeter(radius):\n")


def test_zeta_answers_read_back() -> None:
    req = request()
    fmt = Zeta()
    new_region = req.region.text.replace("perimeter(r)", "perimeter(radius)")
    answer = (f"```shapes.py\n<|editable_region_start|>\n"
              f"{new_region.replace('radius', '<|user_cursor_is_here|>radius', 1)}")
    assert fmt.parse(answer, req) == new_region
    assert fmt.parse(f"<|editable_region_start|>\n{req.region.text}", req) is None  # unchanged
    assert fmt.parse("nothing useful", req) is None
    assert fmt.complete("x<|editable_region_end|>") and not fmt.complete("x")


def test_unknown_format_name_falls_back_to_deepseek() -> None:
    assert format_named("zeta").name == "zeta"
    assert format_named("nonsense").name == "deepseek-instruct"


@pytest.mark.parametrize("fmt", [DeepSeekInstruct(), Zeta()])
def test_secrets_in_the_excerpt_are_masked(fmt) -> None:
    doc = Document(URI, 'TOKEN = "ghp_' + "a1B2" * 9 + '"\nx = 1\n', "python", 1)
    req = NextEditInput("shapes.py", "python", (), region_at(doc, 0, "shapes.py"))
    prompt = fmt.build(req)
    text = prompt.text + "".join(c for _, c in prompt.messages)
    assert "a1B2" not in text and "TOKEN = " in text
