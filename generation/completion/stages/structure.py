"""Structure stage: cut raw model output where the hole's syntactic unit ends, drop text that
repeats the suffix, and keep only a cut that parses in context with no new error node.

The hole is the context's (analysis/context/hole.py): this stage maps its kind and line facts
onto the shape it cuts (`unit_for`) and never reads the cursor's surroundings itself.

The end of the unit is found from the syntax, not from fixed stop strings: a bracket that closes
something opened before the cursor, a line that leaves the hole's block (Python dedent), a new
top-level definition (or a `__main__` block) after the completion's own code, the end of the
statement for an expression hole, the end of the line for a hole inside a line. Strings and
comments are lexed so that `a // b`, "#" inside strings or blank lines inside a body survive.

On a line with no code before the cursor the unit is statements, not one line: the blank lines a
model often writes first are dropped (the cursor's line is already a fresh line), and the
completion's first line sets the indentation its block keeps (a model that answers a hole in a
loop's body with a statement after the loop is not cut after one line). When code follows the
cursor on its line, the indentation the completion ends with is kept: it is what that code gets.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from analysis.context.hole import Hole, HoleKind
from analysis.context.related import comment_syntax
from analysis.documents.document import Document
from analysis.documents.node_types import PLAIN, table_for
from analysis.documents.trial import Trial, TrialParser

Shape = Literal["line", "expression", "block"]
_OPENERS = "([{"
_CLOSERS = ")]}"
_CONTINUATION = ("\\", ",", "(", "[", "{", "+", "-", "*", "/", "=", "&&", "||", "?", ".", "%",
                 "|", "&", "<", ">")
_WORD_CONTINUATION = re.compile(r"(?:^|\W)(?:and|or|not|in|is)$")
_PUNCT_TAIL = set(")]};:,'\"`>")
MAX_TRIALS = 6


@dataclass(frozen=True, slots=True)
class Unit:
    """How this stage cuts for one hole: the shape of text it expects, the hole's facts, and
    the language's lexing facts. Made from the context's `Hole` alone (`unit_for`)."""

    hole: Hole
    shape: Shape  # line: stop at the line's end; expression: at the statement's; block: dedent
    suffix_lines: tuple[str, ...]  # what follows the cursor, line by line, for repeat checks
    line_comment: str
    indent_sensitive: bool  # Python: leaving the block is a dedent
    plain: bool  # no grammar: brackets in prose mean nothing, lines are the only unit
    top_level: re.Pattern[str] | None = None  # a line that starts a new top-level definition

    @property
    def offset(self) -> int:
        """Where the completion goes, in bytes."""
        return self.hole.offset


def shape_of(hole: Hole, opener: str, plain: bool) -> Shape:
    """The shape of text a hole expects, from its kind and line facts.

    Inside a string or a comment, and inside an argument list that goes on after the cursor,
    the completion finishes the line. An argument list left open at the end of the line
    (`max(a,|`) is a statement still being written: the completion may go on over several
    lines until the call closes. A blank line, or a line that opens a block, takes statements.
    """
    rest = hole.line_rest.strip()
    if hole.in_literal or (hole.kind is HoleKind.ARGUMENTS and rest):
        return "line"
    if hole.kind is HoleKind.ARGUMENTS:
        return "expression"
    if rest and hole.code_before:
        return "line"
    if not hole.code_before or hole.line_before.rstrip().endswith(opener):
        return "block"
    return "line" if plain else "expression"


def unit_for(hole: Hole, language: str) -> Unit:
    """The unit this stage cuts at a hole of a document in `language`."""
    table = table_for(language)
    plain = table is PLAIN
    shape = shape_of(hole, table.opener, plain)
    rest = hole.line_rest.strip()
    following = ((rest,) if rest and shape == "block" else ()) + hole.suffix_lines
    top = (TOP_LEVEL if hole.base_indent > 0 else DEFINITION).get(language)
    return Unit(hole, shape, following[:3], comment_syntax(language), table.indent_sensitive,
                plain, top)


# A line at column 0 that starts a new top-level definition: where a completion that ran on
# past its unit goes next (a function of its own, a class, the `__main__` block). Inside a scope
# (the hole is indented) any top-level statement start leaves it; at the top level only a new
# definition ends the unit (consecutive imports or constants are one unit there).
_JS_DEF = (r"(?:export\s+)?(?:default\s+)?(?:declare\s+)?(?:async\s+)?"
           r"(?:function\b|class\b|interface\b|enum\b|namespace\b")
_PY_DEF = r"(?:async\s+def|def|class)\s|if\s+__name__\s*==|@\w"
_GO_DEF = r"(?:func|type)\b"
_RUST_DEF = r"(?:pub(?:\([^)]*\))?\s+)?(?:fn|impl|struct|enum|trait|mod)\b|#\["
DEFINITION: dict[str, re.Pattern[str]] = {
    "python": re.compile(_PY_DEF),
    **dict.fromkeys(("javascript", "typescript", "tsx"), re.compile(_JS_DEF + ")")),
    "go": re.compile(_GO_DEF), "rust": re.compile(_RUST_DEF),
}
TOP_LEVEL: dict[str, re.Pattern[str]] = {
    "python": re.compile(_PY_DEF + r"|import\s|from\s"),
    **dict.fromkeys(("javascript", "typescript", "tsx"), re.compile(
        _JS_DEF + r"|type\s+\w|(?:const|let|var)\s+[\w{\[]|import\b)")),
    "go": re.compile(_GO_DEF + r"|(?:var|const|import|package)\b"),
    "rust": re.compile(_RUST_DEF + r"|(?:pub\s+)?(?:use|const|static|type)\b"),
}


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


def lead_in(unit: Unit, raw: str) -> str:
    """`raw` without the blank lines it starts with, where the cursor's line has no code before
    the cursor (the cursor already stands on a fresh line); the first code line loses the
    indentation the cursor's line already has. Unchanged when that line is indented less than
    the cursor (the line break is what puts it there) or when nothing but blank lines came."""
    raw = raw.replace("\r\n", "\n")
    if unit.hole.code_before or unit.shape != "block" or unit.plain:
        return raw
    lines = raw.split("\n")
    k = 0
    while k < len(lines) - 1 and not lines[k].strip():
        k += 1
    if k == 0 or not lines[k].strip():
        return raw
    first, have = lines[k], unit.hole.line_before
    if have:
        if not first.startswith(have):
            return raw
        first = first[len(have):]
    return "\n".join([first, *lines[k + 1:]])


def _block_indent(unit: Unit, raw: str) -> int:
    """The indentation a block completion keeps: the hole's, or less where the completion's first
    line starts further out on a line with no code before the cursor (the model chose where its
    statements go: after a loop rather than in its body)."""
    base = unit.hole.base_indent
    if unit.hole.code_before or unit.shape != "block":
        return base
    first = raw.split("\n", 1)[0]
    if not first.strip():
        return base
    column = _indent_width(unit.hole.line_before + first)
    return min(base, column)


def cut(unit: Unit, raw: str) -> tuple[str, str]:
    """The syntactic cut of `raw` for this hole, and a word on where it stopped."""
    raw = lead_in(unit, raw)
    lexer = _Lexer(unit.line_comment, unit.indent_sensitive)
    lines = raw.split("\n")
    following = unit.hole.line_rest.strip() or (unit.suffix_lines[0] if unit.suffix_lines
                                                else "")
    base_indent = _block_indent(unit, raw)
    closing = False  # past the statement, finishing blocks the file leaves open (see below)

    def keep_closer(char: str) -> bool:
        # A closer the suffix already starts with is a repeat: cut before it. Otherwise the
        # completion closes a bracket opened before the cursor, which the file still lacks.
        # In plain text brackets are prose: never a unit boundary.
        return unit.plain or not following.startswith(char)

    pos = 0
    for i, line in enumerate(lines):
        leaves_block = (i > 0 and unit.shape == "block" and unit.indent_sensitive
                        and lexer.quote is None  # a docstring's lines at column 0 stay in it
                        and line.strip() and _indent_width(line) < base_indent)
        if leaves_block:
            return _trim_block(raw[:pos], unit), f"dedent at line {i + 1}"
        if (i > 0 and unit.top_level is not None and lexer.depth == 0 and lexer.quote is None
                and not lexer.block_comment and unit.shape != "line"
                and unit.top_level.match(line) and raw[:pos].strip()):
            return (_trim_block(raw[:pos], unit),
                    f"new top-level definition at line {i + 1}")
        closer = lexer.feed_line(line, keep_closer)
        if lexer.kept_closer and unit.shape == "block" and not unit.plain:
            return _trim_block(raw[:pos + len(line)], unit), f"closes the block at line {i + 1}"
        if closer is not None:
            head = line[:closer]
            text = raw[:pos] if not head.strip() and i > 0 else raw[:pos + closer]
            return _trim_block(text, unit), f"closing bracket at line {i + 1}"
        if unit.shape == "line":
            return raw[:pos + len(line)].rstrip(), "end of line"
        if closing and i > 0 and line[:1] != "" and line[0] in _CLOSERS:
            return raw[:pos + len(line)].rstrip(), f"closes the enclosing blocks at line {i + 1}"
        if unit.shape == "expression" and lexer.depth == 0 and lexer.quote is None:
            code = line[: lexer.comment_at].rstrip() if lexer.comment_at is not None else line
            code = code.rstrip()
            if code and not code.endswith(_CONTINUATION) and not _WORD_CONTINUATION.search(code):
                if not _unclosed_above(unit):
                    return raw[:pos + len(line)].rstrip(), "end of statement"
                closing = True
        pos += len(line) + 1
    return _trim_block(raw, unit) + _tail_indent(unit, raw), "end of output"


def _unclosed_above(unit: Unit) -> bool:
    """True when the blocks around an indented cursor are left open in the file: the next code
    after the cursor starts a new top-level statement (the function being typed is the last
    thing before it). A completion may then finish them: its statement, the rest of the body
    and the closing brace at column 0 are one unit. Brace languages only."""
    return (not unit.indent_sensitive and not unit.plain and unit.top_level is not None
            and unit.hole.base_indent > 0 and bool(unit.suffix_lines)
            and unit.top_level.match(unit.suffix_lines[0]) is not None)


def _tail_indent(unit: Unit, raw: str) -> str:
    """The indentation a block completion ends with, where code follows the cursor on its line:
    the model wrote where that code goes (into the block it just opened, say)."""
    if unit.shape != "block" or unit.hole.newline_follows or not unit.hole.line_rest.strip():
        return ""
    tail = raw[raw.rfind("\n") + 1:] if "\n" in raw else ""
    return tail if tail and not tail.strip() and raw[:-len(tail)].strip() else ""


def _trim_block(text: str, unit: Unit) -> str:
    """Drop trailing blank lines; keep a final newline only where the suffix needs one."""
    lines = text.split("\n")
    while lines and not lines[-1].strip():
        lines.pop()
    body = "\n".join(line.rstrip() for line in lines)
    if body and unit.shape == "block" and not unit.hole.newline_follows and "\n" in text:
        body += "\n"
    return body


def drop_suffix_repeat(unit: Unit, text: str) -> str:
    """Remove a tail that repeats what already follows the cursor."""
    if unit.shape == "line":
        rest = unit.hole.line_rest
        for k in range(len(rest), 0, -1):
            tail = rest[:k]
            if set(tail) <= _PUNCT_TAIL and text.endswith(tail):
                return text[: len(text) - k]
        return text
    if not unit.suffix_lines:
        return text
    lines = text.split("\n")
    offsets = [0]
    for line in lines:
        offsets.append(offsets[-1] + len(line) + 1)
    for j in range(len(lines)):
        following = [ln.strip() for ln in lines[j:] if ln.strip()]
        if not following or not lines[j].strip():
            continue
        k = min(2, len(following), len(unit.suffix_lines))
        if following[:k] != list(unit.suffix_lines[:k]):
            continue
        if k >= 2 or len(unit.suffix_lines[0]) >= 4:
            return _trim_block(text[: offsets[j]], unit)
    return text


def _shorter(unit: Unit, text: str) -> list[str]:
    """Shorter cuts to try when the full cut does not parse, longest first."""
    out: list[str] = []
    if "\n" in text:
        lines = text.split("\n")
        for n in range(len(lines) - 1, 0, -1):
            out.append(_trim_block("\n".join(lines[:n]) + "\n", unit))
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


def run(doc: Document, unit: Unit, raw: str, trials: TrialParser | None = None
        ) -> StructureResult:
    """Cut, de-duplicate and validate one raw completion."""
    text, where = cut(unit, raw)
    deduped = drop_suffix_repeat(unit, text)
    detail = where + ("; dropped text repeating the suffix" if deduped != text else "")
    text = deduped
    if not text.strip():
        return StructureResult(None, "dropped", detail + "; nothing left")
    trials = trials or TrialParser(doc, unit.offset)
    first = trials.trial(text)
    if first.ok:
        changed = text != raw.replace("\r\n", "\n")
        return StructureResult(text, "cut" if changed else "kept", detail, first)
    for cand in _shorter(unit, text)[: MAX_TRIALS - 1]:
        result = trials.trial(cand)
        if result.ok:
            return StructureResult(cand, "truncated", detail + "; truncated to the longest "
                                   "prefix that parses", result)
    return StructureResult(None, "dropped", detail + f"; adds {first.errors_after} error "
                           f"node(s) where the file had {first.errors_before}", first)


def unit_complete(unit: Unit, partial: str) -> bool:
    """True once streamed text already holds the whole unit (the rest would be cut anyway)."""
    complete_lines = partial[: partial.rfind("\n") + 1]
    if not complete_lines:
        return False
    _, where = cut(unit, complete_lines)
    return where != "end of output"
