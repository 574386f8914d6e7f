"""Naming stage: every name a completion uses must resolve, and new names follow the file's style.

A used name resolves when the completion defines it, or the file, its imports or the builtins
know it, or the workspace index holds it. An unknown name is repaired to the closest known name
when one candidate clearly wins; otherwise it is reported and the candidate ranks lower. Names the
completion defines are rewritten to the file's convention (snake_case vs camelCase).

Members get the same rules (`self.typs`, `this.itms`, `pricing.totl()`): a member the file never
mentions is looked up in what analysis/scope/members.py knows of its object (the class around
the cursor and its bases, a class of the file, a workspace module), repaired to the one close
member or reported. Where the object's members cannot be known (a library base class,
`__getattr__`, any other object) nothing is said. Members the completion assigns are its own.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Container
from dataclasses import dataclass

from rapidfuzz import process
from rapidfuzz.distance import OSA

from analysis.documents.trial import Trial
from analysis.scope.members import member_uses
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
        in_scope: Callable[[], frozenset[str]] | None = None,
        members: Callable[[str, frozenset[str]], frozenset[str] | None] | None = None,
        language: str = "", elsewhere: Container[str] = ()) -> NamingResult:
    """Check and repair the names in `text`, inserted at byte `offset` (parsed in `trial`).

    `known` decides whether a name resolves (every name the file mentions, builtins); repairs
    pick only among `in_scope()` (the names visible at the cursor), computed only when a name
    is unknown, so a repair never reaches into another function's locals. `members(obj, made)`
    gives the members of an object the completion names (None: unknown, not checked), `made`
    being the members the completion assigns on it; it is asked only for a member the file
    never mentions; `elsewhere` holds the names the workspace defines (a subclass may supply a
    member of `self`).
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
    spans: dict[tuple[int, int], str] = {}  # member repairs, by the member name's span
    member_repairs: list[tuple[str, str]] = []
    if members is not None:
        _check_members(trial, offset, offset + len(data), language, known, members, spans,
                       member_repairs, unresolved, elsewhere)
    if convention:
        for name in sorted(defined - set(known)):
            style = convention_of(name)
            if style in ("snake", "camel") and style != convention:
                replace[name] = to_convention(name, convention)
    if replace or spans:
        edits = {(u.start, u.end): replace[u.name] for u in uses if u.name in replace}
        edits.update(spans)
        out = bytearray(data)
        for (start, end), new in sorted(edits.items(), reverse=True):
            out[start - offset:end - offset] = new.encode()
        text = out.decode("utf-8", "surrogatepass")
    repairs = tuple(sorted(replace.items())) + tuple(member_repairs)
    parts = []
    if repairs:
        parts.append("repaired " + ", ".join(f"{a} -> {b}" for a, b in repairs))
    if unresolved:
        parts.append("unknown " + ", ".join(unresolved))
    decision = "unresolved" if unresolved else ("repaired" if repairs else "kept")
    return NamingResult(text, decision, "; ".join(parts) or "all names resolve",
                        tuple(unresolved), repairs)


_INSTANCE = frozenset({"self", "cls", "this"})


def _check_members(trial: Trial, start: int, end: int, language: str,
                   known: set[str] | frozenset[str],
                   members: Callable[[str, frozenset[str]], frozenset[str] | None],
                   spans: dict[tuple[int, int], str], repairs: list[tuple[str, str]],
                   unresolved: list[str], elsewhere: Container[str] = ()) -> None:
    """Members the completion uses that its object does not have: repaired (into `spans`) or
    reported (into `unresolved`, as `obj.name`). A member of `self`/`this` that the workspace
    defines somewhere (`elsewhere`) is left alone: a subclass may supply it (a template
    method the base class calls). The members the completion assigns count as the object's."""
    assert trial.tree is not None
    uses = member_uses(trial.tree.root_node, start, end, language)
    made = {(u.obj, u.name) for u in uses if u.defines}
    fixed: dict[tuple[str, str], str | None] = {}
    for use in uses:
        key = (use.obj, use.name)
        if use.defines or key in made or use.name in known:
            continue
        if key not in fixed:
            mine = frozenset(name for obj, name in made if obj == use.obj)
            pool = members(use.obj, mine)
            if pool is not None:
                pool |= mine
            if pool is None or use.name in pool or (
                    use.obj in _INSTANCE and use.name in elsewhere):
                fixed[key] = use.name  # unknown object, or a member it has: nothing to say
            else:
                fixed[key] = closest(use.name, pool)
                label = f"{use.obj}.{use.name}"
                if fixed[key] is None:
                    unresolved.append(label)
                else:
                    repairs.append((label, f"{use.obj}.{fixed[key]}"))
        new = fixed[key]
        if new is not None and new != use.name:
            spans[(use.start, use.end)] = new
