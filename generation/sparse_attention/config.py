"""Read the sparse attention settings from the environment into one typed, defaulted dataclass.

The variable `STAGECODER_SPARSE_ATTENTION` holds the camelCase JSON encoding of
`analysis.settings.SparseSettings` (this module must not import it: it runs inside vLLM).
Missing keys take their defaults. A key with a wrong type or an out-of-range value is reported by
name and its default stays in force. JSON that does not parse, or is not an object, leaves vLLM
stock: the caller logs the reasons and registers nothing.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from typing import Any

ENV_VAR = "STAGECODER_SPARSE_ATTENTION"
STATS_ENV_VAR = "STAGECODER_SPARSE_STATS"  # a directory: per-process call counters land there


@dataclass(frozen=True)
class SparseConfig:
    """Sparse attention parameters; defaults equal `analysis.settings.SparseSettings`."""

    enabled: bool = False
    block_size: int = 64  # tokens per KV block (selection granularity and kernel page size)
    sink_tokens: int = 64  # leading tokens always attended (rounded up to whole blocks)
    local_window: int = 512  # trailing tokens always attended, plus the current partial block
    top_k: int = 32  # dynamically selected blocks per KV head, besides sink and window
    keep_ratio: float = 1.0  # cap: at most this share of the candidate blocks is selected
    dense_threshold: int = 4096  # contexts shorter than this many tokens stay dense
    dense_layers: int = 2  # the first this-many layers stay dense

    @property
    def sink_blocks(self) -> int:
        """Blocks covered by the sink."""
        return -(-self.sink_tokens // self.block_size)

    @property
    def window_blocks(self) -> int:
        """Whole blocks before the current one covered by the local window."""
        return -(-self.local_window // self.block_size)


_CAMEL = {
    "enabled": "enabled",
    "blockSize": "block_size",
    "sinkTokens": "sink_tokens",
    "localWindow": "local_window",
    "topK": "top_k",
    "keepRatio": "keep_ratio",
    "denseThreshold": "dense_threshold",
    "denseLayers": "dense_layers",
}
_TYPES = {f.name: f.type for f in fields(SparseConfig)}


def _range_problem(name: str, value: Any) -> str | None:
    """Why a well-typed value is still unusable, or None."""
    if name == "block_size" and not (16 <= value <= 256 and value & (value - 1) == 0):
        return "must be a power of two from 16 to 256"
    if name == "keep_ratio" and not 0.0 < value <= 1.0:
        return "must be in (0, 1]"
    if name not in {"enabled", "block_size", "keep_ratio"} and value < 0:
        return "must be >= 0"
    return None


def _type_problem(name: str, value: Any) -> str | None:
    kind = _TYPES[name]
    if kind == "bool":
        return None if isinstance(value, bool) else f"expected bool, got {type(value).__name__}"
    if isinstance(value, bool):
        return f"expected {kind}, got bool"
    if kind == "int":
        return None if isinstance(value, int) else f"expected int, got {type(value).__name__}"
    if isinstance(value, int | float):
        return None
    return f"expected float, got {type(value).__name__}"


def config_from_mapping(raw: Mapping[str, Any]) -> tuple[SparseConfig, list[str]]:
    """Overlay a camelCase mapping on the defaults; return the config and one reason per bad key."""
    changes: dict[str, Any] = {}
    problems: list[str] = []
    for key, value in raw.items():
        name = _CAMEL.get(key)
        if name is None:
            continue  # unknown keys are tolerated, as in the settings model
        reason = _type_problem(name, value) or _range_problem(name, value)
        if reason:
            problems.append(f"{key}: {reason}; using the default")
            continue
        changes[name] = float(value) if name == "keep_ratio" else value
    return replace(SparseConfig(), **changes), problems


def parse_config(text: str | None) -> tuple[SparseConfig | None, list[str]]:
    """Parse the environment JSON; None (stay stock) when absent, unreadable or not an object."""
    if text is None or not text.strip():
        return None, []
    try:
        raw = json.loads(text)
    except ValueError as exc:
        return None, [f"{ENV_VAR} is not valid JSON ({exc}); sparse attention stays off"]
    if not isinstance(raw, dict):
        kind = type(raw).__name__
        return None, [f"{ENV_VAR} must hold a JSON object, got {kind}; sparse attention stays off"]
    config, problems = config_from_mapping(raw)
    return config, problems


def config_from_env(
    environ: Mapping[str, str] | None = None,
) -> tuple[SparseConfig | None, list[str]]:
    """The enabled config from the environment, or None with the reasons it stays stock."""
    env = os.environ if environ is None else environ
    config, problems = parse_config(env.get(ENV_VAR))
    if config is None or not config.enabled:
        return None, problems
    return config, problems


def active_config() -> SparseConfig:
    """The config the backend runs with: the environment's when enabled, else the defaults."""
    config, _ = config_from_env()
    return config or SparseConfig()
