"""SC202 shadowed-builtin: a variable, parameter or function named like a builtin."""

from __future__ import annotations

from collections.abc import Iterator

from tree_sitter import Node

from analysis.review.checks._base import Context, Match, Rule, per_language
from analysis.review.checks._bindings import CLASS_SCOPE, binding_query, first_bindings
from analysis.review.findings import Finding

# Fixed lists (not `dir(builtins)`), so a rule's verdict does not depend on the interpreter.
PYTHON_BUILTINS = (
    "abs", "aiter", "all", "anext", "any", "ascii", "bin", "bool", "breakpoint", "bytearray",
    "bytes", "callable", "chr", "classmethod", "compile", "complex", "delattr", "dict", "dir",
    "divmod", "enumerate", "eval", "exec", "filter", "float", "format", "frozenset", "getattr",
    "globals", "hasattr", "hash", "hex", "id", "input", "int", "isinstance", "issubclass", "iter",
    "len", "list", "locals", "map", "max", "memoryview", "min", "next", "object", "oct", "open",
    "ord", "pow", "print", "property", "range", "repr", "reversed", "round", "set", "setattr",
    "slice", "sorted", "staticmethod", "str", "sum", "super", "tuple", "type", "vars", "zip",
)
JS_GLOBALS = (
    "undefined", "NaN", "Infinity", "eval", "arguments", "globalThis", "Object", "Array",
    "String", "Number", "Boolean", "Symbol", "BigInt", "Map", "Set", "WeakMap", "WeakSet",
    "Promise", "JSON", "Math", "Date", "RegExp", "Error", "Function", "Reflect", "Proxy",
    "parseInt", "parseFloat", "isNaN", "isFinite",
)
GO_PREDECLARED = (
    "any", "bool", "byte", "comparable", "complex64", "complex128", "error", "float32",
    "float64", "int", "int8", "int16", "int32", "int64", "rune", "string", "uint", "uint8",
    "uint16", "uint32", "uint64", "uintptr", "true", "false", "iota", "nil", "append", "cap",
    "clear", "close", "complex", "copy", "delete", "imag", "len", "make", "max", "min", "new",
    "panic", "print", "println", "real", "recover",
)


def _any_of(names: tuple[str, ...]) -> str:
    return "(#any-of? @name " + " ".join(f'"{n}"' for n in names) + ")"


class ShadowedBuiltin(Rule):
    """## What it does
    Finds variables, parameters and functions whose name is a builtin: Python builtins (`list`,
    `id`, `type`, ...), JavaScript globals (`undefined`, `Object`, `parseInt`, ...) and Go's
    predeclared identifiers (`len`, `string`, `new`, ...).

    ## Why is this bad?
    Inside the scope, the builtin is gone: `list(x)` after `list = [...]` raises `TypeError`,
    and readers who see `len` expect the builtin.

    ## Example
    ```python
    def tag_ids(items):
        id = 0
        for item in items:
            id += 1
        return id
    ```
    Use instead: `count`, `item_id`, ...

    ## Fix safety
    No automatic fix: the new name is the author's choice. Methods and class attributes
    (`def format(self)`) do not shadow anything and are not reported.
    """

    code = "SC202"
    name = "shadowed-builtin"
    summary = "a variable, parameter or function that shadows a builtin"
    message = "`{name}` shadows the builtin `{name}`"
    queries = per_language({
        "python": binding_query("python", _any_of(PYTHON_BUILTINS)),
        "javascript": binding_query("javascript", _any_of(JS_GLOBALS)),
        "typescript": binding_query("typescript", _any_of(JS_GLOBALS)),
        "tsx": binding_query("tsx", _any_of(JS_GLOBALS)),
        "go": binding_query("go", _any_of(GO_PREDECLARED)),
    })

    def check(self, ctx: Context, matches: list[Match]) -> Iterator[Finding]:
        """Report every binding of a builtin's name outside class bodies."""
        for node in first_bindings(ctx, matches):  # one finding per name and scope
            if _class_member(ctx, node):
                continue
            yield ctx.finding(self, node, self.message.format(name=ctx.text(node)))


def _class_member(ctx: Context, node: Node) -> bool:
    """True for a method name or class attribute (they live in the class namespace)."""
    scope = CLASS_SCOPE.get(ctx.language)
    if not scope or ctx.language != "python":
        return False
    owner = node.parent
    if owner is not None and owner.type == "assignment":
        owner = owner.parent  # expression_statement
    elif owner is None or owner.type not in ("function_definition", "class_definition"):
        return False
    if owner is not None and owner.parent is not None and \
            owner.parent.type == "decorated_definition":
        owner = owner.parent
    block = owner.parent if owner is not None else None
    return block is not None and block.parent is not None and block.parent.type == scope


RULE = ShadowedBuiltin()
