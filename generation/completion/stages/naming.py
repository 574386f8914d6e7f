"""Naming stage: every name a completion uses must resolve, and new names follow the file's style.

A used name resolves when the completion defines it, or the file, its imports or the builtins
know it, or the workspace index holds it. An unknown name is repaired to the closest known name
when one candidate clearly wins; otherwise it is reported and the candidate ranks lower. Names the
completion defines are rewritten to the file's convention (snake_case vs camelCase).
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from dataclasses import dataclass

from rapidfuzz import process
from rapidfuzz.distance import OSA

from analysis.documents.trial import Trial
from analysis.scope.names import convention_of, names_in_span, to_convention

REPAIR_CUTOFF = 0.75


@dataclass(frozen=True, slots=True)
class NamingResult:
    """The text after repairs, what was done, and which names stayed unknown."""

    text: str
    decision: str  # "kept", "repaired", "unresolved"
    detail: str
    unresolved: tuple[str, ...] = ()
    repairs: tuple[tuple[str, str], ...] = ()


def closest(name: str, pool: set[str] | frozenset[str]) -> str | None:
    """The one known name close enough to `name` to be what was meant, else None.

    Close means few edits, a swap of neighbours counting one (1 edit up to 5 characters, 2 up
    to 10, then 3); the nearest must be unique, and a tie is broken only by a clearly better
    similarity ratio.
    """
    limit = 1 if len(name) <= 5 else 2 if len(name) <= 10 else 3
    matches = process.extract(name, pool, scorer=OSA.distance, score_cutoff=limit, limit=8)
    found = [(str(other), int(d)) for other, d, _ in matches if other != name]
    if not found:
        return None
    best_d = min(d for _, d in found)
    best = [other for other, d in found if d == best_d]
    if len(best) == 1:
        return best[0]
    ranked = sorted(best, key=lambda o: -difflib.SequenceMatcher(None, name, o).ratio())
    r0 = difflib.SequenceMatcher(None, name, ranked[0]).ratio()
    r1 = difflib.SequenceMatcher(None, name, ranked[1]).ratio()
    return ranked[0] if r0 - r1 >= 0.15 and r0 >= REPAIR_CUTOFF else None


def run(text: str, offset: int, trial: Trial, known: set[str] | frozenset[str],
        convention: str | None,
        in_scope: Callable[[], frozenset[str]] | None = None) -> NamingResult:
    """Check and repair the names in `text`, inserted at byte `offset` (parsed in `trial`).

    `known` decides whether a name resolves (every name the file mentions, builtins); repairs
    pick only among `in_scope()` (the names visible at the cursor), computed only when a name
    is unknown, so a repair never reaches into another function's locals.
    """
    if trial.tree is None:
        return NamingResult(text, "kept", "plain text: no names checked")
    data = text.encode("utf-8", "surrogatepass")
    uses = names_in_span(trial.tree.root_node, offset, offset + len(data))
    defined = {u.name for u in uses if u.defines}
    replace: dict[str, str] = {}
    unresolved: list[str] = []
    for use in uses:
        if use.defines or use.name in defined or use.name in known or use.name in replace:
            continue
        if use.name in unresolved:
            continue
        # The file-wide pool first (cheap); the scope is read only when a repair is in sight.
        fix = closest(use.name, known)
        if fix is not None and in_scope is not None and fix not in defined:
            fix = closest(use.name, in_scope() | defined)
        if fix is not None:
            replace[use.name] = fix
        else:
            unresolved.append(use.name)
    if convention:
        for name in sorted(defined - set(known)):
            style = convention_of(name)
            if style in ("snake", "camel") and style != convention:
                replace[name] = to_convention(name, convention)
    if replace:
        out = bytearray(data)
        for use in sorted(uses, key=lambda u: -u.start):
            if use.name in replace:
                out[use.start - offset:use.end - offset] = replace[use.name].encode()
        text = out.decode("utf-8", "surrogatepass")
    repairs = tuple(sorted(replace.items()))
    parts = []
    if repairs:
        parts.append("repaired " + ", ".join(f"{a} -> {b}" for a, b in repairs))
    if unresolved:
        parts.append("unknown " + ", ".join(unresolved))
    decision = "unresolved" if unresolved else ("repaired" if repairs else "kept")
    return NamingResult(text, decision, "; ".join(parts) or "all names resolve",
                        tuple(unresolved), repairs)
