"""Edit history: changes coalesced into whole-line hunks, bounded, nothing from secret files."""

from __future__ import annotations

from generation.next_edit.history import MAX_ENTRIES, EditHistory

URI = "file:///w/calc.py"
BASE = "def total(values):\n    s = 0\n    for v in values:\n        s += v\n    return s\n"


class Typist:
    """Applies changes to a text and records each in the history, as didChange does."""

    def __init__(self, history: EditHistory, text: str = BASE, uri: str = URI) -> None:
        self.history, self.src, self.uri = history, text.encode(), uri

    def change(self, start: int, end: int, text: str) -> None:
        before = self.src
        self.src = before[:start] + text.encode() + before[end:]
        self.history.record(self.uri, before, start, end, text)

    def type(self, at: int, text: str) -> None:
        for i, ch in enumerate(text):
            self.change(at + i, at + i, ch)


def test_typing_a_word_is_one_hunk_with_the_whole_line() -> None:
    history = EditHistory()
    t = Typist(history)
    at = BASE.index(" = 0")
    t.change(at - 1, at, "")  # delete "s"
    t.type(at - 1, "acc")
    hunks = history.hunks(URI)
    assert len(hunks) == 1
    assert hunks[0].old == b"    s = 0\n" and hunks[0].new == b"    acc = 0\n"
    assert hunks[0].line == 1
    assert hunks[0].render("calc.py") == (
        "--- a/calc.py\n+++ b/calc.py\n@@ -1,3 +1,3 @@\n def total(values):\n-    s = 0\n"
        "+    acc = 0\n     for v in values:\n")


def test_edits_far_apart_are_separate_hunks_in_order() -> None:
    history = EditHistory()
    t = Typist(history)
    t.type(BASE.index("values)"), "all_")
    t.type(t.src.index(b"return s") + len("return s"), " * 2")
    rendered = history.render(URI, "calc.py", max_tokens=1000)
    assert rendered == [
        "--- a/calc.py\n+++ b/calc.py\n@@ -1,2 +1,2 @@\n-def total(values):\n"
        "+def total(all_values):\n     s = 0\n",
        "--- a/calc.py\n+++ b/calc.py\n@@ -4,2 +4,2 @@\n         s += v\n-    return s\n"
        "+    return s * 2\n",  # the file's last line: no context below
    ]


def test_typing_a_new_line_below_grows_the_same_hunk() -> None:
    history = EditHistory()
    t = Typist(history)
    end_of_line = BASE.index("\n", BASE.index("s = 0"))
    t.type(end_of_line, "\n    n = 0")
    hunks = history.hunks(URI)
    assert len(hunks) == 1
    assert hunks[0].new == b"    s = 0\n    n = 0\n"


def test_undoing_an_edit_leaves_no_hunk() -> None:
    history = EditHistory()
    t = Typist(history)
    at = BASE.index("0\n")
    t.change(at, at + 1, "1")
    t.change(at, at + 1, "0")
    assert history.hunks(URI) == []


def test_secret_files_record_nothing() -> None:
    history = EditHistory()
    Typist(history, "API_KEY=abc\n", "file:///w/.env").type(0, "X")
    Typist(history, "token = 1\n", "file:///w/conf/private.pem").type(0, "X")
    assert history.hunks("file:///w/.env") == []
    assert history.hunks("file:///w/conf/private.pem") == []
    assert history.size_bytes == 0
    excluded = EditHistory(excludes=["generated/**"])
    Typist(excluded, "x = 1\n", "file:///generated/out.py").type(0, "y")
    assert excluded.hunks("file:///generated/out.py") == []


def test_bounded_in_entries_and_bytes() -> None:
    lines = "".join(f"line{i} = {i}\n" for i in range(200))
    history = EditHistory()
    t = Typist(history, lines)
    for i in range(0, 200, 5):  # 40 separate edits
        at = t.src.index(f"line{i} =".encode())
        t.change(at, at, "#")
    assert len(history.hunks(URI)) == MAX_ENTRIES
    assert history.hunks(URI)[-1].new.startswith(b"#line195")
    small = EditHistory(max_bytes=1000)
    t = Typist(small, lines)
    for i in range(0, 200, 5):
        at = t.src.index(f"line{i} =".encode())
        t.change(at, at, "#")
    assert 0 < small.size_bytes <= 1000
    assert small.hunks(URI)[-1].new.startswith(b"#line195")  # the newest stay


def test_render_keeps_the_newest_within_the_token_budget_and_masks_secrets() -> None:
    history = EditHistory()
    t = Typist(history, "a = 1\n" + "\n" * 20 + "b = 2\n")
    t.type(0, "x")
    at = t.src.index(b"b = 2")
    t.change(at, at + 5, 'password = "hunter2hunter2"')
    newest = history.render(URI, "calc.py", max_tokens=30)  # 105 bytes: one hunk
    assert len(newest) == 1 and "password" in newest[0]
    assert "hunter2" not in newest[0]  # masked like every other text that goes to a model
    assert len(history.render(URI, "calc.py", max_tokens=1000)) == 2


def test_whole_text_change_is_recorded_as_the_span_that_differs() -> None:
    history = EditHistory()
    after = BASE.replace("return s", "return s + 1")
    history.record_replace_all(URI, BASE.encode(), after.encode())
    hunks = history.hunks(URI)
    assert len(hunks) == 1 and hunks[0].old == b"    return s\n"
    assert hunks[0].new == b"    return s + 1\n"
