"""SC202 shadowed-builtin: a variable, parameter or function named like a builtin."""

from __future__ import annotations

import re
from collections.abc import Iterator
from functools import lru_cache
from pathlib import Path

from tree_sitter import Node

from analysis.documents.reader import CONFIG_MAX_BYTES, read_bounded
from analysis.documents.store import uri_to_path
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

# Predeclared identifiers younger than Go 1: in a module whose go.mod names an older language
# version, the name is free (not a builtin to shadow).
GO_ADDED = {"any": (1, 18), "comparable": (1, 18), "clear": (1, 21), "max": (1, 21),
            "min": (1, 21)}
_GO_LINE = re.compile(rb"^go\s+(\d+)\.(\d+)", re.M)


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
    (`def format(self)`) do not shadow anything and are not reported, nor are Go's newer
    predeclared names in a module whose `go.mod` says an older Go (`min`/`max`/`clear` exist
    from 1.21, `any`/`comparable` from 1.18).
    """

    code = "SC202"
    preview = True  # below the precision bar on real code (benchmarks/review_precision.py)
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
        too_new = _too_new(ctx) if ctx.language == "go" else frozenset()
        for node in first_bindings(ctx, matches):  # one finding per name and scope
            if _class_member(ctx, node) or ctx.text(node) in too_new:
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


def _too_new(ctx: Context) -> frozenset[str]:
    """The predeclared names the file's Go version does not have yet (per its go.mod)."""
    path = uri_to_path(ctx.document.uri)
    version = _go_mod_version(str(path.parent)) if path is not None else None
    if version is None:
        return frozenset()
    return frozenset(name for name, since in GO_ADDED.items() if version < since)


@lru_cache(maxsize=512)
def _go_mod_version(directory: str) -> tuple[int, int] | None:
    """The `go` line of the nearest go.mod at or above `directory` (None: none found)."""
    start = Path(directory)
    for folder in [start, *start.parents][:32]:
        read = read_bounded(folder / "go.mod", CONFIG_MAX_BYTES)
        if read.data is not None:
            found = _GO_LINE.search(read.data)
            return (int(found[1]), int(found[2])) if found else None
    return None


RULE = ShadowedBuiltin()
