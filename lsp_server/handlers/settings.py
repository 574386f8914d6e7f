"""initialize / initialized / workspace/didChangeConfiguration: settings from both sources.

Settings come from initializationOptions (flat, or under a `stagecoder` key) and from
workspace/configuration section `stagecoder`, the latter winning. A bad key gets one message
naming it; its default stays in force and every other key still applies.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from lsprotocol import types

from analysis import secrets
from analysis.settings import Settings, SettingsProblem, merge_settings
from lsp_server.handlers import workspace_index

if TYPE_CHECKING:
    from lsp_server.server import StagecoderServer

SECTION = "stagecoder"


def _section(raw: Any) -> Any:
    if isinstance(raw, Mapping) and isinstance(raw.get(SECTION), Mapping):
        return raw[SECTION]
    return raw


def apply_settings(server: StagecoderServer, init: Any, config: Any) -> list[SettingsProblem]:
    """Rebuild settings from defaults + initializationOptions + workspace configuration."""
    by_key: dict[str, SettingsProblem] = {}  # both sources often carry the same bad key
    settings = Settings()
    for raw in (init, config):
        if raw is None:
            continue
        settings, found = merge_settings(settings, _section(raw))
        by_key.update((p.key, p) for p in found)
    problems = [by_key[k] for k in sorted(by_key)]
    server.settings = settings
    server.documents.max_bytes = settings.max_file_bytes
    server.engine.update_settings(settings)
    if problems:
        listing = "; ".join(f"`{p.key}`: {p.message}" for p in problems)
        noun = "setting" if len(problems) == 1 else "settings"
        server.tell_once(
            "settings:" + ",".join(p.key for p in problems),
            f"stagecoder: invalid {noun} {listing}. The default stays in force for "
            f"{'it' if len(problems) == 1 else 'them'}.",
        )
    return problems


async def pull_configuration(server: StagecoderServer) -> None:
    """Ask the client for section `stagecoder` when it supports workspace/configuration."""
    caps = server.client_capabilities.workspace
    if not (caps and caps.configuration):
        return
    try:
        result = await server.workspace_configuration_async(
            types.ConfigurationParams(items=[types.ConfigurationItem(section=SECTION)])
        )
    except Exception as exc:  # a client that fails the request keeps the current settings
        server.log(f"stagecoder: workspace/configuration failed: {exc}", types.MessageType.Warning)
        return
    config = result[0] if result else None
    server.workspace_config = config  # type: ignore[attr-defined]
    apply_settings(server, getattr(server, "init_options", None), config)


def register(server: StagecoderServer) -> None:
    """Register the lifecycle and configuration handlers."""

    @server.feature(types.INITIALIZE)
    def initialize(ls: StagecoderServer, params: types.InitializeParams) -> None:
        ls.init_options = params.initialization_options  # type: ignore[attr-defined]
        apply_settings(ls, params.initialization_options, None)

    @server.feature(types.INITIALIZED)
    async def initialized(ls: StagecoderServer, params: types.InitializedParams) -> None:
        await pull_configuration(ls)
        # The index starts once the settings (its excludes among them) are known.
        await workspace_index.on_initialized(ls, params)
        # The secret scanner's import (~0.1 s) is paid now, not on the first completion.
        await asyncio.to_thread(secrets.preload)

    @server.feature(types.WORKSPACE_DID_CHANGE_CONFIGURATION)
    async def did_change_configuration(
        ls: StagecoderServer, params: types.DidChangeConfigurationParams
    ) -> None:
        caps = ls.client_capabilities.workspace
        if caps and caps.configuration:
            await pull_configuration(ls)
        else:  # push-style clients put the settings in the notification itself
            apply_settings(ls, getattr(ls, "init_options", None), _section(params.settings))
