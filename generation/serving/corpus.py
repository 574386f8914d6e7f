"""The user's own code as text for a model to learn from: walked, read and masked as for prompts.

Quantization calibrates on it and fine-tuning cuts its examples from it, so both go through the
same policy as every prompt: the project's walker (`.gitignore`, default and configured
excludes, no FIFOs or devices), the bounded reader (no binary, huge or minified files), the
secret-file check, and secret values masked in place (`analysis.secrets.redact`, which keeps
lengths and lines). The lines where something was masked are remembered, so a caller can keep a
masked value out of what a model is trained to write.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass, field
from pathlib import Path

from analysis.documents.discover import discover
from analysis.documents.languages import spec_for, supported_extensions
from analysis.documents.reader import DEFAULT_MAX_BYTES, read_code, stat_problem
from analysis.secrets import SecretFilter, redact


class CorpusError(Exception):
    """The directory gives no text to learn from (one line, for the user)."""


@dataclass(frozen=True, slots=True)
class SourceFile:
    """One readable source file, its secrets masked."""

    path: str  # relative to the walked directory, with forward slashes
    language: str  # canonical language name ("python", "tsx", ...)
    line_comment: str  # the language's line comment ("#", "//")
    text: str  # secret values masked (same lengths and lines as the file)
    masked_lines: frozenset[int] = frozenset()  # 0-based lines where something was masked


@dataclass(slots=True)
class Corpus:
    """The files read, and one sentence per file that was not."""

    root: Path
    files: list[SourceFile] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)


def read_corpus(directory: str | os.PathLike[str], exclude: tuple[str, ...] | list[str] = (),
                *, exclude_root: str | os.PathLike[str] | None = None,
                max_bytes: int = DEFAULT_MAX_BYTES, max_files: int | None = None) -> Corpus:
    """Every readable, non-secret source file under `directory` (sorted), secrets masked.

    `exclude` globs are relative to `exclude_root` (the project's folder; default `directory`).
    Raises CorpusError when `directory` is not a directory, or when no file gives text.
    """
    root = Path(directory)
    try:
        mode = root.stat().st_mode
    except OSError as exc:
        raise CorpusError(stat_problem(str(root), root, exc)) from None
    if not stat.S_ISDIR(mode):
        raise CorpusError(f"{root}: not a directory")
    secrets = SecretFilter(exclude)
    corpus = Corpus(root)
    found_any = False
    base = Path(os.path.abspath(exclude_root if exclude_root is not None else root))
    for found in discover([root], base, exclude):
        if found.problem is not None:
            corpus.skipped.append(found.problem)
            continue
        found_any = True
        path = Path(found.path)
        rel = os.path.relpath(path, root).replace(os.sep, "/")
        # Relative to the project: folders above it (a home's .ssh, say) are not the repo's.
        if secrets.is_excluded(os.path.relpath(os.path.abspath(path), base)):
            corpus.skipped.append(f"{found.path}: skipped, secret or excluded file")
            continue
        read = read_code(path, max_bytes, shown=found.path)
        if read.data is None:
            corpus.skipped.append(read.problem or f"{found.path}: cannot read")
            continue
        text = read.data.decode("utf-8", "replace")
        if not text.strip():
            corpus.skipped.append(f"{found.path}: skipped, empty file")
            continue
        spec = spec_for(None, rel)
        assert spec is not None  # the walker yields only files of known languages
        masked = redact(text, rel).text
        corpus.files.append(SourceFile(rel, spec.name, spec.line_comment, masked,
                                       _changed_lines(text, masked)))
        if max_files is not None and len(corpus.files) >= max_files:
            break
    if not corpus.files:
        raise CorpusError(_why_empty(root, corpus, found_any))
    return corpus


def _changed_lines(original: str, masked: str) -> frozenset[int]:
    if original == masked:
        return frozenset()
    return frozenset(i for i, (a, b) in enumerate(zip(original.split("\n"), masked.split("\n"),
                                                      strict=True)) if a != b)


def _why_empty(root: Path, corpus: Corpus, found_any: bool) -> str:
    if not found_any and not corpus.skipped:
        exts = ", ".join(sorted(supported_extensions())[:8])
        return f"{root}: no source files found (looked for {exts}, ...)"
    first = corpus.skipped[0] if corpus.skipped else ""
    more = f" and {len(corpus.skipped) - 1} more" if len(corpus.skipped) > 1 else ""
    return f"{root}: no readable source files ({first}{more})"
