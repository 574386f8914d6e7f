"""Helpers shared by CLI subcommands: loading a file as a Document, 1-based positions, settings.

Settings are the project's (analysis.project: the nearest pyproject.toml with [tool.stagecoder]
at or above FILE), warnings told once; FILE is read with that project's `maxFileBytes`.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import msgspec

from analysis.documents.document import Document
from analysis.documents.store import read_source
from analysis.project import Project, load_project
from analysis.settings import Settings


def add_position_args(parser: argparse.ArgumentParser) -> None:
    """FILE, --line and --col (1-based, the column in characters), shared by several commands."""
    parser.add_argument("file", help="the source file")
    parser.add_argument("--line", type=int, required=True, help="1-based line of the cursor")
    parser.add_argument("--col", type=int, required=True,
                        help="1-based column of the cursor (in characters)")


class CliError(Exception):
    """A user-facing error: printed as one line, exit code 2."""


def load_document(path: str) -> Document:
    """Read a file into a Document (the project's `maxFileBytes`) or raise CliError."""
    loaded = read_source(Path(path), max_bytes=project_settings(path).max_file_bytes)
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
    """Settings for a FILE (or folder): analysis.project's, problems told once on stderr."""
    return project_for(start).settings


def project_for(start: str | Path) -> Project:
    """The project of FILE (the nearest pyproject.toml with [tool.stagecoder] above it)."""
    here = Path(os.path.abspath(start))
    project = load_project(here if here.is_dir() else here.parent)
    if project.failed:
        raise CliError(project.problems[0])
    for problem in project.problems:
        if problem not in _TOLD:  # a command asks for the limit, then the settings: tell once
            _TOLD.add(problem)
            print(f"stagecoder: warning: {problem}; using the default", file=sys.stderr)
    return project


_TOLD: set[str] = set()  # settings warnings this process has printed


def with_model_overrides(settings: Settings, args: argparse.Namespace) -> Settings:
    """`settings` with the command line's `--url`, `--model` and `--candidates` applied."""
    endpoint = settings.completion
    if args.url:
        endpoint = msgspec.structs.replace(endpoint, url=args.url)
    if args.model:
        endpoint = msgspec.structs.replace(endpoint, model=args.model)
    stages = settings.stages
    if args.candidates:
        stages = msgspec.structs.replace(stages, candidates=args.candidates)
    return msgspec.structs.replace(settings, completion=endpoint, stages=stages)
