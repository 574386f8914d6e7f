"""`stagecoder eval`'s engine: holes cut from the user's own code, completed by the configured
model, measured with the stages on and off.

Holes are cut with tree-sitter in the shapes the engine knows: the rest of a one-line
statement from a token inside it (an expression hole), the body of an `if`/`for`/`while`/`try`
(statements), and a whole function body. Each hole gets one model request, exactly as the
editor sends it (the engine's `complete`: context, prompt, candidates, stages); "stages on" is
the engine's chosen text, "stages off" the first candidate's raw output. Both are scored against
the code that was there: exact match, edit similarity (0-100), syntax validity (the file with the
text in place has no more error nodes than the original), naming flags (the text uses a name or
member the naming stage cannot resolve), and the latency of each request. The same seed cuts the
same holes; with greedy decoding the same model gives the same figures.
"""

from __future__ import annotations

import random
import statistics
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import msgspec
from rapidfuzz import fuzz

from analysis.documents.document import Document
from analysis.documents.node_types import table_for
from analysis.documents.trial import TrialParser
from analysis.scope.names import KnownNames
from analysis.settings import Settings
from generation.completion.engine import CompletionEngine
from generation.completion.pipeline import best
from generation.completion.stages import naming

KINDS = ("line", "block", "function_body")
MAX_PER_FILE = 3  # holes of each kind taken from one file, so one big file does not dominate
_COMPOUND = frozenset({"if_statement", "for_statement", "for_in_statement", "while_statement",
                       "try_statement", "with_statement", "for_range_loop", "if_expression",
                       "while_expression", "for_expression", "enhanced_for_statement"})
_LINE_STATEMENTS = frozenset({"expression_statement", "return_statement", "lexical_declaration",
                              "variable_declaration", "short_var_declaration",
                              "assignment_statement", "let_declaration",
                              "local_variable_declaration"})


@dataclass(frozen=True, slots=True)
class EvalHole:
    """One hole: the file, the byte offset of the cursor, the code that was there, its kind."""

    path: str
    language: str
    source: bytes  # the file as it is (the middle in place)
    offset: int
    middle: str
    kind: str  # line, block, function_body


class Side(msgspec.Struct, rename="camel"):
    """The figures of one column (stages on or off)."""

    exact_match: float
    edit_similarity: float
    syntax_valid: float
    naming_flags: float
    shown: float  # share of holes where some text would be shown


class EvalReport(msgspec.Struct, rename="camel"):
    """What `stagecoder eval` prints: figures per column, per kind, and the latencies."""

    holes: int
    files: int
    seed: int
    stages_on: Side
    stages_off: Side
    by_kind: dict[str, dict[str, Side]]
    latency_ms: dict[str, float]  # p50/p95 of each request and of the server-side work
    errors: int = 0  # requests the model did not answer
    skipped: list[str] = msgspec.field(default_factory=list)  # files not read, one line each


@dataclass(slots=True)
class _Row:
    kind: str
    on: dict[str, float] = field(default_factory=dict)
    off: dict[str, float] = field(default_factory=dict)
    total_ms: float = 0.0
    server_ms: float = 0.0


def cut_holes(docs: Iterable[tuple[str, Document]], count: int, seed: int) -> list[EvalHole]:
    """Up to `count` holes from the documents, picked with `seed` (the same seed, the same
    holes), spread over the three kinds."""
    rng = random.Random(seed)
    pools: dict[str, list[EvalHole]] = {k: [] for k in KINDS}
    for path, doc in docs:
        if doc.tree is None or doc.has_errors() or b"\r" in doc.source:
            continue
        found = _holes_in(path, doc, rng)
        for kind in KINDS:
            mine = [h for h in found if h.kind == kind]
            pools[kind].extend(rng.sample(mine, min(MAX_PER_FILE, len(mine))))
    for pool in pools.values():
        rng.shuffle(pool)
    picked: list[EvalHole] = []
    while len(picked) < count and any(pools.values()):
        for kind in KINDS:
            if pools[kind] and len(picked) < count:
                picked.append(pools[kind].pop())
    return picked


def _holes_in(path: str, doc: Document, rng: random.Random) -> list[EvalHole]:
    assert doc.tree is not None
    table = table_for(doc.language)
    out: list[EvalHole] = []
    stack = [doc.tree.root_node]
    budget = 200_000
    while stack and budget > 0:
        budget -= 1
        node = stack.pop()
        stack.extend(node.children)
        body = node.child_by_field_name("body") or node.child_by_field_name("consequence")
        if body is not None and (node.type in table.functions or node.type in _COMPOUND):
            hole = _body_hole(path, doc, body,
                              "function_body" if node.type in table.functions else "block")
            if hole is not None:
                out.append(hole)
        if node.type in _LINE_STATEMENTS:
            hole = _line_hole(path, doc, node, rng)
            if hole is not None:
                out.append(hole)
    return out


def _line_start(src: bytes, offset: int) -> int:
    return src.rfind(b"\n", 0, offset) + 1


def _line_end(src: bytes, offset: int) -> int:
    nl = src.find(b"\n", offset)
    return len(src) if nl == -1 else nl + 1


def _body_hole(path: str, doc: Document, body, kind: str) -> EvalHole | None:
    src = doc.source
    stmts = [c for c in body.named_children if "comment" not in c.type]
    if len(stmts) < 2:
        return None
    start, end = _line_start(src, stmts[0].start_byte), _line_end(src, stmts[-1].end_byte)
    if src[start:stmts[0].start_byte].strip() or src[stmts[-1].end_byte:end].strip():
        return None  # statements share a line with the braces: not a block of whole lines
    middle = src[start:end].decode("utf-8", "replace")
    return EvalHole(path, doc.language, src, start, middle, kind)


def _line_hole(path: str, doc: Document, stmt, rng: random.Random) -> EvalHole | None:
    src = doc.source
    line_end = _line_end(src, stmt.start_byte)
    if stmt.end_byte > line_end:
        return None  # a multi-line statement is block material
    leaves = []
    stack = [stmt]
    while stack:
        n = stack.pop()
        if n.child_count == 0:
            if n.start_byte > stmt.start_byte:
                leaves.append(n)
        else:
            stack.extend(n.children)
    if not leaves:
        return None
    cut = rng.choice(sorted(leaves, key=lambda n: n.start_byte)).start_byte
    end = line_end - 1 if src[line_end - 1:line_end] == b"\n" else line_end
    middle = src[cut:end].decode("utf-8", "replace")
    if not middle.strip():
        return None
    return EvalHole(path, doc.language, src, cut, middle, "line")


async def evaluate(holes: list[EvalHole], settings: Settings, engine: CompletionEngine,
                   progress: Callable[[int], None] | None = None) -> tuple[list[_Row], int]:
    """Complete every hole once through the engine; the scored rows and the error count."""
    rows: list[_Row] = []
    errors = 0
    for i, hole in enumerate(holes):
        end = hole.offset + len(hole.middle.encode())
        text = (hole.source[:hole.offset] + hole.source[end:]).decode("utf-8", "replace")
        # One document per hole: holes of one file must not share the engine's caches.
        doc = Document(f"{hole.path}#eval-{i}", text, hole.language, path=hole.path)
        started = time.perf_counter()
        outcome = await engine.complete(doc, hole.offset, use_cache=False)
        total_ms = (time.perf_counter() - started) * 1e3
        if outcome.error is not None:
            errors += 1
        else:
            raw = outcome.candidates[0].raw if outcome.candidates else ""
            row = _Row(hole.kind, total_ms=total_ms, server_ms=outcome.server_ms)
            chosen = best(outcome.candidates)
            row.on = _score(hole, doc, outcome.text or "",
                            chosen is not None and not chosen.names_resolve)
            row.off = _score(hole, doc, raw, None)
            rows.append(row)
        if progress is not None:
            progress(i + 1)
    return rows, errors


def _score(hole: EvalHole, doc: Document, text: str, flagged: bool | None) -> dict[str, float]:
    """One text's figures; `flagged` is the stages' own naming verdict (None: ask the naming
    stage about this raw text)."""
    truth = hole.middle.strip()
    pred = text.strip()
    trial = TrialParser(doc, hole.offset).trial(text)
    if flagged is None:
        flagged = False
        if pred and trial.tree is not None:
            known = KnownNames().known(doc, hole.offset)
            flagged = bool(naming.run(text, hole.offset, trial, known, None).unresolved)
    return {"exact": float(bool(pred) and pred == truth),
            "edit": fuzz.ratio(pred, truth), "valid": float(bool(pred) and trial.ok),
            "flagged": float(bool(pred) and flagged), "shown": float(bool(pred))}


def _side(values: list[dict[str, float]]) -> Side:
    def mean(key: str) -> float:
        return round(statistics.fmean(v[key] for v in values), 3) if values else 0.0
    return Side(exact_match=mean("exact"), edit_similarity=round(mean("edit"), 1),
                syntax_valid=mean("valid"), naming_flags=mean("flagged"), shown=mean("shown"))


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 1)


def report(rows: list[_Row], errors: int, files: int, seed: int,
           skipped: list[str]) -> EvalReport:
    """The figures of a run."""
    by_kind = {kind: {"on": _side([r.on for r in rows if r.kind == kind]),
                      "off": _side([r.off for r in rows if r.kind == kind])}
               for kind in KINDS if any(r.kind == kind for r in rows)}
    totals = [r.total_ms for r in rows]
    server = [r.server_ms for r in rows]
    return EvalReport(
        holes=len(rows), files=files, seed=seed,
        stages_on=_side([r.on for r in rows]), stages_off=_side([r.off for r in rows]),
        by_kind=by_kind,
        latency_ms={"requestP50": _percentile(totals, 0.5), "requestP95": _percentile(totals, 0.95),
                    "serverP50": _percentile(server, 0.5), "serverP95": _percentile(server, 0.95)},
        errors=errors, skipped=skipped)
