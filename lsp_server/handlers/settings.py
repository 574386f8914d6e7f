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
from analysis.project import editor_settings
from analysis.settings import SettingsProblem

if TYPE_CHECKING:
    from lsp_server.server import StagecoderServer

SECTION = "stagecoder"


def _section(raw: Any) -> Any:
    if isinstance(raw, Mapping) and isinstance(raw.get(SECTION), Mapping):
        return raw[SECTION]
    return raw


def apply_settings(server: StagecoderServer, init: Any, config: Any) -> list[SettingsProblem]:
    """Rebuild settings from defaults + initializationOptions + workspace configuration."""
    try:
        root = server.workspace.root_path
    except RuntimeError:  # before initialize: no workspace yet
        root = None
    # The project's [tool.stagecoder] first (so diagnostics match `stagecoder review` in CI),
    # then the editor's settings over it, key by key.
    settings, problems = editor_settings(root, [_section(init), _section(config)])
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
    apply_settings(server, server.init_options, result[0] if result else None)


def register(server: StagecoderServer) -> None:
    """Register the lifecycle and configuration handlers."""

    @server.feature(types.INITIALIZE)
    def initialize(ls: StagecoderServer, params: types.InitializeParams) -> None:
        ls.init_options = params.initialization_options
        apply_settings(ls, params.initialization_options, None)

    @server.feature(types.INITIALIZED)
    async def initialized(ls: StagecoderServer, params: types.InitializedParams) -> None:
        await pull_configuration(ls)
        # The index starts once the settings (its excludes among them) are known.
        await ls.indexer.start()
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
            apply_settings(ls, ls.init_options, _section(params.settings))
