"""The one pyproject loader: `[tool.stagecoder]` for every command and the language server.

Settings come from `--config`, else from the nearest `pyproject.toml` at or above the starting
folder that has a `[tool.stagecoder]` section; a `pyproject.toml` without the section is passed
over, as ruff passes over one without `[tool.ruff]`. Keys are kebab-case or snake_case; review
keys (`select`, `ignore`, ...) may sit directly under `[tool.stagecoder]` or under
`[tool.stagecoder.review]` (the latter wins). A bad key is a problem naming the file and the key;
its default stays. A file that cannot be read or parsed is a problem too, and none of it applies
(`Project.failed`). The language server layers editor settings over the project's
(`editor_settings`), key by key, the editor winning.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from analysis.documents.reader import CONFIG_MAX_BYTES, read_bounded
from analysis.settings import (
    Settings,
    SettingsProblem,
    merge_settings,
    pyproject_settings,
    settings_from,
)

# Review keys accepted directly under [tool.stagecoder] (as ruff takes `select` under [tool.ruff]).
_REVIEW_KEYS = ("select", "ignore", "exclude", "per-path-ignores", "per_path_ignores", "preview")


@dataclass(slots=True)
class Project:
    """Where settings came from (`config`, None for defaults), what they are, what was wrong."""

    root: Path  # the folder holding `config`; excludes and per-path ignores are relative to it
    settings: Settings = field(default_factory=Settings)
    config: Path | None = None
    problems: list[str] = field(default_factory=list)  # one sentence each, naming file and key
    bad_keys: list[SettingsProblem] = field(default_factory=list)  # the key problems, by key
    failed: bool = False  # `config` could not be read or parsed: nothing in it applies


def load_project(start: str | os.PathLike[str], config: str | os.PathLike[str] | None = None
                 ) -> Project:
    """Settings from `config`, else the nearest pyproject.toml with `[tool.stagecoder]`."""
    here = Path(os.path.abspath(start))
    if config is not None:
        return _read(Path(config), here, explicit=True) or Project(here)
    for folder in [here, *here.parents]:
        candidate = folder / "pyproject.toml"
        if candidate.is_file():  # a FIFO or folder named pyproject.toml is not one
            found = _read(candidate, here, explicit=False)
            if found is not None:
                return found
    return Project(here)


def editor_settings(root: str | os.PathLike[str] | None, layers: Iterable[Any]
                    ) -> tuple[Settings, list[SettingsProblem]]:
    """The language server's settings: defaults, the project's under `root`, then each layer.

    `layers` are camelCase mappings (initializationOptions, workspace/configuration), later ones
    winning key by key. Problems are sorted and given once per key; a pyproject problem's key
    names the file ("/w/pyproject.toml [tool.stagecoder] review.select").
    """
    by_key: dict[str, SettingsProblem] = {}
    settings = Settings()
    if root is not None:
        project = load_project(root)
        settings = project.settings
        where = f"{project.config} [tool.stagecoder]"
        if project.failed:
            by_key[where] = SettingsProblem(where, project.problems[0].removeprefix(
                f"{project.config}: "))
        for p in project.bad_keys:
            by_key[f"{where} {p.key}"] = SettingsProblem(f"{where} {p.key}", p.message)
    for raw in layers:
        if raw is None:
            continue
        settings, found = merge_settings(settings, raw)
        by_key.update((p.key, p) for p in found)  # both layers often carry the same bad key
    return settings, [by_key[k] for k in sorted(by_key)]


def _read(candidate: Path, start: Path, *, explicit: bool) -> Project | None:
    """The project `candidate` describes; None when it has no section and was not named."""
    read = read_bounded(candidate, CONFIG_MAX_BYTES)
    if read.data is None:
        return Project(start if explicit else candidate.parent, config=candidate, failed=True,
                       problems=[read.problem or f"{candidate}: cannot read"])
    try:
        data = tomllib.loads(read.data.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        return Project(candidate.parent, config=candidate, failed=True,
                       problems=[f"{candidate}: cannot read settings ({exc})"])
    tool = data.get("tool")
    section = tool.get("stagecoder") if isinstance(tool, dict) else None
    if section is None:
        if not explicit:
            return None
        section = {}
    if not isinstance(section, dict):
        return Project(candidate.parent, config=candidate, failed=True,
                       problems=[f"{candidate}: `tool.stagecoder` is not a table"])
    settings, found = settings_from(pyproject_settings(_hoist_review(section)))
    problems = [f"{candidate}: [tool.stagecoder] `{p.key}`: {p.message}" for p in found]
    return Project(candidate.parent, settings, candidate, problems, found)


def _hoist_review(section: Mapping[str, Any]) -> dict[str, Any]:
    """Move top-level review keys into the `review` table; keys in `review` itself win."""
    top = {k: v for k, v in section.items() if k in _REVIEW_KEYS}
    rest = {k: v for k, v in section.items() if k not in top}
    if not top:
        return rest
    review = rest.get("review")
    rest["review"] = {**top, **review} if isinstance(review, dict) else top
    return rest
