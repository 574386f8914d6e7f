"""Registry of supported languages: LSP languageIds and file extensions to tree-sitter grammars.

Grammars come from the per-language wheels and load lazily (first use). An unknown language is not
an error: `spec_for` returns None and the document is held as plain text.
"""

from __future__ import annotations

import importlib
import threading
from dataclasses import dataclass, field
from pathlib import PurePath

from tree_sitter import Language, Parser


@dataclass(frozen=True, slots=True)
class LanguageSpec:
    """One language: its canonical name, grammar loader and comment syntax."""

    name: str
    module: str  # grammar wheel module, e.g. "tree_sitter_python"
    function: str  # function in that module returning the language pointer
    language_ids: tuple[str, ...]  # LSP languageIds
    extensions: tuple[str, ...]  # with the dot, lower case
    line_comment: str = "//"
    _language: list[Language] = field(default_factory=list, compare=False, repr=False)

    @property
    def language(self) -> Language:
        """The tree-sitter Language, loaded on first use."""
        if not self._language:
            with _LOCK:
                if not self._language:
                    mod = importlib.import_module(self.module)
                    self._language.append(Language(getattr(mod, self.function)()))
        return self._language[0]

    def parser(self) -> Parser:
        """A new parser for this language (parsers are not thread-safe: one per user)."""
        return Parser(self.language)


_LOCK = threading.Lock()

LANGUAGES: tuple[LanguageSpec, ...] = (
    LanguageSpec("python", "tree_sitter_python", "language", ("python",),
                 (".py", ".pyi", ".pyw"), line_comment="#"),
    LanguageSpec("javascript", "tree_sitter_javascript", "language",
                 ("javascript", "javascriptreact"), (".js", ".mjs", ".cjs", ".jsx")),
    LanguageSpec("typescript", "tree_sitter_typescript", "language_typescript",
                 ("typescript",), (".ts", ".mts", ".cts")),
    LanguageSpec("tsx", "tree_sitter_typescript", "language_tsx",
                 ("typescriptreact",), (".tsx",)),
    LanguageSpec("go", "tree_sitter_go", "language", ("go",), (".go",)),
    LanguageSpec("rust", "tree_sitter_rust", "language", ("rust",), (".rs",)),
    LanguageSpec("java", "tree_sitter_java", "language", ("java",), (".java",)),
    LanguageSpec("c", "tree_sitter_c", "language", ("c",), (".c", ".h")),
    LanguageSpec("cpp", "tree_sitter_cpp", "language", ("cpp", "cuda-cpp"),
                 (".cc", ".cpp", ".cxx", ".c++", ".hpp", ".hh", ".hxx", ".h++", ".ipp")),
)

_BY_NAME = {spec.name: spec for spec in LANGUAGES}
_BY_ID = {lid: spec for spec in LANGUAGES for lid in spec.language_ids}
_BY_EXT = {ext: spec for spec in LANGUAGES for ext in spec.extensions}


def by_name(name: str) -> LanguageSpec | None:
    """The spec with this canonical name (e.g. "tsx"), or None."""
    return _BY_NAME.get(name)


def spec_for(
    language_id: str | None = None, path: str | PurePath | None = None
) -> LanguageSpec | None:
    """The spec for an LSP languageId, else for a path's extension; None when unknown."""
    if language_id:
        spec = _BY_ID.get(language_id.lower())
        if spec is not None:
            return spec
    if path is not None:
        return _BY_EXT.get(PurePath(str(path)).suffix.lower())
    return None


def supported_extensions() -> frozenset[str]:
    """Every file extension with a grammar."""
    return frozenset(_BY_EXT)
