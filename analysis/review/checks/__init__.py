"""The rule registry and `analyze`: one engine for diagnostics (LSP) and `stagecoder review` (CLI).

Rules live one per module (see RULE_MODULES). For each language, the queries of every rule that
supports it are compiled into one tree-sitter query, capture names prefixed with the rule code,
so one pass over the tree (in C) feeds all rules. Selection follows `ReviewSettings`: `select`
and `ignore` take codes or code prefixes ("SC1", "SC30", "ALL"); `perPathIgnores` maps globs to
codes. Generated files (analysis.documents.reader.generated_marker) are not analyzed; the
report says so. Preview rules (below the precision bar on real code) run only with `preview`
on, or when `select` names their exact code (a prefix or "ALL" does not enable them), as in
ruff. A comment `stagecoder: ignore` (or `stagecoder: ignore[SC101,SC2]`) on a finding's first
line suppresses it.

No file costs more than its time budget (`review.timeBudget`, analysis.budget): the query runs
in chunks with the budget checked between them, rules check it between matches, and
`analyze_report` says when (and why) a file was cut short; pathological nesting is cut at
MAX_NESTING levels, where tree-sitter's query would turn quadratic.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Iterable, Sequence
from functools import cache

import msgspec
import pathspec
from tree_sitter import Node, Query

from analysis.budget import Budget, OutOfTime
from analysis.documents.document import Document
from analysis.documents.languages import by_name
from analysis.documents.reader import generated_marker
from analysis.documents.tree_walks import deeper_than
from analysis.review.checks._base import MAX_NESTING, Context, Match, Rule, bounded_cursor
from analysis.review.findings import Finding
from analysis.settings import ReviewSettings, Settings

__all__ = ["RULE_MODULES", "AnalysisReport", "Rule", "all_rules", "analyze", "analyze_report",
           "preview_codes", "rule_for", "selected_codes", "unknown_selectors"]

RULE_MODULES = (
    "unguarded_index",  # SC101
    "unguarded_division",  # SC102
    "optional_dereference",  # SC103
    "optional_iteration",  # SC104
    "dereference_after_null_check",  # SC105
    "inconsistent_naming",  # SC201
    "shadowed_builtin",  # SC202
    "misleading_boolean_name",  # SC203
    "ambiguous_name",  # SC204
    "unreachable_code",  # SC301
    "empty_handler",  # SC302
    "mutable_default",  # SC303
    "constant_comparison",  # SC304
    "is_literal",  # SC305
    "nan_comparison",  # SC306
    "invalid_typeof",  # SC307
    "duplicate_key",  # SC308
)

CHUNK_BYTES = 16_000  # the query runs over spans of about this size, the budget checked between
MAX_CUT_NODES = 4_096  # nodes looked at to place the cuts

_CAPTURE = re.compile(r"@([A-Za-z_][\w.]*)")
_SUPPRESS = re.compile(rb"stagecoder:\s*ignore(?:\[([A-Za-z0-9,\s]*)\])?")


@cache
def all_rules() -> tuple[Rule, ...]:
    """One instance of every rule, ordered by code."""
    rules: list[Rule] = []
    for name in RULE_MODULES:
        module = importlib.import_module(f"analysis.review.checks.{name}")
        rules.append(module.RULE)
    return tuple(sorted(rules, key=lambda r: r.code))


def rule_for(code: str) -> Rule | None:
    """The rule with this code, or None."""
    return next((r for r in all_rules() if r.code == code), None)


def _selected(code: str, selectors: Iterable[str]) -> bool:
    return any(s.upper() == "ALL" or code.startswith(s.strip().upper()) for s in selectors)


def _named(code: str, selectors: Iterable[str]) -> bool:
    """True when a selector is exactly this code (what turns on one preview rule)."""
    return any(s.strip().upper() == code for s in selectors)


def preview_codes() -> frozenset[str]:
    """The codes of the rules that are off by default."""
    return frozenset(r.code for r in all_rules() if r.preview)


@cache
def _glob(pattern: str) -> pathspec.GitIgnoreSpec:
    return pathspec.GitIgnoreSpec.from_lines([pattern])


_BASE_CODES: dict[bytes, frozenset[str]] = {}


def _base_codes(review: ReviewSettings) -> frozenset[str]:
    key = msgspec.json.encode([review.select, review.ignore, review.preview])
    codes = _BASE_CODES.get(key)
    if codes is None:
        codes = _BASE_CODES[key] = frozenset(
            r.code for r in all_rules()
            if (not review.select or _selected(r.code, review.select))
            and not _selected(r.code, review.ignore)
            and (not r.preview or review.preview or _named(r.code, review.select)))
    return codes


def selected_codes(review: ReviewSettings, path: str | None = None) -> frozenset[str]:
    """The codes that run on a file (path relative to the project root, "/"-separated)."""
    codes = _base_codes(review)
    if path is not None and review.per_path_ignores:
        for pattern, ignored in review.per_path_ignores.items():
            if _glob(pattern).match_file(path):
                codes = frozenset(c for c in codes if not _selected(c, ignored))
    return codes


def unknown_selectors(review: ReviewSettings) -> list[str]:
    """Entries of select/ignore/perPathIgnores that match no rule (for a warning)."""
    entries = [*review.select, *review.ignore,
               *(c for codes in review.per_path_ignores.values() for c in codes)]
    return [e for e in entries if not any(_selected(r.code, [e]) for r in all_rules())]


@cache
def _language_query(language: str) -> tuple[Query, dict[str, Rule]]:
    """All rules' queries for a language in one Query, captures renamed `CODE.name`."""
    parts: list[str] = []
    owners: dict[str, Rule] = {}
    for rule in all_rules():
        source = rule.queries.get(language)
        if source:
            parts.append(_CAPTURE.sub(f"@{rule.code}.\\1", source))
            owners[rule.code] = rule
    spec = by_name(language)
    assert spec is not None, language
    return Query(spec.language, "\n".join(parts)), owners


class AnalysisReport(msgspec.Struct, frozen=True):
    """The findings of one document, and why the analysis stopped short (None: it did not)."""

    findings: list[Finding]
    truncated: str | None = None  # a sentence fragment for the user, reasons joined by "; "


def analyze(
    document: Document,
    settings: Settings | ReviewSettings | None = None,
    *,
    path: str | None = None,
    codes: Sequence[str] | frozenset[str] | None = None,
    byte_range: tuple[int, int] | None = None,
    budget: Budget | None = None,
) -> list[Finding]:
    """Every finding of the selected rules in a document, sorted by position then code."""
    return analyze_report(document, settings, path=path, codes=codes, byte_range=byte_range,
                          budget=budget).findings


def analyze_report(
    document: Document,
    settings: Settings | ReviewSettings | None = None,
    *,
    path: str | None = None,
    codes: Sequence[str] | frozenset[str] | None = None,
    byte_range: tuple[int, int] | None = None,
    budget: Budget | None = None,
) -> AnalysisReport:
    """`analyze` within a time budget (`review.timeBudget` unless given), saying if it was cut.

    The query starts no match deeper than MAX_NESTING levels and keeps at most MATCH_LIMIT
    matches in progress (both would make tree-sitter quadratic on pathological nesting); it
    runs in chunks of about CHUNK_BYTES with the budget checked between them, and the rules
    check it between matches. What was found before a stop is kept and sorted as usual.
    """
    if document.tree is None or document.spec is None:
        return AnalysisReport([])
    marker = generated_marker(document.source)
    if marker is not None:  # no one edits it: findings there are noise
        return AnalysisReport([], f"not reviewed: a generated file ({marker})")
    review = settings.review if isinstance(settings, Settings) else settings or ReviewSettings()
    enabled = frozenset(codes) if codes is not None else selected_codes(review, path)
    if not enabled:
        return AnalysisReport([])
    budget = budget if budget is not None else Budget(review.time_budget)
    query, owners = _language_query(document.language)
    root = document.tree.root_node
    reasons: list[str] = []
    findings: list[Finding] = []
    try:
        if deeper_than(root, MAX_NESTING, budget.check):
            reasons.append(f"nesting deeper than {MAX_NESTING:,} levels; code below that depth "
                           "was not checked")
        grouped, crowded = _matches(query, root, enabled, byte_range, budget)
        if crowded:
            reasons.append("too much nesting to follow every pattern; some findings may be "
                           "missing")
        ctx = Context(document, budget)
        for code in sorted(grouped):
            budget.check()
            for finding in owners[code].check(ctx, grouped[code]):
                findings.append(finding)  # one by one: a stop keeps what came before it
    except OutOfTime as stop:
        reasons.append(str(stop))
    if b"stagecoder:" in document.source:
        findings = [f for f in findings if not _suppressed(document, f)]
    findings.sort(key=lambda f: (f.range.start, f.code, f.range.end))
    return AnalysisReport(findings, "; ".join(reasons) or None)


def _matches(query: Query, root: Node, enabled: frozenset[str],
             byte_range: tuple[int, int] | None, budget: Budget
             ) -> tuple[dict[str, list[Match]], bool]:
    """The query's matches by rule code, and whether the match limit was hit."""
    lo, hi = byte_range if byte_range is not None else (root.start_byte, root.end_byte)
    spans = _spans(root, lo, hi)
    seen: set[tuple] | None = set() if len(spans) > 1 else None
    grouped: dict[str, list[Match]] = {}
    crowded = False
    for start, end in spans:
        if budget.expired():
            raise OutOfTime(budget.reason())
        cursor = bounded_cursor(query)
        if byte_range is not None or seen is not None:  # only matches touching this span
            cursor.set_byte_range(start, end)
        for pattern, captures in cursor.matches(root):
            if not captures:
                continue
            code = next(iter(captures)).split(".", 1)[0]
            if code not in enabled or (seen is not None and
                                       _repeated(pattern, captures, start, end, seen)):
                continue
            grouped.setdefault(code, []).append(
                {name.split(".", 1)[1]: nodes for name, nodes in captures.items()})
        crowded = crowded or bool(cursor.did_exceed_match_limit)
    return grouped, crowded


def _repeated(pattern: int, captures: dict[str, list[Node]], start: int, end: int,
              seen: set[tuple]) -> bool:
    """True for a match that an earlier chunk returned already (one that reaches over a cut)."""
    if all(start <= n.start_byte and n.end_byte <= end
           for nodes in captures.values() for n in nodes):
        return False  # wholly inside this chunk: no other chunk returns it
    key = (pattern, *((name, n.start_byte, n.end_byte, n.kind_id)
                      for name, nodes in captures.items() for n in nodes))
    if key in seen:
        return True
    seen.add(key)
    return False


def _spans(root: Node, lo: int, hi: int) -> list[tuple[int, int]]:
    """Consecutive spans covering [lo, hi), cut between nodes, of about CHUNK_BYTES each."""
    if hi - lo <= CHUNK_BYTES:
        return [(lo, hi)]
    cuts = [lo]
    pending = [root]
    visited = 0
    while pending:
        node = pending.pop()
        if node.end_byte <= lo or node.start_byte >= hi:
            continue
        visited += 1
        if node.end_byte - node.start_byte > CHUNK_BYTES and visited < MAX_CUT_NODES:
            pending.extend(reversed(node.children))  # too big for one chunk: cut inside it
        elif node.start_byte - cuts[-1] >= CHUNK_BYTES:
            cuts.append(node.start_byte)
    return [*zip(cuts, [*cuts[1:], hi], strict=True)]


def _suppressed(document: Document, finding: Finding) -> bool:
    line = document.line_bytes(finding.location.line - 1)
    match = _SUPPRESS.search(line)
    if match is None:
        return False
    if match.group(1) is None:
        return True
    return _selected(finding.code, [c for c in match.group(1).decode().split(",") if c.strip()])
