"""One settings model for initializationOptions, workspace/configuration, pyproject and CLI.

Every field has a default, so an empty mapping is a valid configuration. Unknown keys are ignored
(editors send extra keys); a key with a wrong type is reported by name, its default stays.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import msgspec

from analysis.documents.reader import DEFAULT_MAX_BYTES


class EndpointSettings(msgspec.Struct, rename="camel"):
    """One OpenAI-compatible model endpoint served by vLLM (one server, or several replicas)."""

    url: str = "http://127.0.0.1:8000"
    # Replicas of the same model: when set, requests are spread over them and `url` is unused
    # (see generation/model/replicas.py for the routing rule).
    urls: list[str] = msgspec.field(default_factory=list)
    model: str = ""  # empty: ask the server's /v1/models and take the first
    max_tokens: int = 128
    temperature: float = 0.0
    connect_timeout: float = 2.0  # seconds to open the connection
    first_token_timeout: float = 10.0  # seconds until the first streamed token
    total_timeout: float = 30.0  # seconds for the whole request
    api_key_env: str = "STAGECODER_API_KEY"  # name of the environment variable holding the key

    def replica_urls(self) -> list[str]:
        """The servers of this endpoint: `urls` when given, else `url` alone."""
        return list(self.urls) or [self.url]


def _chat_default() -> EndpointSettings:
    return EndpointSettings(max_tokens=512)


class PrioritySettings(msgspec.Struct, rename="camel"):
    """vLLM scheduling priority of each kind of request (lower is served first; vLLM's default
    is 0). It takes effect on a server started with `--scheduling-policy priority`, which
    `stagecoder model serve` passes."""

    completion: int = 0  # inline completions: someone is waiting on every keystroke
    next_edit: int = 0
    rewrite: int = 5  # refactor.rewrite: asked for, but not on every keystroke
    review: int = 10  # review explanations and other batch work


class ContextSettings(msgspec.Struct, rename="camel"):
    """How much context goes into a prompt."""

    budget_tokens: int = 2048
    related_share: float = 0.25  # share of the budget for snippets from other files
    exclude: list[str] = msgspec.field(default_factory=list)  # extra globs never sent to a model


class StageSettings(msgspec.Struct, rename="camel"):
    """Staged generation switches."""

    candidates: int = 2
    naming: bool = True
    boundary_checks: bool = True


class ReviewSettings(msgspec.Struct, rename="camel"):
    """Rule selection for diagnostics and `stagecoder review`."""

    select: list[str] = msgspec.field(default_factory=list)  # empty: all rules
    ignore: list[str] = msgspec.field(default_factory=list)
    exclude: list[str] = msgspec.field(default_factory=list)
    per_path_ignores: dict[str, list[str]] = msgspec.field(default_factory=dict)
    preview: bool = False  # also run the preview rules (off by default; see README "Rules")
    time_budget: float = 2.0  # seconds of rules per file; then they stop with what they found


class NextEditSettings(msgspec.Struct, rename="camel"):
    """Next-edit suggestions (`textDocument/copilotInlineEdit`, generation/next_edit/)."""

    enabled: bool = True
    # The model name sent with next-edit requests; empty: the endpoint's own model. The endpoint
    # is `chat` for the deepseek-instruct format and `completion` for zeta.
    model: str = ""
    format: str = "deepseek-instruct"  # or "zeta" (Zed's open Zeta model's prompt)
    debounce_ms: int = 100  # the server waits this long before asking the model; editors too
    max_history_tokens: int = 1000  # edit-history hunks in a prompt (newest first)
    max_tokens: int = 512  # the rewritten region's budget


class SparseSettings(msgspec.Struct, rename="camel"):
    """Sparse attention backend parameters (read inside vLLM through the environment)."""

    enabled: bool = False
    block_size: int = 64
    sink_tokens: int = 64
    local_window: int = 512
    top_k: int = 32
    keep_ratio: float = 1.0
    dense_threshold: int = 4096
    dense_layers: int = 2


class Settings(msgspec.Struct, rename="camel"):
    """All of stagecoder's settings, section `stagecoder`."""

    completion: EndpointSettings = msgspec.field(default_factory=EndpointSettings)
    chat: EndpointSettings = msgspec.field(default_factory=_chat_default)
    priority: PrioritySettings = msgspec.field(default_factory=PrioritySettings)
    context: ContextSettings = msgspec.field(default_factory=ContextSettings)
    stages: StageSettings = msgspec.field(default_factory=StageSettings)
    review: ReviewSettings = msgspec.field(default_factory=ReviewSettings)
    sparse: SparseSettings = msgspec.field(default_factory=SparseSettings)
    next_edit: NextEditSettings = msgspec.field(default_factory=NextEditSettings)
    enable: bool = True
    disabled_languages: list[str] = msgspec.field(default_factory=list)
    # The one size limit: files on disk above it are skipped (review, the workspace index,
    # diagnostics of unopened files); editor documents above it are plain text, never parsed.
    max_file_bytes: int = DEFAULT_MAX_BYTES
    log_level: str = "info"


class SettingsProblem(msgspec.Struct, frozen=True):
    """One invalid key: dotted camelCase path and what was wrong with it."""

    key: str
    message: str


def _struct_fields(cls: type[msgspec.Struct]) -> dict[str, tuple[str, Any]]:
    """Map encoded (camelCase) names to (attribute name, type) for a Struct class."""
    info = msgspec.inspect.type_info(cls)
    assert isinstance(info, msgspec.inspect.StructType)
    return {f.encode_name: (f.name, f) for f in info.fields}


def merge_settings(
    base: Settings, raw: Mapping[str, Any] | None
) -> tuple[Settings, list[SettingsProblem]]:
    """Overlay a camelCase mapping onto `base`, key by key; bad keys are reported and skipped."""
    problems: list[SettingsProblem] = []
    if raw is None:
        return base, problems
    if not isinstance(raw, Mapping):
        got = type(raw).__name__
        return base, [SettingsProblem("stagecoder", f"expected an object, got {got}")]
    return _merge(base, raw, "", problems), problems


def _merge(
    obj: msgspec.Struct, raw: Mapping[str, Any], path: str, out: list[SettingsProblem]
) -> Any:
    fields = _struct_fields(type(obj))
    changes: dict[str, Any] = {}
    for key, value in raw.items():
        dotted = f"{path}{key}"
        if key not in fields:
            continue  # unknown keys are tolerated: clients send their own
        attr, _ = fields[key]
        current = getattr(obj, attr)
        if isinstance(current, msgspec.Struct):
            if not isinstance(value, Mapping):
                out.append(SettingsProblem(dotted, f"expected an object, got {_kind(value)}"))
                continue
            changes[attr] = _merge(current, value, dotted + ".", out)
            continue
        try:
            probe = msgspec.convert({key: value}, type(obj), from_attributes=False)
        except msgspec.ValidationError as exc:
            out.append(SettingsProblem(dotted, _clean(str(exc), key)))
            continue
        changes[attr] = getattr(probe, attr)
    return msgspec.structs.replace(obj, **changes) if changes else obj


def _kind(value: Any) -> str:
    return "null" if value is None else type(value).__name__


def _clean(message: str, key: str) -> str:
    # msgspec says "Expected `int`, got `str` - at `$.maxTokens`": keep the first part.
    return message.split(" - at ")[0]


def settings_from(raw: Mapping[str, Any] | None) -> tuple[Settings, list[SettingsProblem]]:
    """Settings from a raw mapping over the defaults."""
    return merge_settings(Settings(), raw)


def pyproject_settings(raw_tool_section: Mapping[str, Any]) -> Mapping[str, Any]:
    """Translate `[tool.stagecoder]` (kebab-case or snake_case keys) into the camelCase mapping."""

    def camel(key: str) -> str:
        parts = key.replace("-", "_").split("_")
        return parts[0] + "".join(p[:1].upper() + p[1:] for p in parts[1:])

    def walk(value: Any, keep_keys: bool = False) -> Any:
        if isinstance(value, Mapping):
            return {
                (k if keep_keys else camel(k)): walk(v, keep_keys=(k in _PATH_KEYED))
                for k, v in value.items()
            }
        return value

    return walk(raw_tool_section)


# Tables whose keys are paths or globs, not setting names: never camelCase them.
_PATH_KEYED = {"per-path-ignores", "per_path_ignores", "perPathIgnores"}
