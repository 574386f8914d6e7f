"""Report formats for `stagecoder review`: one renderer per format, picked by `Format`.

Each renderer is `render(results, explanations) -> str`. `explanations` maps (path, index of the
finding in that file's result) to the model's explanation and suggested rewrite (`--model`).
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping, Sequence
from enum import StrEnum

import msgspec

from analysis.review.run import FileResult


class Format(StrEnum):
    """Output formats of `stagecoder review`."""

    TEXT = "text"
    JSON = "json"
    SARIF = "sarif"
    GITHUB = "github"


class Explanation(msgspec.Struct, rename="camel", omit_defaults=True, frozen=True):
    """What the chat model said about one finding."""

    explanation: str = ""
    suggestion: str = ""  # a suggested rewrite of the flagged code


Explanations = Mapping[tuple[str, int], Explanation]


class ShardInfo(msgspec.Struct, rename="camel", frozen=True):
    """Which shard a report covers, and each reported file's place in the whole (unsharded)
    walk, so that `stagecoder review --merge` can restore the unsharded order (JSON and SARIF
    reports carry it; the merged report does not)."""

    index: int
    count: int
    order: dict[str, int]  # JSON: filename -> place; SARIF: artifact URI -> place


def render(fmt: Format, results: Sequence[FileResult], explanations: Explanations | None = None,
           **options: object) -> str:
    """The report for `results` in format `fmt`."""
    module = importlib.import_module(f"lsp_server.report.{fmt.value}")
    return module.render(results, explanations or {}, **options)
