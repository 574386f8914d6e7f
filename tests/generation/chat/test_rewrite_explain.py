"""The pure parts of the model-driven review features: reply parsing, placing a rewrite, the
staged checks on it, and the snippets sent for explanations (secrets blanked)."""

from __future__ import annotations

from analysis.documents.document import Document
from analysis.settings import StageSettings
from generation.chat.explain import parse_reply, snippet
from generation.chat.rewrite import code_of, messages_for, place, staged

SOURCE = "def f(items):\n    if items:\n        return items[0]\n    return None\n"


def _selection(doc: Document, first: str, last: str) -> tuple[int, int]:
    text = doc.text
    start = text.index(first)
    return start, text.index(last, start) + len(last)


def test_code_of_takes_the_first_fenced_block_or_the_whole_reply() -> None:
    assert code_of("Sure:\n```python\nx = 1\n```\nand ```y```") == "x = 1"
    assert code_of("x = 2\n") == "x = 2"
    assert code_of("```\nunterminated = 3\n") == "unterminated = 3"


def test_place_indents_following_lines_to_the_selection() -> None:
    doc = Document("file:///t/x.py", SOURCE, "python")
    start, _ = _selection(doc, "if items", "items[0]")
    assert place("if not items:\n    return None\nreturn items[0]", doc, start) == \
        "if not items:\n        return None\n    return items[0]"


def test_staged_accepts_a_rewrite_that_parses_and_drops_one_that_does_not() -> None:
    doc = Document("file:///t/x.py", SOURCE, "python")
    start, end = _selection(doc, "if items", "items[0]")
    good = staged(doc, start, end, "if not items:\n    return None\nreturn items[0]",
                  StageSettings())
    assert good.text is not None and good.text.startswith("if not items:")
    new = doc.source[:start] + good.text.encode() + doc.source[end:]
    assert not Document("file:///t/y.py", new.decode(), "python").has_errors()
    bad = staged(doc, start, end, "if (((:\n", StageSettings())
    assert bad.text is None and any(d.stage == "structure" for d in bad.decisions)


def test_rewrite_prompt_blanks_secrets() -> None:
    text = 'token = "ghp_' + "a" * 36 + '"\nvalue = 1\n'
    doc = Document("file:///t/x.py", text, "python")
    prompt = messages_for(doc, 0, len(doc.source))[1].content
    assert "ghp_" not in prompt and "value = 1" in prompt


def test_parse_reply_and_snippet() -> None:
    note = parse_reply("It is shared.\n```python\ndef f(x=None):\n    pass\n```")
    assert note.explanation == "It is shared." and note.suggestion.startswith("def f(x=None):")
    assert parse_reply("Only words.").suggestion == ""
    source = b"a = 1\nb = 2\nc = 3\nd = 4\n"
    assert snippet(source, 2, 2, context=1) == "    1 | a = 1\n    2 | b = 2\n    3 | c = 3"
