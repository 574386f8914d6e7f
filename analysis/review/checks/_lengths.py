"""What the tree says about a parameter's length: facts for SC101, intra-procedural and cheap.

- `known_length`: the shortest length the parameter can have, when the file fixes it: a
  `@pytest.mark.parametrize` whose values are literals, or a replacement function handed to
  `re.sub`/`.subn` (its match object has the pattern's groups, plus group 0).
- `non_empty_here`: the use sits inside a loop (or comprehension) over the same sequence, so
  the sequence has at least one element there.
"""

from __future__ import annotations

import ast
import re

from tree_sitter import Node, Query

from analysis.review.checks._base import Context, bounded_cursor
from analysis.review.checks._functions import Param

# Loop node -> (field holding the iterable, field holding the body); Go's is in a range_clause.
_LOOPS = {
    "python": {"for_statement": ("right", "body")},
    "javascript": {"for_in_statement": ("right", "body")},
    "go": {"for_statement": ("", "body")},
}
_LOOPS["typescript"] = _LOOPS["tsx"] = _LOOPS["javascript"]
_SEQUENCE_LITERALS = frozenset({"tuple", "list", "set", "string", "concatenated_string"})


def known_length(ctx: Context, fn: Node, param: Param) -> int | None:
    """The shortest length the file gives this parameter, or None when it does not say."""
    if ctx.language != "python":
        return None
    return _parametrized(ctx, fn, param.name) or _regex_groups(ctx, fn, param)


def non_empty_here(ctx: Context, use: Node, name: str) -> bool:
    """True when `use` runs inside a loop over the sequence called `name`."""
    parent = use.parent  # the element of a comprehension over `name`: `[x[0] for _ in x]`
    while parent is not None and parent.type not in ("list_comprehension", "set_comprehension",
                                                     "generator_expression",
                                                     "dictionary_comprehension"):
        if parent.type in ("function_definition", "lambda"):
            parent = None
            break
        parent = parent.parent
    if parent is not None and any(
            c.type == "for_in_clause" and (it := c.child_by_field_name("right")) is not None
            and ctx.text(it) == name for c in parent.named_children):
        return True
    loops = _LOOPS.get(ctx.language, {})
    for node in ctx.ancestors(use):
        fields = loops.get(node.type)
        if fields is None:
            if node.type in ("function_definition", "function_declaration", "arrow_function",
                             "function_expression", "method_definition", "func_literal",
                             "method_declaration"):
                return False
            continue
        iterable_field, _ = fields
        if ctx.language == "go":
            clause = next((c for c in node.named_children if c.type == "range_clause"), None)
            iterable = clause.child_by_field_name("right") if clause is not None else None
        else:
            iterable = node.child_by_field_name(iterable_field)
        if iterable is not None and ctx.text(iterable) == name and \
                not (iterable.start_byte <= use.start_byte < iterable.end_byte):
            return True
    return False


def _parametrized(ctx: Context, fn: Node, name: str) -> int | None:
    """Shortest literal value of `name` in the function's `@pytest.mark.parametrize`."""
    decorated = fn.parent
    if decorated is None or decorated.type != "decorated_definition":
        return None
    for decorator in decorated.named_children:
        call = decorator.named_children[0] if decorator.type == "decorator" and \
            decorator.named_children else None
        if call is None or call.type != "call":
            continue
        function = call.child_by_field_name("function")
        if function is None or not ctx.text(function).endswith("parametrize"):
            continue
        args = call.child_by_field_name("arguments")
        values = [a for a in args.named_children if a.type != "keyword_argument"] if args else []
        if len(values) < 2:
            continue
        names = _names(ctx, values[0])
        if name not in names:
            continue
        position = names.index(name)
        return _shortest(ctx, values[1], position, len(names))
    return None


def _names(ctx: Context, node: Node) -> list[str]:
    try:
        value = ast.literal_eval(ctx.text(node))
    except (ValueError, SyntaxError):
        return []
    if isinstance(value, str):
        return [n.strip() for n in value.split(",")]
    return [str(v) for v in value] if isinstance(value, (list, tuple)) else []


def _shortest(ctx: Context, rows: Node, position: int, width: int) -> int | None:
    """The shortest length among the parameter's literal values (None: one is not literal)."""
    if rows.type not in ("list", "tuple"):
        return None
    shortest: int | None = None
    for row in rows.named_children:
        ctx.check()
        if row.type == "call" and ctx.text(row.child_by_field_name("function") or row) \
                .endswith("param"):
            args = row.child_by_field_name("arguments")
            row = args if args is not None else row
            cells = [c for c in row.named_children if c.type != "keyword_argument"]
        elif width == 1:
            cells = [row]
        elif row.type in ("tuple", "list"):
            cells = row.named_children
        else:
            return None
        if position >= len(cells) or cells[position].type not in _SEQUENCE_LITERALS:
            return None
        try:
            length = len(ast.literal_eval(ctx.text(cells[position])))
        except (ValueError, SyntaxError, TypeError):
            return None
        shortest = length if shortest is None else min(shortest, length)
    return shortest


def _regex_groups(ctx: Context, fn: Node, param: Param) -> int | None:
    """Groups + 1 of the pattern a function is the `re.sub` replacement for (its match's
    length), when the function's first parameter is the match."""
    name_node = fn.child_by_field_name("name")
    if name_node is None:
        return None
    patterns = _replacements(ctx)
    groups = patterns.get(ctx.text(name_node))
    return groups + 1 if groups is not None else None


def _replacements(ctx: Context) -> dict[str, int]:
    """Function name -> group count of the pattern it replaces with, for the whole file."""
    key = ("regex-replacements", 0)
    cached = ctx.cache.get(key)
    if cached is not None:
        return cached
    found: dict[str, int] = {}
    compiled: dict[str, int] = {}
    if ctx.root is not None and b".sub" in ctx.source and ctx.document.spec is not None:
        global _SUB_QUERY
        if _SUB_QUERY is None:  # one small query, run in C, instead of a walk in Python
            _SUB_QUERY = Query(ctx.document.spec.language, _SUB_SOURCE)
        captures = bounded_cursor(_SUB_QUERY).captures(ctx.root)
        for node in sorted(captures.get("compiled", ()), key=lambda n: n.start_byte):
            _note_compiled(ctx, node, compiled)
        for node in sorted(captures.get("sub", ()), key=lambda n: n.start_byte):
            ctx.check()
            _note_sub(ctx, node, compiled, found)
    ctx.cache[key] = found
    return found


_SUB_SOURCE = """
((assignment right: (call function: (_) @_f)) @compiled (#match? @_f "(^|[.])compile$"))
((call function: (attribute attribute: (identifier) @_a)) @sub (#any-of? @_a "sub" "subn"))
"""
_SUB_QUERY: Query | None = None


def _note_compiled(ctx: Context, node: Node, compiled: dict[str, int]) -> None:
    left, right = node.child_by_field_name("left"), node.child_by_field_name("right")
    if left is None or right is None or right.type != "call":
        return
    function = right.child_by_field_name("function")
    if function is None or ctx.text(function) not in ("re.compile", "compile"):
        return
    groups = _pattern_groups(ctx, right.child_by_field_name("arguments"))
    if groups is not None:
        compiled[ctx.text(left)] = groups


def _note_sub(ctx: Context, call: Node, compiled: dict[str, int], found: dict[str, int]
              ) -> None:
    function = call.child_by_field_name("function")
    args = call.child_by_field_name("arguments")
    if function is None or args is None or function.type != "attribute":
        return
    attribute = function.child_by_field_name("attribute")
    if attribute is None or ctx.text(attribute) not in ("sub", "subn"):
        return
    positional = [a for a in args.named_children if a.type != "keyword_argument"]
    owner = function.child_by_field_name("object")
    if owner is not None and ctx.text(owner) == "re":  # re.sub(pattern, repl, string)
        groups = _pattern_groups(ctx, args)
        repl = positional[1] if len(positional) > 1 else None
    else:  # pattern.sub(repl, string)
        groups = compiled.get(ctx.text(owner)) if owner is not None else None
        repl = positional[0] if positional else None
    if repl is not None and repl.type == "identifier" and groups is not None:
        name = ctx.text(repl)
        found[name] = min(groups, found.get(name, groups))


def _pattern_groups(ctx: Context, args: Node | None) -> int | None:
    first = args.named_children[0] if args is not None and args.named_children else None
    if first is None or first.type not in ("string", "concatenated_string"):
        return None
    try:
        return re.compile(ast.literal_eval(ctx.text(first))).groups
    except (ValueError, SyntaxError, TypeError, re.error):
        return None
