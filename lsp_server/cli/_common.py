"""Helpers shared by CLI subcommands: loading a file as a Document, 1-based positions, settings."""

from __future__ import annotations

import argparse
import sys
import tomllib
from pathlib import Path
from typing import Any

from analysis.documents.document import Document
from analysis.documents.reader import CONFIG_MAX_BYTES, read_bounded
from analysis.documents.store import read_source
from analysis.settings import Settings, merge_settings, pyproject_settings


def add_position_args(parser: argparse.ArgumentParser) -> None:
    """FILE, --line and --col (1-based, the column in characters), shared by several commands."""
    parser.add_argument("file", help="the source file")
    parser.add_argument("--line", type=int, required=True, help="1-based line of the cursor")
    parser.add_argument("--col", type=int, required=True,
                        help="1-based column of the cursor (in characters)")


class CliError(Exception):
    """A user-facing error: printed as one line, exit code 2."""


def load_document(path: str) -> Document:
    """Read a file into a Document or raise CliError with the reason."""
    loaded = read_source(Path(path))
    if loaded.document is None:
        raise CliError(loaded.problem or f"{path}: cannot read")
    if loaded.problem:
        print(f"stagecoder: warning: {loaded.problem}", file=sys.stderr)
    return loaded.document


def offset_of(doc: Document, line: int, col: int) -> int:
    """Byte offset of a 1-based line and column (column counted in characters)."""
    if line < 1 or col < 1:
        raise CliError(f"--line and --col are 1-based; got {line}:{col}")
    if line > doc.line_count:
        raise CliError(f"line {line} is past the end of the file ({doc.line_count} lines)")
    offset, clamped = doc.offset_at(line - 1, col - 1, "utf-32")
    if clamped:
        length = len(doc.line_text(line - 1))
        raise CliError(f"column {col} is past the end of line {line} ({length} characters)")
    return offset


def project_settings(start: str | Path) -> Settings:
    """Settings from the nearest pyproject.toml's [tool.stagecoder] (defaults when none)."""
    here = Path(start).resolve()
    for folder in [here, *here.parents] if here.is_dir() else here.parents:
        candidate = folder / "pyproject.toml"
        if candidate.is_file():
            read = read_bounded(candidate, CONFIG_MAX_BYTES)
            if read.data is None:
                raise CliError(f"cannot read settings: {read.problem}")
            try:
                data: dict[str, Any] = tomllib.loads(read.data.decode("utf-8"))
            except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
                raise CliError(f"{candidate}: cannot read settings: {exc}") from exc
            section = data.get("tool", {}).get("stagecoder")
            if section is None:
                return Settings()
            settings, problems = merge_settings(Settings(), pyproject_settings(section))
            for p in problems:
                print(f"stagecoder: warning: {candidate}: [tool.stagecoder] `{p.key}`: "
                      f"{p.message}; using the default", file=sys.stderr)
            return settings
    return Settings()
