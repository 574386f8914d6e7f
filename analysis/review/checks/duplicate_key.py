"""SC308 duplicate-key: a dict/object literal that repeats a key; the earlier value is lost."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from typing import Any

from tree_sitter import Node

from analysis.review.checks._base import Context, Match, Rule, first, per_language
from analysis.review.findings import Finding

_PY_KEYS = frozenset({"string", "integer", "float", "true", "false", "none", "identifier"})


class DuplicateKey(Rule):
    """## What it does
    Finds a dictionary (Python) or object literal (JavaScript, TypeScript) that gives the same
    key twice: the same literal (`"a"`, `1`, `1.0`, `True` count as equal where the language
    says so) or the same variable name.

    ## Why is this bad?
    The later entry silently replaces the earlier one. Usually a copy-paste slip: one of the two
    keys was meant to be something else, and one value never arrives.

    ## Example
    ```python
    colors = {"red": "#f00", "green": "#0f0", "red": "#00f"}
    ```
    Use instead: fix the key (`"blue": "#00f"`) or drop the stale entry.

    ## Fix safety
    No automatic fix: which entry is the mistake is the author's call. Go is not checked: its
    compiler already rejects duplicate constant keys.
    """

    code = "SC308"
    name = "duplicate-key"
    summary = "a dict/object literal that repeats a key"
    message = "key `{key}` repeats the key on line {line}; the earlier value is discarded"
    queries = per_language({"python": "(dictionary) @literal", "javascript": "(object) @literal",
               "typescript": "(object) @literal", "tsx": "(object) @literal"})

    def check(self, ctx: Context, matches: list[Match]) -> Iterator[Finding]:
        """Report every key that an earlier key of the same literal equals."""
        for match in matches:
            ctx.check()
            literal = first(match, "literal")
            if literal is None or literal.named_child_count < 2:
                continue
            seen: dict[Any, Node] = {}
            for entry in literal.named_children:
                ctx.check()
                key_node = _key(entry)
                if key_node is None:
                    continue
                key = _value(ctx, key_node)
                if key is None:
                    continue
                if key in seen:
                    line = seen[key].start_point.row + 1
                    yield ctx.finding(self, key_node, self.message.format(
                        key=ctx.text(key_node), line=line))
                else:
                    seen[key] = key_node


def _key(entry: Node) -> Node | None:
    if entry.type == "pair":
        return entry.child_by_field_name("key")
    if entry.type == "shorthand_property_identifier":
        return entry
    return None


def _value(ctx: Context, node: Node) -> Any:
    """A hashable stand-in for the key's runtime value, or None when it is not constant."""
    text = ctx.text(node)
    if ctx.language == "python":
        if node.type not in _PY_KEYS or any(c.type == "interpolation" for c in node.children):
            return None
        if node.type == "identifier":
            return ("name", text)
        try:
            value = ast.literal_eval(text)
        except (ValueError, SyntaxError):
            return None
        return ("value", value) if not isinstance(value, float) or value == value else None
    if node.type in ("property_identifier", "shorthand_property_identifier"):
        return ("key", text)
    if node.type == "string" and not any(c.type == "escape_sequence" for c in node.children):
        return ("key", text[1:-1])
    if node.type == "number":
        try:
            number = float(text.replace("_", ""))
        except ValueError:
            return None
        return ("key", str(int(number)) if number.is_integer() else repr(number))
    return None


RULE = DuplicateKey()
