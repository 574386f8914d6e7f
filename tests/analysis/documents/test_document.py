"""Document: positions in every encoding, line breaks, and incremental edits vs full parses."""

from __future__ import annotations

import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from analysis.documents.document import Document

BREAK = re.compile(r"\r\n|\r|\n")


def lsp_position(text: str, index: int, encoding: str) -> tuple[int, int]:
    """(line, character) of a str index, with LSP's three line breaks."""
    line, line_start = 0, 0
    for m in BREAK.finditer(text):
        if m.end() > index:
            break
        line, line_start = line + 1, m.end()
    prefix = text[line_start:index]
    if encoding == "utf-8":
        return line, len(prefix.encode("utf-8"))
    if encoding == "utf-16":
        return line, len(prefix.encode("utf-16-le")) // 2
    return line, len(prefix)


def test_positions_round_trip_multibyte():
    text = "a = 'é😀'\r\nb = 1\rc\n"
    doc = Document("file:///t.py", text, "python")
    assert doc.line_count == 4
    assert [doc.line_text(i) for i in range(4)] == ["a = 'é😀'", "b = 1", "c", ""]
    emoji = text.index("😀")
    for enc in ("utf-8", "utf-16", "utf-32"):
        line, col = lsp_position(text, emoji + 1, enc)
        offset, clamped = doc.offset_at(line, col, enc)
        assert not clamped
        assert offset == len(text[: emoji + 1].encode())
        pos = doc.position_at(offset, enc)
        assert (pos.line, pos.character) == (line, col)


def test_offsets_never_split_characters():
    doc = Document("file:///t.py", "é😀x\n", "python")
    # utf-16: character 2 is inside the surrogate pair of 😀; utf-8: 1 is inside é.
    assert doc.offset_at(0, 2, "utf-16") == (2, True)
    assert doc.offset_at(0, 1, "utf-8") == (0, True)
    assert doc.offset_at(0, 3, "utf-8") == (2, True)
    assert doc.offset_at(0, 99, "utf-16") == (len("é😀x".encode()), True)
    assert doc.offset_at(7, 0, "utf-16") == (len(doc.source), True)
    assert doc.offset_at(-1, 0, "utf-16")[1] is True


def test_crlf_edit_across_break():
    doc = Document("file:///t.py", "x = 1\r\ny = 2\r\n", "python")
    doc.apply_edit((0, 5), (1, 0), "\n", "utf-16")
    assert doc.text == "x = 1\ny = 2\r\n"
    assert doc.line_count == 3 and doc.line_text(1) == "y = 2"


def test_unknown_language_and_empty():
    doc = Document("file:///notes.txt", "", None)
    assert doc.tree is None and doc.language == "plaintext" and doc.line_count == 1
    doc.apply_edit((0, 0), (0, 0), "hello\nworld", "utf-16")
    assert doc.text == "hello\nworld" and doc.line_count == 2


def test_invalid_utf8_from_bytes():
    doc = Document.from_bytes("file:///b.py", b"x = '\xff'\n")
    assert doc.decode_errors and "\ufffd" in doc.text and doc.tree is not None


def test_too_large_is_plain_text():
    doc = Document("file:///big.py", "x = 1\n" * 100, "python", max_bytes=100)
    assert doc.too_large and doc.tree is None and doc.line_count == 101


ALPHABET = st.sampled_from([*"abc xyz_=():,.'\"#+-*/0123456789",
                            "\n", "\n", "    ", "é", "ß", "😀", "中", "\r\n", "\r", "def ",
                            "return ", "if ", "else:", "\t"])
FRAGMENT = st.lists(ALPHABET, max_size=12).map("".join)
BASE = ("def grüße(x):\n    return x // 2  # 😀\n\nclass K:\n    v = '中文'\r\n"
        "    def m(self):\n        pass\n")


def _snap(text: str, i: int) -> int:
    """Move an index off the middle of a CRLF pair (no LSP position points there)."""
    return i - 1 if 0 < i < len(text) and text[i - 1] == "\r" and text[i] == "\n" else i


@st.composite
def edit_scripts(draw):
    text = start = draw(st.sampled_from([BASE, BASE.replace("\r\n", "\n"), ""]))
    edits = []
    for _ in range(draw(st.integers(1, 12))):
        a = draw(st.integers(0, len(text)))
        b = draw(st.integers(a, min(len(text), a + 20)))
        a, b = _snap(text, a), _snap(text, b)
        new = draw(FRAGMENT)
        edits.append((a, b, new))
        text = text[:a] + new + text[b:]
    return start, edits


def _nodes(root) -> list[tuple]:
    """Every node with its byte span and points, in document order."""
    out, stack = [], [root]
    while stack:
        node = stack.pop()
        out.append((node.type, node.start_byte, node.end_byte,
                    tuple(node.start_point), tuple(node.end_point)))
        stack.extend(reversed(node.children))
    return out


@pytest.mark.parametrize("encoding", ["utf-8", "utf-16", "utf-32"])
@pytest.mark.parametrize("language", ["python", "javascript", "go"])
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_random_incremental_edits_match_full_parse(encoding, language, data):
    start_text, script = data.draw(edit_scripts())
    doc = Document("file:///t", start_text, language)
    text = start_text
    for a, b, new in script:
        start = lsp_position(text, a, encoding)
        end = lsp_position(text, b, encoding)
        result = doc.apply_edit(start, end, new, encoding)
        assert not result.clamped
        text = text[:a] + new + text[b:]
        assert doc.text == text
    fresh = Document("file:///t", text, language)
    assert doc.source == text.encode("utf-8")
    if fresh.tree.root_node.has_error:
        # tree-sitter's error recovery is not the same after an incremental reparse as after a
        # fresh one (reproduced with py-tree-sitter alone, correct edit points, six edits of
        # BASE); such trees must still agree on whether there is an error and cover the text.
        assert doc.tree.root_node.has_error
        assert (doc.tree.root_node.start_byte, doc.tree.root_node.end_byte) == (
            fresh.tree.root_node.start_byte, fresh.tree.root_node.end_byte)
        # Every node's points agree with its bytes: wrong edit points would break this.
        for _, start_b, end_b, start_p, end_p in _nodes(doc.tree.root_node):
            assert start_p == tuple(fresh.point_at(start_b))
            assert end_p == tuple(fresh.point_at(end_b))
    else:
        assert str(doc.tree.root_node) == str(fresh.tree.root_node)
        assert _nodes(doc.tree.root_node) == _nodes(fresh.tree.root_node)
    assert doc.line_count == fresh.line_count
    assert all(doc.line_text(i) == fresh.line_text(i) for i in range(doc.line_count))


# ---------------------------------------------------------------------- the position codec

SURROGATE_TEXT = "    return\n    print('dead')\n\udc00x"


def _units(text: str, encoding: str) -> int:
    """Position units of a str, counted by Python's codecs (the oracle for the codec)."""
    if encoding == "utf-8":
        return len(text.encode("utf-8", "surrogatepass"))
    if encoding == "utf-16":
        return len(text.encode("utf-16-le", "surrogatepass")) // 2
    return len(text)


def _lines(text: str) -> list[str]:
    return BREAK.split(text)


@pytest.mark.parametrize("encoding", ["utf-8", "utf-16", "utf-32"])
def test_lone_surrogate_counts_one_unit(encoding):
    doc = Document("file:///s.py", SURROGATE_TEXT, "python")
    end = doc.position_at(len(doc.source), encoding)
    # The last line is "\udc00x": 2 UTF-16 units, 2 code points, 3 + 1 UTF-8 bytes.
    assert (end.line, end.character) == (2, {"utf-8": 4, "utf-16": 2, "utf-32": 2}[encoding])
    assert doc.offset_at(2, end.character, encoding) == (len(doc.source), False)
    x = doc.source.index(b"x")
    assert doc.offset_at(2, 1 if encoding != "utf-8" else 3, encoding) == (x, False)
    assert (doc.position_at(x, encoding).line, doc.position_at(x, encoding).character) == (
        2, 1 if encoding != "utf-8" else 3)


CODEC_ALPHABET = st.sampled_from(["a", " ", "\n", "\r\n", "\r", "é", "中", "😀", "\udc00",
                                  "\ud800", "\udfff", "\ud83d", "x\u0301"])


@pytest.mark.parametrize("encoding", ["utf-8", "utf-16", "utf-32"])
@settings(max_examples=300, deadline=None)
@given(parts=st.lists(CODEC_ALPHABET, max_size=30), probes=st.lists(
    st.tuples(st.integers(-2, 12), st.integers(-2, 40)), min_size=1, max_size=20))
def test_codec_round_trips_and_stays_inside_the_line(encoding, parts, probes):
    text = "".join(parts)
    doc = Document("file:///r.txt", text, None)
    lines = _lines(text)
    assert doc.line_count == len(lines)
    lengths = [_units(line, encoding) for line in lines]
    for line, content in enumerate(lines):
        # Every character boundary the oracle knows is a position that round-trips exactly.
        boundaries = {_units(content[:i], encoding) for i in range(len(content) + 1)}
        for character in boundaries:
            offset, clamped = doc.offset_at(line, character, encoding)
            assert not clamped
            pos = doc.position_at(offset, encoding)
            assert (pos.line, pos.character) == (line, character)
    for line, character in probes:
        offset, clamped = doc.offset_at(line, character, encoding)
        pos = doc.position_at(offset, encoding)
        assert 0 <= pos.line < len(lines)
        assert 0 <= pos.character <= lengths[pos.line]
        if not clamped:
            assert (pos.line, pos.character) == (line, character)
    for offset in range(len(doc.source) + 1):
        pos = doc.position_at(offset, encoding)
        assert 0 <= pos.character <= lengths[pos.line]
        back, clamped = doc.offset_at(pos.line, pos.character, encoding)
        assert not clamped and back <= offset
        assert doc.position_at(back, encoding) == pos
