"""Structure stage: cut raw model output where the hole's syntactic unit ends, drop text that
repeats the suffix, and keep only a cut that parses in context with no new error node.

The end of the unit is found from the syntax, not from fixed stop strings: a bracket that closes
something opened before the cursor, a line that leaves the hole's block (Python dedent), the end
of the statement for an expression hole, the end of the line for a hole inside a line. Strings
and comments are lexed so that `a // b`, "#" inside strings or blank lines inside a body survive.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from itertools import islice
from typing import Literal

from analysis.context.hole import MAX_ANCESTORS
from analysis.documents.document import Document
from analysis.documents.tree_walks import lineage
from analysis.documents.trial import Trial, TrialParser

HoleKind = Literal["line", "expression", "block"]
_OPENERS = "([{"
_CLOSERS = ")]}"
_CONTINUATION = ("\\", ",", "(", "[", "{", "+", "-", "*", "/", "=", "&&", "||", "?", ".", "%",
                 "|", "&", "<", ">")
_WORD_CONTINUATION = re.compile(r"(?:^|\W)(?:and|or|not|in|is)$")
_PUNCT_TAIL = set(")]};:,'\"`>")
MAX_TRIALS = 6


@dataclass(frozen=True, slots=True)
class Hole:
    """Where the completion goes and what shape of text it should be."""

    offset: int
    kind: HoleKind
    base_indent: int  # columns of the statements the hole holds (block kind)
    line_rest: str  # text after the cursor on its line
    suffix_lines: tuple[str, ...]  # the next non-blank lines after the cursor's line, stripped
    indent_sensitive: bool  # Python: leaving the block is a dedent
    line_comment: str
    newline_follows: bool  # the suffix starts with a line break
    plain: bool = False  # no grammar: brackets in prose mean nothing, lines are the only unit


@dataclass(frozen=True, slots=True)
class StructureResult:
    """The stage's decision: the text to keep (None: dropped) and why."""

    text: str | None
    decision: str  # "kept", "cut", "truncated", "dropped"
    detail: str
    trial: Trial | None = None


def _indent_width(line: str) -> int:
    stripped = line.lstrip(" \t")
    return len(line[: len(line) - len(stripped)].expandtabs(8))


def _context_kind(kind_hint: str | None) -> HoleKind | None:
    """Map the context builder's hole kinds onto the three shapes this stage cuts."""
    if kind_hint in (None, ""):
        return None
    if kind_hint in ("string", "comment", "argument_list", "arguments"):
        return "line"
    if kind_hint == "expression":
        return "expression"
    return "block"  # statement, block, function body


def find_hole(doc: Document, offset: int, kind_hint: str | None = None) -> Hole:
    """Describe the hole at `offset` from the lines around it (and the context's hint)."""
    pos = doc.position_at(offset, "utf-8")
    line_start, line_end = doc.line_span(pos.line)
    before = doc.source[line_start:offset].decode("utf-8", "replace")
    rest = doc.source[offset:line_end].decode("utf-8", "replace")
    spec = doc.spec
    indent_sensitive = spec is not None and spec.name == "python"
    comment = spec.line_comment if spec else "#"
    unit = _indent_unit(doc, pos.line)
    code_before = before.strip()
    if rest.strip() and code_before:
        kind: HoleKind = "line"
        base = _indent_width(before)
    elif not code_before:
        kind = "block"
        base = len(before.expandtabs(8)) if before else _expected_indent(doc, pos.line, unit)
    elif code_before.endswith(":" if indent_sensitive else "{"):
        kind = "block"
        base = _indent_width(before) + unit
    else:
        kind = "expression"
        base = _indent_width(before)
    if _in_comment_or_string(doc, offset):
        kind = "line"
    hinted = _context_kind(kind_hint)
    if hinted == "line" or (hinted == "expression" and kind == "block" and code_before):
        kind = hinted
    suffix_lines = [rest.strip()] if rest.strip() and kind == "block" else []
    line = pos.line + 1
    while line < doc.line_count and len(suffix_lines) < 3:
        text = doc.line_text(line).strip()
        if text:
            suffix_lines.append(text)
        line += 1
    newline_follows = doc.source[offset:offset + 1] in (b"\n", b"\r") or offset == len(doc.source)
    if spec is None and kind == "expression":
        kind = "line"
    return Hole(offset, kind, base, rest, tuple(suffix_lines), indent_sensitive, comment,
                newline_follows, plain=spec is None)


def _in_comment_or_string(doc: Document, offset: int) -> bool:
    """True when the cursor sits inside (or at the end of) a comment or a string literal."""
    if doc.tree is None or offset == 0:
        return False
    root = doc.tree.root_node
    leaf = root.descendant_for_byte_range(offset - 1, offset - 1)
    if leaf is None:
        return False
    for node in islice(lineage(leaf, root), MAX_ANCESTORS):  # literals are near the leaves
        if "comment" in node.type:
            return True
        if node.type in ("string", "string_literal", "template_string", "raw_string_literal",
                         "interpreted_string_literal", "string_content"):
            return node.start_byte < offset < node.end_byte
    return False


def _indent_unit(doc: Document, line: int) -> int:
    """Indentation step of the file near `line` (4 when nothing says otherwise)."""
    widths = set()
    for i in range(max(0, line - 60), min(doc.line_count, line + 60)):
        text = doc.line_text(i)
        if text.strip():
            widths.add(_indent_width(text))
    steps = sorted(b - a for a, b in zip(sorted(widths), sorted(widths)[1:], strict=False))
    return steps[0] if steps else 4


def _expected_indent(doc: Document, line: int, unit: int) -> int:
    """Indentation for a statement on an empty line: the previous code line's, one deeper
    after a block opener."""
    for i in range(line - 1, -1, -1):
        text = doc.line_text(i).rstrip()
        if text.strip():
            width = _indent_width(text)
            return width + unit if text.endswith((":", "{", "(", "[")) else width
    return 0


class _Lexer:
    """Tracks bracket depth over completion text, skipping strings and comments."""

    def __init__(self, line_comment: str, python: bool) -> None:
        self.depth = 0
        self.quote: str | None = None
        self.block_comment = False
        self.line_comment = line_comment
        self.python = python
        self.comment_at: int | None = None  # where the last fed line's comment began
        self.kept_closer = False  # a closer for a bracket opened before the cursor was kept

    def feed_line(self, line: str, keep_closer: Callable[[str], bool] = lambda c: False
                  ) -> int | None:
        """Consume one line; return the index of a closer that drops depth below 0, unless
        `keep_closer(char)` says the completion must write it (then depth restarts at 0)."""
        i, n = 0, len(line)
        self.comment_at = None
        while i < n:
            ch = line[i]
            if self.block_comment:
                if line.startswith("*/", i):
                    self.block_comment = False
                    i += 2
                    continue
                i += 1
                continue
            if self.quote:
                if ch == "\\":
                    i += 2
                    continue
                if line.startswith(self.quote, i):
                    i += len(self.quote)
                    self.quote = None
                    continue
                i += 1
                continue
            if line.startswith(self.line_comment, i):
                self.comment_at = i
                break
            if not self.python and line.startswith("/*", i):
                self.block_comment = True
                i += 2
                continue
            if ch in "\"'`":
                triple = line[i:i + 3]
                self.quote = triple if self.python and triple in ('"""', "'''") else ch
                i += len(self.quote)
                continue
            if ch in _OPENERS:
                self.depth += 1
            elif ch in _CLOSERS:
                self.depth -= 1
                if self.depth < 0:
                    if not keep_closer(ch):
                        return i
                    self.depth = 0
                    self.kept_closer = True
            i += 1
        if self.quote and len(self.quote) == 1 and self.quote != "`":
            self.quote = None  # single-line strings end with their line
        return None


def cut(hole: Hole, raw: str) -> tuple[str, str]:
    """The syntactic cut of `raw` for this hole, and a word on where it stopped."""
    raw = raw.replace("\r\n", "\n")
    lexer = _Lexer(hole.line_comment, hole.indent_sensitive)
    lines = raw.split("\n")
    following = hole.line_rest.strip() or (hole.suffix_lines[0] if hole.suffix_lines else "")

    def keep_closer(char: str) -> bool:
        # A closer the suffix already starts with is a repeat: cut before it. Otherwise the
        # completion closes a bracket opened before the cursor, which the file still lacks.
        # In plain text brackets are prose: never a unit boundary.
        return hole.plain or not following.startswith(char)

    pos = 0
    for i, line in enumerate(lines):
        leaves_block = (i > 0 and hole.kind == "block" and hole.indent_sensitive
                        and line.strip() and _indent_width(line) < hole.base_indent)
        if leaves_block:
            return _trim_block(raw[:pos], hole), f"dedent at line {i + 1}"
        closer = lexer.feed_line(line, keep_closer)
        if lexer.kept_closer and hole.kind == "block" and not hole.plain:
            return _trim_block(raw[:pos + len(line)], hole), f"closes the block at line {i + 1}"
        if closer is not None:
            head = line[:closer]
            text = raw[:pos] if not head.strip() and i > 0 else raw[:pos + closer]
            return _trim_block(text, hole), f"closing bracket at line {i + 1}"
        if hole.kind == "line":
            return raw[:pos + len(line)].rstrip(), "end of line"
        if hole.kind == "expression" and lexer.depth == 0 and lexer.quote is None:
            code = line[: lexer.comment_at].rstrip() if lexer.comment_at is not None else line
            code = code.rstrip()
            if code and not code.endswith(_CONTINUATION) and not _WORD_CONTINUATION.search(code):
                return raw[:pos + len(line)].rstrip(), "end of statement"
        pos += len(line) + 1
    return _trim_block(raw, hole), "end of output"


def _trim_block(text: str, hole: Hole) -> str:
    """Drop trailing blank lines; keep a final newline only where the suffix needs one."""
    lines = text.split("\n")
    while lines and not lines[-1].strip():
        lines.pop()
    body = "\n".join(line.rstrip() for line in lines)
    if body and hole.kind == "block" and not hole.newline_follows and "\n" in text:
        body += "\n"
    return body


def drop_suffix_repeat(hole: Hole, text: str) -> str:
    """Remove a tail that repeats what already follows the cursor."""
    if hole.kind == "line":
        rest = hole.line_rest
        for k in range(len(rest), 0, -1):
            tail = rest[:k]
            if set(tail) <= _PUNCT_TAIL and text.endswith(tail):
                return text[: len(text) - k]
        return text
    if not hole.suffix_lines:
        return text
    lines = text.split("\n")
    offsets = [0]
    for line in lines:
        offsets.append(offsets[-1] + len(line) + 1)
    for j in range(len(lines)):
        following = [ln.strip() for ln in lines[j:] if ln.strip()]
        if not following or not lines[j].strip():
            continue
        k = min(2, len(following), len(hole.suffix_lines))
        if following[:k] != list(hole.suffix_lines[:k]):
            continue
        if k >= 2 or len(hole.suffix_lines[0]) >= 4:
            return _trim_block(text[: offsets[j]], hole)
    return text


def _shorter(hole: Hole, text: str) -> list[str]:
    """Shorter cuts to try when the full cut does not parse, longest first."""
    out: list[str] = []
    if "\n" in text:
        lines = text.split("\n")
        for n in range(len(lines) - 1, 0, -1):
            out.append(_trim_block("\n".join(lines[:n]) + "\n", hole))
    else:
        for i in range(len(text) - 1, 0, -1):
            if text[i] in " ,;" or (text[i] in _CLOSERS and i + 1 < len(text)):
                out.append(text[: i + (text[i] in _CLOSERS)].rstrip())
    seen, unique = {text}, []
    for cand in out:
        if cand and cand not in seen:
            seen.add(cand)
            unique.append(cand)
    return unique


def run(doc: Document, hole: Hole, raw: str, trials: TrialParser | None = None) -> StructureResult:
    """Cut, de-duplicate and validate one raw completion."""
    text, where = cut(hole, raw)
    deduped = drop_suffix_repeat(hole, text)
    detail = where + ("; dropped text repeating the suffix" if deduped != text else "")
    text = deduped
    if not text.strip():
        return StructureResult(None, "dropped", detail + "; nothing left")
    trials = trials or TrialParser(doc, hole.offset)
    first = trials.trial(text)
    if first.ok:
        changed = text != raw.replace("\r\n", "\n")
        return StructureResult(text, "cut" if changed else "kept", detail, first)
    for cand in _shorter(hole, text)[: MAX_TRIALS - 1]:
        result = trials.trial(cand)
        if result.ok:
            return StructureResult(cand, "truncated", detail + "; truncated to the longest "
                                   "prefix that parses", result)
    return StructureResult(None, "dropped", detail + f"; adds {first.errors_after} error "
                           f"node(s) where the file had {first.errors_before}", first)


def unit_complete(hole: Hole, partial: str) -> bool:
    """True once streamed text already holds the whole unit (the rest would be cut anyway)."""
    complete_lines = partial[: partial.rfind("\n") + 1]
    if not complete_lines:
        return False
    _, where = cut(hole, complete_lines)
    return where != "end of output"
