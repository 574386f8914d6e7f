"""Functions, their parameters and the guards on them: shared by the boundary rules (SC1xx).

A parameter counts as guarded in a function when its name appears anywhere in a condition, a
comparison, a boolean operator, a length check or an assertion of that function, or when the
function rebinds it; a use inside a `try` that has handlers is guarded too. Deliberately generous:
a boundary rule should stay quiet on code that checks its input in any visible way.
"""

from __future__ import annotations

from dataclasses import dataclass

from tree_sitter import Node, Query

from analysis.documents.node_types import table_for
from analysis.review.checks._base import Context, bounded_cursor

# The grammars' one function table (analysis/documents/node_types.py), for the languages with
# guard queries below.
FUNCTION_TYPES: dict[str, frozenset[str]] = {
    lang: table_for(lang).functions for lang in ("python", "javascript", "typescript", "tsx", "go")
}

_GUARDS_PY = """
(if_statement condition: (_) @g)
(elif_clause condition: (_) @g)
(while_statement condition: (_) @g)
(conditional_expression) @g
(assert_statement) @g
(boolean_operator) @g
(comparison_operator) @g
(not_operator) @g
(call function: (identifier) @_f arguments: (argument_list) @g
  (#any-of? @_f "isinstance" "hasattr" "callable" "bool" "getattr"))
(call function: (identifier) @_l arguments: (argument_list) @len (#eq? @_l "len"))
(assignment left: (_) @g)
(augmented_assignment left: (_) @g)
(named_expression name: (identifier) @g)
(for_statement left: (_) @g)
(match_statement subject: (_) @g)
(try_statement body: (block) @try (except_clause))
"""

_GUARDS_JS = """
(if_statement condition: (_) @g)
(while_statement condition: (_) @g)
(do_statement condition: (_) @g)
(ternary_expression condition: (_) @g)
(binary_expression operator: ["&&" "||" "??" "==" "===" "!=" "!==" "<" ">" "<=" ">="
  "instanceof" "in"]) @g
(unary_expression operator: ["!" "typeof"]) @g
(assignment_expression left: (_) @g)
(augmented_assignment_expression left: (_) @g)
(switch_statement value: (_) @g)
(member_expression object: (identifier) @len property: (property_identifier) @_p
  (#eq? @_p "length"))
(try_statement body: (statement_block) @try handler: (catch_clause))
"""

_GUARDS_GO = """
(if_statement condition: (_) @g)
(binary_expression operator: ["==" "!=" "<" ">" "<=" ">=" "&&" "||"]) @g
(unary_expression operator: "!") @g
(call_expression function: (identifier) @_f arguments: (argument_list) @len
  (#any-of? @_f "len" "cap"))
(assignment_statement left: (expression_list) @g)
(short_var_declaration left: (expression_list) @g)
(expression_switch_statement value: (_) @g)
(call_expression function: (identifier) @_r (#eq? @_r "recover")) @recover
"""

_GUARD_SOURCES = {
    "python": _GUARDS_PY, "javascript": _GUARDS_JS,
    "typescript": _GUARDS_JS + "(non_null_expression) @g",
    "go": _GUARDS_GO,
}
_GUARD_SOURCES["tsx"] = _GUARD_SOURCES["typescript"]
_GUARD_QUERIES: dict[str, Query] = {}

_NAME_TYPES = frozenset({"identifier"})


@dataclass(frozen=True, slots=True)
class Param:
    """One named parameter of a function."""

    name: str
    node: Node  # the identifier
    optional: bool  # may be None/null/undefined/nil (default None, nullable type, Go pointer)
    type_node: Node | None = None
    default: Node | None = None


@dataclass(slots=True)
class Guards:
    """What a function checks: names seen in guards, spans of guarded `try` bodies."""

    names: set[str]
    try_spans: list[tuple[int, int]]
    lengths: set[str]  # names whose length the function takes (len(x), x.length)
    everything: bool = False  # a Go function that calls recover()

    def covers(self, name: str, use: Node, *, length_counts: bool = False) -> bool:
        """True when this use of `name` is guarded (`length_counts`: a length check guards)."""
        if self.everything or name in self.names or (length_counts and name in self.lengths):
            return True
        return any(lo <= use.start_byte < hi for lo, hi in self.try_spans)


def enclosing_function(ctx: Context, node: Node) -> Node | None:
    """The nearest function node around `node`, or None at module level."""
    types = FUNCTION_TYPES.get(ctx.language, frozenset())
    return next((a for a in ctx.ancestors(node) if a.type in types), None)


def params_of(ctx: Context, fn: Node) -> dict[str, Param]:
    """The function's named parameters by name (cached per file)."""
    key = ("params", fn.id)
    cached = ctx.cache.get(key)
    if cached is None:
        cached = {p.name: p for p in _extract_params(ctx, fn)}
        ctx.cache[key] = cached
    return cached


def guards_of(ctx: Context, fn: Node) -> Guards:
    """The guards inside a function's body (cached per file)."""
    key = ("guards", fn.id)
    cached = ctx.cache.get(key)
    if cached is not None:
        return cached
    query = _GUARD_QUERIES.get(ctx.language)
    if query is None:
        query = _GUARD_QUERIES[ctx.language] = Query(
            ctx.document.spec.language, _GUARD_SOURCES[ctx.language]  # type: ignore[union-attr]
        )
    body = fn.child_by_field_name("body") or fn
    guards = Guards(set(), [], set())
    captures = bounded_cursor(query).captures(body)
    for capture, names in (("g", guards.names), ("len", guards.lengths)):
        walked_to = -1  # nested guards (`a and (b or c)`): walk the outermost one only
        for node in sorted(captures.get(capture, ()), key=lambda n: (n.start_byte, -n.end_byte)):
            ctx.check()
            if node.type == "identifier":
                names.add(ctx.text(node))
            elif node.end_byte > walked_to:
                names.update(ctx.text(n) for n in ctx.walk(node) if n.type in _NAME_TYPES)
                walked_to = node.end_byte
    guards.try_spans = [(n.start_byte, n.end_byte) for n in captures.get("try", ())]
    guards.everything = bool(captures.get("recover"))
    ctx.cache[key] = guards
    return guards


def unguarded_param(ctx: Context, use: Node, name_node: Node, *, length_counts: bool = False
                    ) -> Param | None:
    """The parameter that `name_node` (inside `use`) refers to, when nothing guards it."""
    fn = enclosing_function(ctx, use)
    if fn is None:
        return None
    name = ctx.text(name_node)
    param = params_of(ctx, fn).get(name)
    if param is None or guards_of(ctx, fn).covers(name, use, length_counts=length_counts):
        return None
    return param


# --------------------------------------------------------------------------- parameters


def _extract_params(ctx: Context, fn: Node) -> list[Param]:
    if ctx.language == "python":
        return _python_params(ctx, fn)
    if ctx.language == "go":
        return _go_params(ctx, fn)
    return _js_params(ctx, fn)


def _python_params(ctx: Context, fn: Node) -> list[Param]:
    params = fn.child_by_field_name("parameters")
    out: list[Param] = []
    for child in params.named_children if params else ():
        if child.type == "identifier":
            out.append(Param(ctx.text(child), child, False))
            continue
        if child.type == "list_splat_pattern" and child.named_children:
            name = child.named_children[0]  # *args: a tuple that may be empty
            out.append(Param(ctx.text(name), name, False, child))
            continue
        if child.type not in ("typed_parameter", "default_parameter", "typed_default_parameter"):
            continue  # **kwargs, separators
        name = child.child_by_field_name("name") or child.named_children[0]
        if name.type != "identifier":
            continue
        type_node = child.child_by_field_name("type")
        default = child.child_by_field_name("value")
        optional = (default is not None and default.type == "none") or (
            type_node is not None and _py_type_optional(ctx.text(type_node))
        )
        out.append(Param(ctx.text(name), name, optional, type_node, default))
    return out


def _py_type_optional(text: str) -> bool:
    """True when an annotation says "or None" at its top level: `Optional[X]`, `X | None`,
    `Union[X, None]`; not `Callable[[object], Optional[bytes]]` (a callable is never None)."""
    text = text.strip().strip("\"'").replace(" ", "")
    parts = _top_level_split(text, "|")
    if len(parts) > 1:
        return "None" in parts
    head, bracket, rest = text.partition("[")
    name = head.rsplit(".", 1)[-1]
    if not bracket or not rest.endswith("]"):
        return text == "None"
    if name == "Optional":
        return True
    return name == "Union" and "None" in _top_level_split(rest[:-1], ",")


def _top_level_split(text: str, separator: str) -> list[str]:
    """`text` split at `separator` outside brackets."""
    parts, depth, start = [], 0, 0
    for i, char in enumerate(text):
        if char in "[(":
            depth += 1
        elif char in "])":
            depth -= 1
        elif char == separator and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    parts.append(text[start:])
    return parts


def _ts_type_nullable(type_node: Node | None) -> bool:
    """True when a TypeScript annotation is a union with `null` or `undefined` at its top
    level (`T | undefined`), not somewhere inside (`{ a?: T }`, `Array<T | null>`)."""
    node = type_node.named_children[0] if type_node is not None and \
        type_node.type == "type_annotation" and type_node.named_children else type_node
    while node is not None and node.type == "parenthesized_type" and node.named_children:
        node = node.named_children[0]
    if node is None or node.type != "union_type":
        return False
    stack = list(node.named_children)
    while stack:
        member = stack.pop()
        if member.type == "union_type":
            stack.extend(member.named_children)
        elif _null_type(member):
            return True
    return False


def _null_type(member: Node) -> bool:
    if member.type == "literal_type" and member.named_children:
        return member.named_children[0].type in ("null", "undefined")
    return member.type == "predefined_type" and member.text in (b"null", b"undefined")


def _js_params(ctx: Context, fn: Node) -> list[Param]:
    single = fn.child_by_field_name("parameter")
    if single is not None:  # `x => ...`
        return [Param(ctx.text(single), single, False)] if single.type == "identifier" else []
    params = fn.child_by_field_name("parameters")
    out: list[Param] = []
    for child in params.named_children if params else ():
        if child.type == "identifier":
            out.append(Param(ctx.text(child), child, False))
        elif child.type == "assignment_pattern":
            left, right = child.child_by_field_name("left"), child.child_by_field_name("right")
            if left is not None and left.type == "identifier":
                optional = right is not None and right.type in ("null", "undefined")
                out.append(Param(ctx.text(left), left, optional, None, right))
        elif child.type in ("required_parameter", "optional_parameter"):
            pattern = child.child_by_field_name("pattern")
            if pattern is None or pattern.type != "identifier":
                continue
            type_node = child.child_by_field_name("type")
            default = child.child_by_field_name("value")
            nullable = _ts_type_nullable(type_node)
            optional = default is None and (child.type == "optional_parameter" or nullable)
            out.append(Param(ctx.text(pattern), pattern, optional, type_node, default))
    return out


def _go_params(ctx: Context, fn: Node) -> list[Param]:
    params = fn.child_by_field_name("parameters")
    out: list[Param] = []
    for child in params.named_children if params else ():
        if child.type == "variadic_parameter_declaration":  # args ...T: a slice, maybe empty
            out.extend(Param(ctx.text(n), n, False, child)
                       for n in child.children_by_field_name("name"))
            continue
        if child.type != "parameter_declaration":
            continue
        type_node = child.child_by_field_name("type")
        pointer = type_node is not None and type_node.type == "pointer_type"
        for name in child.children_by_field_name("name"):
            out.append(Param(ctx.text(name), name, pointer, type_node))
    return out
