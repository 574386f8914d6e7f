"""Derived values: one step of flow from a function's parameters, for the boundary-check stage.

The review rules (SC101-SC104) see a parameter used directly (`values[0]`, `a / b`). A written
function body also fails on values one step away from a parameter:
- a length used as a divisor: `total / len(values)`, `n = len(values); total / n`
  (JavaScript: `values.length`): the parameter must not be empty;
- a value derived from a parameter and indexed at a fixed position: `words = text.split();
  words[0]`, `kept = list(filter(f, items)); kept[0]`, `parts = s.split(","); parts[1]`: the
  derived value must be long enough (a `split` with a separator gives at least one element);
- the highest fixed index of a parameter: `values[0] / values[1]` needs two items, whatever an
  `if not values:` above it says.
Each need is dropped where the function's own code already ensures it before the use (`if not
words`, `len(values) < 2`, `values.length`, an `assert`): the same precision bar as the review
rules. Python and JavaScript/TypeScript; bounded by the function's size.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from tree_sitter import Node

MAX_NODES = 20_000
_PY_SPLITS = {"split": 0, "rsplit": 0, "splitlines": 0}  # no separator given: may be empty
_JS_FILTERS = frozenset({"filter"})


@dataclass(frozen=True, slots=True)
class Need:
    """A guard a written body needs: `name` must hold at least `length` items, checked before
    byte `before` (a parameter's at the body's top; a derived value's right after `after`)."""

    name: str
    length: int
    use: int  # where the first use that needs it starts
    after: int | None = None  # a derived value: the end of the statement that assigns it
    param: bool = True


def needs(fn: Node, source: bytes, params: set[str], language: str) -> list[Need]:
    """The guards the body of `fn` needs for values one step from its parameters."""
    python = language == "python"
    if not python and language not in ("javascript", "typescript", "tsx"):
        return []
    body = fn.child_by_field_name("body")
    if body is None:
        return []
    derived: dict[str, tuple[int, int]] = {}  # name -> (min length it is known to have, end)
    lengths: dict[str, str] = {}  # `n = len(values)`: n -> values
    found: dict[str, Need] = {}
    text = source.decode("utf-8", "replace")

    def want(name: str, length: int, use: Node) -> None:
        old = found.get(name)
        after = derived[name][1] if name in derived else None
        if old is None or old.length < length:
            found[name] = Need(name, length, min(use.start_byte, old.use) if old else
                               use.start_byte, after, name not in derived)

    stack, budget = [body], MAX_NODES
    order: list[Node] = []
    while stack and budget > 0:  # document order, so assignments come before their uses
        budget -= 1
        n = stack.pop()
        order.append(n)
        if n.type in ("function_definition", "function_declaration", "arrow_function",
                      "lambda", "method_definition", "class_definition") and n.id != fn.id:
            continue
        stack.extend(reversed(n.children))
    for n in order:
        _assignment(n, source, params, python, derived, lengths)
        divisor = _divisor(n, python)
        if divisor is not None:
            target = _length_of(divisor, source, python) or lengths.get(_src(divisor, source))
            if target in params:
                want(target, 1, n)
        index = _fixed_index(n, source)
        if index is not None:
            name, k = index
            if name in params or name in derived:
                want(name, k, n)
    out = []
    for need in found.values():
        known_min = derived[need.name][0] if need.name in derived else 0
        if need.length <= known_min:
            continue
        start = need.after if need.after is not None else body.start_byte
        if _ensured(text[start:need.use], need.name, need.length, python):
            continue
        out.append(need)
    return sorted(out, key=lambda n: n.use)


def _src(node: Node, source: bytes) -> str:
    return source[node.start_byte:node.end_byte].decode("utf-8", "replace")


def _assignment(n: Node, source: bytes, params: set[str], python: bool,
                derived: dict[str, tuple[int, int]], lengths: dict[str, str]) -> None:
    """Record `name = <derived from a parameter>` and `n = len(param)`."""
    if python and n.type == "assignment":
        left, right = n.child_by_field_name("left"), n.child_by_field_name("right")
    elif not python and n.type == "variable_declarator":
        left, right = n.child_by_field_name("name"), n.child_by_field_name("value")
    else:
        return
    if left is None or right is None or left.type != "identifier":
        return
    name = _src(left, source)
    length_of = _length_of(right, source, python)
    if length_of in params:
        lengths[name] = length_of
        return
    least = _derived_min(right, source, params, python)
    if least is not None:
        statement = n.parent if n.parent is not None else n
        derived[name] = (least, statement.end_byte)


def _derived_min(node: Node, source: bytes, params: set[str], python: bool) -> int | None:
    """The fewest items a value made from a parameter in one step can have, or None when the
    node is not such a value: `p.split()` 0, `p.split(",")` 1, `list(filter(f, p))` 0,
    `[x for x in p if ...]` 0, JavaScript `p.split(s)` 1, `p.filter(f)` 0."""
    if node.type in ("call", "call_expression"):
        fn = node.child_by_field_name("function")
        args = node.child_by_field_name("arguments")
        argc = len(args.named_children) if args is not None else 0
        if fn is not None and fn.type in ("attribute", "member_expression"):
            obj = fn.child_by_field_name("object")
            method = fn.child_by_field_name("attribute" if python else "property")
            if obj is None or method is None or _src(obj, source) not in params:
                return None
            name = _src(method, source)
            if python and name in _PY_SPLITS:
                return 0 if argc == 0 or name == "splitlines" else 1
            if not python and name == "split":
                return 1 if argc == 1 else None
            if not python and name in _JS_FILTERS:
                return 0
            return None
        if python and fn is not None and _src(fn, source) in ("list", "tuple") and argc == 1:
            inner = args.named_children[0] if args is not None else None
            if inner is not None and inner.type == "call":
                f = inner.child_by_field_name("function")
                a = inner.child_by_field_name("arguments")
                if f is not None and _src(f, source) == "filter" and a is not None and \
                        a.named_children and _src(a.named_children[-1], source) in params:
                    return 0
        return None
    if python and node.type == "list_comprehension":
        clauses = [c for c in node.named_children if c.type == "for_in_clause"]
        filtered = any(c.type == "if_clause" for c in node.named_children)
        if len(clauses) == 1 and filtered:
            right = clauses[0].child_by_field_name("right")
            if right is not None and _src(right, source) in params:
                return 0
    return None


def _divisor(n: Node, python: bool) -> Node | None:
    if n.type in ("binary_operator", "binary_expression"):
        op = n.child_by_field_name("operator")
        if op is not None and op.type in ("/", "//", "%"):
            return n.child_by_field_name("right")
    if n.type in ("augmented_assignment", "augmented_assignment_expression"):
        op = n.child_by_field_name("operator")
        if op is not None and op.type in ("/=", "//=", "%="):
            return n.child_by_field_name("right")
    return None


def _length_of(node: Node, source: bytes, python: bool) -> str | None:
    """`len(p)` (Python) or `p.length` (JavaScript): the name whose length it is."""
    while node.type == "parenthesized_expression" and node.named_children:
        node = node.named_children[0]
    if python and node.type == "call":
        fn, args = node.child_by_field_name("function"), node.child_by_field_name("arguments")
        if fn is not None and _src(fn, source) == "len" and args is not None and \
                len(args.named_children) == 1 and args.named_children[0].type == "identifier":
            return _src(args.named_children[0], source)
    if not python and node.type == "member_expression":
        obj, prop = node.child_by_field_name("object"), node.child_by_field_name("property")
        if obj is not None and prop is not None and obj.type == "identifier" and \
                _src(prop, source) == "length":
            return _src(obj, source)
    return None


def _fixed_index(n: Node, source: bytes) -> tuple[str, int] | None:
    """`name[k]` with a literal k: (name, items needed); `name[-k]` needs k."""
    if n.type not in ("subscript", "subscript_expression"):
        return None
    value = n.child_by_field_name("value") or n.child_by_field_name("object")
    index = n.child_by_field_name("subscript") or n.child_by_field_name("index")
    if value is None or index is None or value.type != "identifier":
        return None
    parent = n.parent
    if parent is not None and parent.type in ("assignment", "assignment_expression") and \
            parent.child_by_field_name("left") == n:
        return None  # `p[0] = x` writes; the rules leave stores alone too
    text = _src(index, source).replace(" ", "")
    if re.fullmatch(r"\d{1,4}", text):
        return _src(value, source), int(text) + 1
    if re.fullmatch(r"-\d{1,4}", text) and text != "-0":
        return _src(value, source), int(text[1:])
    return None


def _ensured(before: str, name: str, length: int, python: bool) -> bool:
    """True when the code before the use already checks `name`'s length well enough: a test
    of its emptiness for one item, a length comparison for more (any `len(name)`/`name.length`
    compared with a number at least `length - 1`), an `assert`, a loop over it."""
    n = re.escape(name)
    if python:
        if length <= 1 and re.search(rf"\b(?:if|elif|while|assert|and|or)\s+(?:not\s+)?{n}\b"
                                     rf"|\bfor\s+\w+\s+in\s+{n}\b", before):
            return True
        sizes = re.findall(rf"\blen\(\s*{n}\s*\)\s*(<|<=|>|>=|==|!=)\s*(\d+)", before)
    else:
        if length <= 1 and re.search(rf"(?:!\s*{n}\b|\bif\s*\(\s*{n}\b|\b{n}\s*\?\.)", before):
            return True
        sizes = re.findall(rf"\b{n}\??\.length\s*(<|<=|>|>=|===|==|!==|!=)\s*(\d+)", before)
    for op, number in sizes:
        value = int(number)
        if op in ("<", ">=") and value >= length:
            return True
        if op in ("<=", ">") and value + 1 >= length:
            return True
        if op in ("==", "===", "!=", "!==") and value >= length - 1:
            return True
    return False
