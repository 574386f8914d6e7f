"""The package architecture, read from the source: import direction, no cycles, declared state.

Every module of analysis/, generation/ and lsp_server/ is parsed with `ast`; its imports
(module level and inside functions alike) make the import graph. The rules (README "Packages"):
- no cycle among the modules (imports under `if TYPE_CHECKING:` never run and do not count here);
- imports run one way, lsp_server -> generation -> analysis (type-only imports count here too);
- lsprotocol and pygls are imported only in lsp_server;
- generation/sparse_attention (loaded by vLLM) imports none of the three packages;
- no server attribute hides behind `type: ignore[attr-defined]` in lsp_server;
- every module imports on its own, with none of the project's modules loaded before it.
"""

from __future__ import annotations

import ast
import graphlib
import json
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("analysis", "generation", "lsp_server")
LAYER = {"analysis": 0, "generation": 1, "lsp_server": 2}  # may import only its own or lower
LSP_LIBRARIES = ("lsprotocol", "pygls")
PLUGIN = "generation.sparse_attention"


@dataclass(frozen=True, slots=True)
class Import:
    """One import statement's target module, where it is, and whether it only serves types."""

    source: str  # the importing module
    target: str  # the imported module (a submodule where `from pkg import sub` names one)
    line: int
    type_only: bool


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def project_modules() -> dict[str, Path]:
    """Every module of the three packages, by dotted name."""
    return {module_name(p): p for pkg in PACKAGES for p in sorted((ROOT / pkg).rglob("*.py"))}


MODULES = project_modules()


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _resolve(source: str, path: Path, node: ast.ImportFrom) -> str:
    """The absolute module an ImportFrom names (relative imports resolved)."""
    if not node.level:
        return node.module or ""
    package = source.split(".") if path.name == "__init__.py" else source.split(".")[:-1]
    base = package[: len(package) - (node.level - 1)]
    return ".".join([*base, node.module] if node.module else base)


def imports_of(source: str, path: Path) -> list[Import]:
    """Every import in a module, nested ones included."""
    found: list[Import] = []

    def visit(node: ast.AST, type_only: bool) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            for child in node.body:
                visit(child, True)
            for child in node.orelse:
                visit(child, type_only)
            return
        if isinstance(node, ast.Import):
            found.extend(Import(source, a.name, node.lineno, type_only) for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            module = _resolve(source, path, node)
            for alias in node.names:
                sub = f"{module}.{alias.name}"
                found.append(Import(source, sub if sub in MODULES else module, node.lineno,
                                    type_only))
        for child in ast.iter_child_nodes(node):
            visit(child, type_only)

    visit(ast.parse(path.read_text(encoding="utf-8"), str(path)), False)
    return found


ALL_IMPORTS = [imp for name, path in MODULES.items() for imp in imports_of(name, path)]


def _top(module: str) -> str:
    return module.split(".", 1)[0]


def _where(imp: Import) -> str:
    return f"{MODULES[imp.source].relative_to(ROOT)}:{imp.line} imports {imp.target}"


def test_the_parser_sees_the_imports_it_should() -> None:
    """The graph is not empty by mistake: known edges of each kind are in it."""
    edges = {(i.source, i.target, i.type_only) for i in ALL_IMPORTS}
    assert ("lsp_server.server", "generation.completion.engine", False) in edges
    assert ("lsp_server.handlers.diagnostics", "lsp_server.server", True) in edges
    assert ("generation.sparse_attention.backend", "generation.sparse_attention.config",
            False) in edges  # a relative import, resolved


def import_cycle(imports: list[Import], modules: set[str]) -> list[str] | None:
    """A cycle of runtime imports among `modules` (as a path of names), or None."""
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for imp in imports:
        if not imp.type_only and imp.target in modules and imp.target != imp.source:
            graph[imp.source].add(imp.target)
    try:
        graphlib.TopologicalSorter(graph).prepare()
    except graphlib.CycleError as exc:
        return list(exc.args[1])
    return None


def test_no_import_cycle() -> None:
    assert import_cycle(ALL_IMPORTS, set(MODULES)) is None


def test_imports_run_one_way() -> None:
    upward = [_where(i) for i in ALL_IMPORTS
              if _top(i.target) in LAYER and LAYER[_top(i.target)] > LAYER[_top(i.source)]]
    assert upward == []


def test_lsp_types_stay_in_lsp_server() -> None:
    leaks = [_where(i) for i in ALL_IMPORTS
             if _top(i.target) in LSP_LIBRARIES and _top(i.source) != "lsp_server"]
    assert leaks == []


def test_sparse_attention_imports_none_of_the_project() -> None:
    found = [_where(i) for i in ALL_IMPORTS
             if (i.source == PLUGIN or i.source.startswith(f"{PLUGIN}."))
             and _top(i.target) in PACKAGES
             and not (i.target == PLUGIN or i.target.startswith(f"{PLUGIN}."))]
    assert found == []


def test_no_attribute_is_bolted_onto_the_server() -> None:
    marked = [f"{p.relative_to(ROOT)}:{n}"
              for p in sorted((ROOT / "lsp_server").rglob("*.py"))
              for n, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1)
              if "type: ignore[attr-defined]" in line]
    assert marked == []


# One interpreter for all modules (a process per module costs a minute): before each import
# every project module is dropped from sys.modules, so each one loads as if first. Modules
# whose third-party dependency is not installed (vllm on a bare install) are reported.
ISOLATED_IMPORTS = textwrap.dedent("""
    import importlib, json, sys
    names = json.loads(sys.stdin.read())
    failures, skipped = [], []
    for name in names:
        for loaded in [m for m in sys.modules if m.split(".")[0] in {packages!r}]:
            del sys.modules[loaded]
        try:
            importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name and exc.name.split(".")[0] not in {packages!r}:
                skipped.append(f"{{name}}: {{exc.name}} is not installed")
            else:
                failures.append(f"{{name}}: {{exc!r}}")
        except Exception as exc:
            failures.append(f"{{name}}: {{exc!r}}")
    print(json.dumps({{"failures": failures, "skipped": skipped}}))
""").format(packages=set(PACKAGES))


def test_every_module_imports_on_its_own() -> None:
    names = sorted(n for n in MODULES if not n.endswith(".__main__"))  # scripts: they run
    done = subprocess.run([sys.executable, "-c", ISOLATED_IMPORTS], input=json.dumps(names),
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["failures"] == []
    if result["skipped"]:
        print("not importable here:", *result["skipped"], sep="\n  ")


def test_an_import_cycle_would_be_caught(tmp_path: Path) -> None:
    """The cycle check itself fails on a cycle (a lazy import in a function counts)."""
    a, b = tmp_path / "a.py", tmp_path / "b.py"
    a.write_text("def f():\n    from b import g\n")
    b.write_text("import a\nfrom typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import c\n")
    found = [i for name, path in (("a", a), ("b", b)) for i in imports_of(name, path)]
    assert {(i.source, i.target, i.type_only) for i in found} == {
        ("a", "b", False), ("b", "a", False), ("b", "typing", False), ("b", "c", True)}
    assert import_cycle(found, {"a", "b", "c"}) in (["a", "b", "a"], ["b", "a", "b"])
    # The same modules with b's import of a only for types: no cycle.
    typed = [i if i.target != "a" else Import(i.source, i.target, i.line, True) for i in found]
    assert import_cycle(typed, {"a", "b", "c"}) is None

