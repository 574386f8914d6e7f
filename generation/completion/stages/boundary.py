"""Boundary-check stage: a function body written by the completion gets guard clauses for the
parameters it indexes, divides by, dereferences or iterates without a check.

Detection is the review engine's boundary rules (SC101-SC104) run on the document with the
completion in place, limited to functions whose body the completion wrote, plus one step of
flow from the parameters (analysis/scope/derived.py): a length used as a divisor (`total /
len(values)`: `values` must not be empty), a value derived from a parameter and indexed at a
fixed position (`words = text.split(); words[0]`: a guard right after `words` is made), and the
highest fixed index of a parameter (`values[0] / values[1]` needs two items even below an `if
not values:`), each left out where the body already checks it. The guard follows the
file's style and indentation unit (the hole's): Python raises ValueError (or returns early when
the file guards that way), JavaScript/TypeScript throw, Go returns an error when the function
returns one (otherwise no guard: Go has no exception to raise). Other languages are left as they
are.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from itertools import islice

from tree_sitter import Node

from analysis.context.hole import Hole
from analysis.documents.document import Document
from analysis.documents.node_types import is_docstring, table_for
from analysis.documents.tree_walks import ancestors
from analysis.documents.trial import Trial
from analysis.review.checks import analyze
from analysis.review.checks._base import Context
from analysis.review.checks._functions import params_of
from analysis.scope.derived import needs as derived_needs

RULES = {"SC101": "empty", "SC102": "zero", "SC103": "none", "SC104": "none"}
MAX_CLIMB = 64  # levels looked up from the completion for the function whose body it wrote
_RAISE = re.compile(rb"^\s*raise (ValueError|TypeError)\b", re.M)
_EARLY_RETURN = re.compile(rb"^\s*if [^\n]*:\s*\n\s*return\b", re.M)


@dataclass(frozen=True, slots=True)
class BoundaryResult:
    """The text with guards added, and what was done."""

    text: str
    decision: str  # "kept", "guarded"
    detail: str


def _written_functions(root: Node, start: int, end: int, language: str) -> list[Node]:
    """Functions whose whole body lies inside the completion [start, end)."""
    types = table_for(language).functions

    def written(node: Node) -> bool:
        body = node.child_by_field_name("body")
        stmts = [c for c in body.named_children if c.type != "comment"] if body else []
        return bool(stmts) and stmts[0].start_byte >= start and stmts[-1].end_byte <= end

    # Below the smallest node holding the completion, and the functions around it up to the
    # nearest one (any outer function's body holds that one's header, which precedes `start`).
    # Not a walk from the root: in deeply nested code the path down is long.
    cover = root.descendant_for_byte_range(start, end) or root
    out: list[Node] = []
    for node in islice(ancestors(cover, root), MAX_CLIMB):
        if node.type in types:
            if written(node):
                out.append(node)
            break
    stack = [cover]
    while stack:
        node = stack.pop()
        if node.end_byte <= start or node.start_byte >= end:
            continue
        if node.type in types and written(node):
            out.append(node)
        stack.extend(node.children)
    out.sort(key=lambda n: (-n.end_byte, n.start_byte))  # outer first, later siblings first
    return out


def run(doc: Document, hole: Hole, text: str, trial: Trial) -> BoundaryResult:
    """Add guard clauses for unguarded parameters in function bodies the completion wrote."""
    if trial.tree is None or doc.language not in ("python", "javascript", "typescript", "tsx",
                                                   "go"):
        return BoundaryResult(text, "kept", "no guards for this language")
    data = text.encode("utf-8", "surrogatepass")
    start, end = hole.offset, hole.offset + len(data)
    functions = _written_functions(trial.tree.root_node, start, end, doc.language)
    if not functions:
        return BoundaryResult(text, "kept", "no function body written")
    full = Document.with_tree(doc, trial.source, trial.tree)
    ctx = Context(full)
    inserts: list[tuple[int, str]] = []
    added: list[str] = []
    root = full.tree.root_node  # type: ignore[union-attr]
    for fn in _written_functions(root, start, end, doc.language):
        findings = analyze(full, codes=frozenset(RULES), byte_range=(fn.start_byte, fn.end_byte))
        needs: dict[str, str] = {}
        params = params_of(ctx, fn)
        for finding in findings:
            if not (fn.start_byte <= finding.range.start < fn.end_byte):
                continue
            kind = RULES[finding.code]
            name = _param_in(full.source[finding.range.start:finding.range.end], params, kind)
            if name is not None:
                needs.setdefault(name, kind)
        later: list[tuple[int, str]] = []
        for need in derived_needs(fn, full.source, set(params), doc.language):
            if need.param:
                if need.length > 1:
                    needs[need.name] = f"length:{need.length}"
                else:
                    needs.setdefault(need.name, "empty")
            elif need.after is not None and start <= need.after <= end:
                text_after = _after_guard(full, need.after, need.name, need.length,
                                          hole.indent_unit)
                if text_after is not None:
                    later.append((need.after - start, text_after))
                    added.append(f"{need.name} (length {need.length})")
        inserts.extend(later)
        if not needs:
            continue
        guard = _guard(full, fn, needs, hole.indent_unit)
        if guard is None:
            continue
        where, guard_text = guard
        inserts.append((where - start, guard_text))
        added.extend(f"{n} ({k.replace(':', ' ')})" for n, k in needs.items())
    if not inserts:
        return BoundaryResult(text, "kept", "every parameter use is guarded")
    out = bytearray(data)
    for at, guard_text in sorted(inserts, reverse=True):
        out[at:at] = guard_text.encode("utf-8")
    return BoundaryResult(out.decode("utf-8", "surrogatepass"), "guarded",
                          "guard added for " + ", ".join(added))


def _param_in(span: bytes, params: dict, kind: str) -> str | None:
    """The parameter a finding is about: the divisor is the rightmost name, else the leftmost."""
    text = span.decode("utf-8", "replace")
    hits = [(m.start(), name) for name in params
            for m in re.finditer(rf"(?<![\w.]){re.escape(name)}(?!\w)", text)]
    if not hits:
        return None
    return (max(hits) if kind == "zero" else min(hits))[1]


def _first_statement(fn: Node) -> Node | None:
    body = fn.child_by_field_name("body")
    stmts = [c for c in body.named_children if c.type != "comment"] if body else []
    if not stmts:
        return None
    if is_docstring(stmts[0]) and len(stmts) > 1:
        return stmts[1]
    return stmts[0]


def _guard(doc: Document, fn: Node, needs: dict[str, str], unit: str
           ) -> tuple[int, str] | None:
    """(byte offset, text) of the guard clauses to insert before the body's first statement,
    nested lines indented by the file's `unit`."""
    stmt = _first_statement(fn)
    if stmt is None:
        return None
    line_start = doc.source.rfind(b"\n", 0, stmt.start_byte) + 1
    indent = doc.source[line_start:stmt.start_byte].decode("utf-8", "replace")
    if indent.strip():
        return None  # the statement shares its line with other code: leave it alone
    lang = doc.language
    lines: list[str] | None
    if lang == "python":
        lines = _python_guards(doc, needs)
    elif lang == "go":
        lines = _go_guards(doc, fn, needs)
        if lines is None:
            return None
    else:
        lines = _js_guards(needs)
    body = "".join(
        line.replace("\t", unit) if line.startswith("\t") else line
        for line in (f"{ln}\n" for ln in lines)
    )
    text = "".join(f"{indent if i else ''}{ln}" for i, ln in enumerate(body.splitlines(True)))
    return stmt.start_byte, text + indent


def _after_guard(doc: Document, at: int, name: str, length: int, unit: str) -> str | None:
    """The guard for a derived value, inserted right after the statement ending at `at` (on
    lines of its own, at that statement's indentation)."""
    line_start = doc.source.rfind(b"\n", 0, at) + 1
    head = doc.source[line_start:at].decode("utf-8", "replace")
    indent = head[: len(head) - len(head.lstrip(" \t"))]
    if doc.language == "python":
        lines = _python_guards(doc, {name: "empty" if length <= 1 else f"length:{length}"})
    elif doc.language in ("javascript", "typescript", "tsx"):
        lines = _js_guards({name: "empty" if length <= 1 else f"length:{length}"},
                           nullable=False)
    else:
        return None
    return "".join(f"\n{indent}{ln.replace(chr(9), unit)}" for ln in lines)


def _python_guards(doc: Document, needs: dict[str, str]) -> list[str]:
    early_return = len(_EARLY_RETURN.findall(doc.source)) > len(_RAISE.findall(doc.source))
    out: list[str] = []
    for name, kind in needs.items():
        if kind.startswith("length:"):
            size = kind.split(":", 1)[1]
            test, message = f"len({name}) < {size}", f"{name} must have at least {size} items"
        else:
            test = {"zero": f"{name} == 0", "empty": f"not {name}",
                    "none": f"{name} is None"}[kind]
            message = f"{name} must not be " + {"zero": "zero", "empty": "empty",
                                                 "none": "None"}[kind]
        out.append(f"if {test}:")
        out.append("\treturn None" if early_return else f"\traise ValueError(\"{message}\")")
    return out


def _js_guards(needs: dict[str, str], nullable: bool = True) -> list[str]:
    out: list[str] = []
    for name, kind in needs.items():
        null = f"{name} == null || " if nullable else ""
        if kind.startswith("length:"):
            size = kind.split(":", 1)[1]
            test, message = f"{null}{name}.length < {size}", \
                f"{name} must have at least {size} items"
            error = "RangeError"
        else:
            test = {"zero": f"{name} === 0", "empty": f"{null}{name}.length === 0",
                    "none": f"{name} == null"}[kind]
            error = "RangeError" if kind in ("zero", "empty") else "TypeError"
            message = f"{name} must not be " + {"zero": "zero", "empty": "empty",
                                                 "none": "null"}[kind]
        out += [f"if ({test}) {{", f"\tthrow new {error}(\"{message}\");", "}"]
    return out


_GO_ZERO = {"string": '""', "bool": "false", "error": "nil"}


def _go_guards(doc: Document, fn: Node, needs: dict[str, str]) -> list[str] | None:
    result = fn.child_by_field_name("result")
    if result is None:
        return None
    types = ([c for c in result.named_children if c.type == "parameter_declaration"]
             if result.type == "parameter_list" else [result])
    names = [doc.source[(t.child_by_field_name("type") or t).start_byte:
                        (t.child_by_field_name("type") or t).end_byte].decode() for t in types]
    if not names or names[-1] != "error":
        return None
    zeros = []
    for t in names[:-1]:
        if t in _GO_ZERO:
            zeros.append(_GO_ZERO[t])
        elif re.fullmatch(r"u?int\d*|float\d+|byte|rune|uintptr|complex\d+", t):
            zeros.append("0")
        elif t.startswith(("*", "[]", "map[", "chan ", "func")) or t in ("any", "interface{}"):
            zeros.append("nil")
        else:
            return None
    if b'"errors"' in doc.source:
        make = "errors.New(\"{}\")"
    elif b'"fmt"' in doc.source:
        make = "fmt.Errorf(\"{}\")"
    else:
        return None
    out: list[str] = []
    for name, kind in needs.items():
        test = {"zero": f"{name} == 0", "empty": f"len({name}) == 0",
                "none": f"{name} == nil"}[kind]
        what = {"zero": "zero", "empty": "empty", "none": "nil"}[kind]
        values = ", ".join([*zeros, make.format(f"{name} must not be {what}")])
        out += [f"if {test} {{", f"\treturn {values}", "}"]
    return out
