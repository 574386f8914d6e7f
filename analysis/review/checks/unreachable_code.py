"""SC301 unreachable-code: statements after return/raise/throw/break/continue/panic in a block."""

from __future__ import annotations

from collections.abc import Iterator

from tree_sitter import Node

from analysis.review.checks._base import Context, Match, Rule, first, per_language
from analysis.review.findings import Applicability, Edit, Finding, Fix

_JS = "[(return_statement) (throw_statement) (break_statement) (continue_statement)] @stop"
_GO = """
[(return_statement) (break_statement) (continue_statement) (goto_statement)] @stop
(expression_statement (call_expression function: (identifier) @_panic (#eq? @_panic "panic"))) @stop
"""

# Nodes whose children run one after another: only there does a terminator make the following
# siblings dead. (`if (c) return 1; else return -1;`: the `else` is the return's sibling inside
# the `if`, and very much reachable.)
_SEQUENCES = {
    "python": frozenset({"block", "module"}),
    "javascript": frozenset({"statement_block", "program", "switch_case", "switch_default",
                             "class_static_block"}),
    "go": frozenset({"block", "statement_list"}),
}
_SEQUENCES["typescript"] = _SEQUENCES["tsx"] = _SEQUENCES["javascript"]
# Statements that are reachable (or take effect) even after a terminator.
_STILL_LIVE = {
    "javascript": {"function_declaration", "generator_function_declaration", "empty_statement"},
    "go": {"labeled_statement", "empty_statement"},
    "python": set(),
}
_STILL_LIVE["typescript"] = _STILL_LIVE["tsx"] = _STILL_LIVE["javascript"] | {
    "interface_declaration", "type_alias_declaration", "ambient_declaration",
}
# Python: removing code that binds a name changes the scope (local vs global) of that name.
_PY_BINDING = frozenset({
    "assignment", "augmented_assignment", "named_expression", "import_statement",
    "import_from_statement", "function_definition", "class_definition", "global_statement",
    "nonlocal_statement", "for_statement", "with_statement", "delete_statement",
    "except_clause", "match_statement", "for_in_clause", "as_pattern",
})
_JS_DECLARATION = frozenset({"lexical_declaration", "variable_declaration", "class_declaration",
                             "function_declaration", "import_statement"})
_YIELD = frozenset({"yield", "yield_expression"})


class UnreachableCode(Rule):
    """## What it does
    Finds statements that follow a `return`, `raise`/`throw`, `break`, `continue` or Go
    `panic(...)`/`goto` in the same block, so they can never run. Only statement sequences
    count (a block, a module, a `case`): the `else` of `if (c) return 1; else return -1;` runs,
    and a block that does not parse cleanly is not judged.

    ## Why is this bad?
    Dead code misleads: readers assume it runs. It is usually a leftover, or a sign that the
    terminator is in the wrong place (a forgotten `if`).

    ## Example
    ```javascript
    function area(r) {
      return Math.PI * r * r;
      console.log("computed area");
    }
    ```
    Use instead: delete the statement, or move it before the `return`.

    ## Fix safety
    The fix deletes the unreachable statements. It is safe in JavaScript/TypeScript unless a
    deleted statement declares something (hoisting and the temporal dead zone make declarations
    observable), and in Python unless a deleted statement binds a name (a binding anywhere makes
    the name local to the function). It is always unsafe in Go, where deleting the last use of
    a variable or import is a compile error. JavaScript function declarations (hoisted), Go
    labels (goto targets) and Python code containing `yield` (it makes the function a
    generator) are never reported.
    """

    code = "SC301"
    name = "unreachable-code"
    summary = "statements after return/raise/throw/break/continue/panic"
    message = "unreachable code: {count} after `{stop}`"
    fix_title = "Remove unreachable code"
    fix_applicabilities = frozenset({Applicability.SAFE, Applicability.UNSAFE})
    unnecessary = True
    queries = per_language({
        "python": "[(return_statement) (raise_statement) (break_statement)"
                  " (continue_statement)] @stop",
        "javascript": _JS, "typescript": _JS, "tsx": _JS, "go": _GO,
    })

    def check(self, ctx: Context, matches: list[Match]) -> Iterator[Finding]:
        """Report the dead statements after each terminator, with a deleting fix."""
        for match in matches:
            ctx.check()
            stop = first(match, "stop")
            if stop is None:
                continue
            dead = _dead_after(ctx, stop)
            if not dead:
                continue
            if ctx.language == "python" and any(
                n.type in _YIELD for d in dead for n in (d, *ctx.walk(d))
            ):
                continue  # `return` + `yield`: the idiom for an empty generator
            count = f"{len(dead)} statement{'s' if len(dead) > 1 else ''}"
            keyword = ctx.text(stop).split("(")[0].split()[0].rstrip(";")
            edits = tuple(_deletion(ctx, run) for run in _runs(stop, dead))
            fix = Fix(edits, _safety(ctx, dead), self.fix_title or "")
            yield ctx.finding(self, (dead[0].start_byte, dead[-1].end_byte),
                              self.message.format(count=count, stop=keyword), fix)


def _dead_after(ctx: Context, stop: Node) -> list[Node]:
    parent = stop.parent
    if parent is None or parent.type not in _SEQUENCES[ctx.language] or parent.has_error:
        return []  # not in a statement sequence, or a misparse: what follows may well run
    live = _STILL_LIVE[ctx.language]
    dead: list[Node] = []
    node = stop.next_named_sibling
    while node is not None:
        ctx.check()
        if ctx.language == "go" and node.type == "labeled_statement":
            break  # a label can be jumped to: what follows is reachable
        if node.type != "comment" and node.type not in live:
            dead.append(node)
        node = node.next_named_sibling
    return dead


def _safety(ctx: Context, dead: list[Node]) -> Applicability:
    if ctx.language == "go":
        return Applicability.UNSAFE
    if ctx.language == "python":
        risky = any(n.type in _PY_BINDING for d in dead for n in (d, *ctx.walk(d)))
    else:
        risky = any(d.type in _JS_DECLARATION or d.type == "export_statement" for d in dead)
    return Applicability.UNSAFE if risky else Applicability.SAFE


def _runs(stop: Node, dead: list[Node]) -> list[list[Node]]:
    """Dead statements grouped into runs of siblings not interrupted by a live statement."""
    runs: list[list[Node]] = []
    wanted = {d.id for d in dead}
    current: list[Node] = []
    node = stop.next_named_sibling
    while node is not None:
        if node.id in wanted:
            current.append(node)
        elif node.type != "comment" and current:
            runs.append(current)
            current = []
        node = node.next_named_sibling
    if current:
        runs.append(current)
    return runs


def _deletion(ctx: Context, run: list[Node]) -> Edit:
    """Delete a run of statements: whole lines when they have them to themselves, else the text."""
    first_node, last_node = run[0], run[-1]
    line_start = ctx.line_start(first_node.start_byte)
    line_end = ctx.line_end(last_node.end_byte)
    before = ctx.source[line_start : first_node.start_byte]
    after = ctx.source[last_node.end_byte : line_end]
    if before.strip() == b"" and after.strip() == b"":
        return Edit(line_start, line_end)
    prev = first_node.prev_sibling
    start = prev.end_byte if prev is not None else first_node.start_byte
    return Edit(start, last_node.end_byte)


RULE = UnreachableCode()
