"""SC201 inconsistent-naming: a name that breaks the naming convention the file follows."""

from __future__ import annotations

import re
from collections.abc import Iterator

from tree_sitter import Node

from analysis.review.checks._base import Context, Match, Rule, first, per_language
from analysis.review.checks._bindings import CLASS_SCOPE
from analysis.review.findings import Finding, Severity

_SNAKE = re.compile(r"^[a-z][a-z0-9]*(_[a-z0-9]+)+$")
_CAMEL = re.compile(r"^[a-z][a-z0-9]*([A-Z][a-z0-9]*)+$")
# Framework hooks whose names the author does not choose (unittest, asyncio protocols, ...).
_HOOKS = frozenset({
    "setUp", "tearDown", "setUpClass", "tearDownClass", "setUpModule", "tearDownModule",
    "asyncSetUp", "asyncTearDown", "addCleanup", "maxDiff", "connectionMade", "dataReceived",
    "connectionLost",
})
_MIN_MAJORITY = 3

_PY = """
(function_definition name: (identifier) @def)
(assignment left: (identifier) @def)
(parameters (identifier) @def)
(default_parameter name: (identifier) @def)
(typed_parameter . (identifier) @def)
(typed_default_parameter name: (identifier) @def)
"""
_JS_COMMON = """
(function_declaration name: (identifier) @def)
(method_definition name: (property_identifier) @def)
(variable_declarator name: (identifier) @def)
"""
_GO = """
(function_declaration name: (identifier) @def)
(method_declaration name: (field_identifier) @def)
(short_var_declaration left: (expression_list (identifier) @def))
(var_spec name: (identifier) @def)
(parameter_declaration name: (identifier) @def)
"""


# Only names with an inner "_" or a lower-to-upper step can be snake_case or camelCase: filter
# in the query, so the many single-word names never reach Python.
_STYLED = '(#match? @def "[a-z0-9]_[a-z0-9]|[a-z0-9][A-Z]")'


def _filtered(patterns: str) -> str:
    return "\n".join(f"({line} {_STYLED})" for line in patterns.strip().splitlines())


def style_of(name: str) -> str | None:
    """"snake_case", "camelCase", or None for names that fit both (`total`) or neither."""
    core = name.strip("_")
    if _SNAKE.match(core):
        return "snake_case"
    if _CAMEL.match(core):
        return "camelCase"
    return None


def to_style(name: str, style: str) -> str:
    """`name` rewritten in `style` (keeping leading underscores)."""
    lead = name[: len(name) - len(name.lstrip("_"))]
    core = name.strip("_")
    if style == "snake_case":
        return lead + re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", core).lower()
    head, *rest = core.split("_")
    return lead + head + "".join(p[:1].upper() + p[1:] for p in rest)


class InconsistentNaming(Rule):
    """## What it does
    Classifies the functions, methods, variables and parameters a file defines as `snake_case`
    or `camelCase` and reports names in the minority style, when the majority has at least three
    names and outnumbers the minority two to one. Go's convention is fixed (MixedCaps): any
    `snake_case` name is reported.

    ## Why is this bad?
    A file that mixes conventions reads as if several people wrote it without talking, and
    readers must remember which spelling each name uses (`get_user` or `getUser`?).

    ## Example
    ```javascript
    function loadUser(id) { return fetchUser(id); }
    function save_user(user) { return storeUser(user); }
    ```
    Use instead: `saveUser`.

    ## Fix safety
    No automatic fix: a rename may break callers in other files. Single-word names (`total`),
    constants (`MAX_SIZE`), names mixing both (`visit_FunctionDef`) and framework hooks
    (`setUp`) are never reported.
    """

    code = "SC201"
    preview = True  # below the precision bar on real code (benchmarks/review_precision.py)
    name = "inconsistent-naming"
    summary = "a name that breaks the file's naming convention (snake_case vs camelCase)"
    message = "`{name}` is {style}, but this file names things in {convention} ({count} of " \
              "{total}); rename to `{suggestion}`"
    severity = Severity.INFO
    queries = per_language({
        "python": _filtered(_PY),
        "javascript": _filtered(_JS_COMMON + "(formal_parameters (identifier) @def)"),
        "typescript": _filtered(_JS_COMMON + "(required_parameter pattern: (identifier) @def)"),
        "tsx": _filtered(_JS_COMMON + "(required_parameter pattern: (identifier) @def)"),
        "go": _filtered(_GO),
    })

    def check(self, ctx: Context, matches: list[Match]) -> Iterator[Finding]:
        """Report names in the minority style, once per name."""
        seen: dict[str, tuple[str, Node]] = {}
        for match in matches:
            ctx.check()
            node = first(match, "def")
            if node is None:
                continue
            name = ctx.text(node)
            style = style_of(name)
            if style is None or name in seen or name in _HOOKS or _in_class_body(ctx, node):
                continue
            seen[name] = (style, node)
        counts = {"snake_case": 0, "camelCase": 0}
        for style, _ in seen.values():
            counts[style] += 1
        convention = _convention(ctx.language, counts)
        if convention is None:
            return
        total = sum(counts.values())
        for name, (style, node) in seen.items():
            if style != convention:
                yield ctx.finding(self, node, self.message.format(
                    name=name, style=style, convention=convention, count=counts[convention],
                    total=total, suggestion=to_style(name, convention)))


def _convention(language: str, counts: dict[str, int]) -> str | None:
    if language == "go":
        return "camelCase"
    snake, camel = counts["snake_case"], counts["camelCase"]
    major, minor = (snake, camel) if snake >= camel else (camel, snake)
    if major < _MIN_MAJORITY or major < 2 * minor or minor == 0:
        return None
    return "snake_case" if snake > camel else "camelCase"


def _in_class_body(ctx: Context, node: Node) -> bool:
    """Class attributes (not methods) follow their own conventions (e.g. ORM fields)."""
    scope = CLASS_SCOPE.get(ctx.language, "")
    parent = node.parent
    if ctx.language == "python" and parent is not None and parent.type == "assignment":
        stmt = parent.parent
        block = stmt.parent if stmt is not None else None
        return block is not None and block.parent is not None and block.parent.type == scope
    return False


RULE = InconsistentNaming()
