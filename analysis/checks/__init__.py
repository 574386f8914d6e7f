"""The rule registry and `analyze`: one engine for diagnostics (LSP) and `stagecoder review` (CLI).

Rules live one per module (see RULE_MODULES). For each language, the queries of every rule that
supports it are compiled into one tree-sitter query, capture names prefixed with the rule code,
so one pass over the tree (in C) feeds all rules. Selection follows `ReviewSettings`: `select`
and `ignore` take codes or code prefixes ("SC1", "SC30", "ALL"); `perPathIgnores` maps globs to
codes. A comment `stagecoder: ignore` (or `stagecoder: ignore[SC101,SC2]`) on a finding's first
line suppresses it.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Iterable, Sequence
from functools import cache

import msgspec
import pathspec
from tree_sitter import Query, QueryCursor

from analysis.checks._base import Context, Match, Rule
from analysis.document import Document
from analysis.findings import Finding
from analysis.languages import by_name
from analysis.settings import ReviewSettings, Settings

__all__ = ["RULE_MODULES", "Rule", "all_rules", "analyze", "rule_for", "selected_codes",
           "unknown_selectors"]

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

_CAPTURE = re.compile(r"@([A-Za-z_][\w.]*)")
_SUPPRESS = re.compile(rb"stagecoder:\s*ignore(?:\[([A-Za-z0-9,\s]*)\])?")


@cache
def all_rules() -> tuple[Rule, ...]:
    """One instance of every rule, ordered by code."""
    rules: list[Rule] = []
    for name in RULE_MODULES:
        module = importlib.import_module(f"analysis.checks.{name}")
        rules.append(module.RULE)
    return tuple(sorted(rules, key=lambda r: r.code))


def rule_for(code: str) -> Rule | None:
    """The rule with this code, or None."""
    return next((r for r in all_rules() if r.code == code), None)


def _selected(code: str, selectors: Iterable[str]) -> bool:
    return any(s.upper() == "ALL" or code.startswith(s.strip().upper()) for s in selectors)


@cache
def _glob(pattern: str) -> pathspec.GitIgnoreSpec:
    return pathspec.GitIgnoreSpec.from_lines([pattern])


_BASE_CODES: dict[bytes, frozenset[str]] = {}


def _base_codes(review: ReviewSettings) -> frozenset[str]:
    key = msgspec.json.encode([review.select, review.ignore])
    codes = _BASE_CODES.get(key)
    if codes is None:
        codes = _BASE_CODES[key] = frozenset(
            r.code for r in all_rules()
            if (not review.select or _selected(r.code, review.select))
            and not _selected(r.code, review.ignore))
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


def analyze(
    document: Document,
    settings: Settings | ReviewSettings | None = None,
    *,
    path: str | None = None,
    codes: Sequence[str] | frozenset[str] | None = None,
    byte_range: tuple[int, int] | None = None,
) -> list[Finding]:
    """Every finding of the selected rules in a document, sorted by position then code."""
    if document.tree is None or document.spec is None:
        return []
    review = settings.review if isinstance(settings, Settings) else settings or ReviewSettings()
    enabled = frozenset(codes) if codes is not None else selected_codes(review, path)
    if not enabled:
        return []
    query, owners = _language_query(document.language)
    grouped: dict[str, list[Match]] = {}
    cursor = QueryCursor(query)
    if byte_range is not None:  # only matches that intersect this span (e.g. one function)
        cursor.set_byte_range(*byte_range)
    for _, captures in cursor.matches(document.tree.root_node):
        if not captures:
            continue
        code = next(iter(captures)).split(".", 1)[0]
        if code in enabled:
            grouped.setdefault(code, []).append(
                {name.split(".", 1)[1]: nodes for name, nodes in captures.items()}
            )
    ctx = Context(document)
    findings: list[Finding] = []
    for code, matches in grouped.items():
        findings.extend(owners[code].check(ctx, matches))
    if b"stagecoder:" in document.source:
        findings = [f for f in findings if not _suppressed(document, f)]
    findings.sort(key=lambda f: (f.range.start, f.code, f.range.end))
    return findings


def _suppressed(document: Document, finding: Finding) -> bool:
    line = document.line_bytes(finding.location.line - 1)
    match = _SUPPRESS.search(line)
    if match is None:
        return False
    if match.group(1) is None:
        return True
    return _selected(finding.code, [c for c in match.group(1).decode().split(",") if c.strip()])
