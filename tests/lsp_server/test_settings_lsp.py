"""Settings from initializationOptions and workspace/configuration; invalid keys are named once."""

from __future__ import annotations

import asyncio

import pytest
import pytest_lsp
from lsprotocol import types
from pytest_lsp import ClientServerConfig, LanguageClient

from tests.lsp_server.conftest import (
    PROFILES,
    SERVER_COMMAND,
    accept_registrations,
    initialize_params,
)


@pytest_lsp.fixture(config=ClientServerConfig(server_command=SERVER_COMMAND))
async def bare(lsp_client: LanguageClient):
    """A started server that the test initialises itself."""
    accept_registrations(lsp_client)
    yield
    await lsp_client.shutdown_session()


async def effective(client: LanguageClient) -> dict:
    return await client.workspace_execute_command_async(
        types.ExecuteCommandParams(command="stagecoder.showSettings"))


async def settled(client: LanguageClient, predicate, timeout: float = 5.0) -> dict:
    """Poll the effective settings until `predicate` holds (configuration is pulled async)."""
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while True:
        got = await effective(client)
        if predicate(got) or loop.time() > end:
            return got
        await asyncio.sleep(0.05)


@pytest.mark.parametrize("profile", PROFILES)
async def test_initialization_options(bare: LanguageClient, profile: str):
    options = {"completion": {"url": "http://127.0.0.1:9999", "maxTokens": 77},
               "stages": {"boundaryChecks": False}}
    await bare.initialize_session(initialize_params(profile, options))
    got = await effective(bare)
    assert got["completion"]["url"] == "http://127.0.0.1:9999"
    assert got["completion"]["maxTokens"] == 77
    assert got["stages"]["boundaryChecks"] is False
    assert got["chat"]["maxTokens"] == 512  # untouched keys keep their defaults
    assert bare.messages == []


@pytest.mark.parametrize("profile", PROFILES)
async def test_workspace_configuration_wins(bare: LanguageClient, profile: str):
    bare.set_configuration({"completion": {"maxTokens": 33}, "context": {"budgetTokens": 999}},
                           section="stagecoder")
    await bare.initialize_session(initialize_params(profile, {"completion": {"maxTokens": 77}}))
    got = await settled(bare, lambda s: s["context"]["budgetTokens"] == 999)
    assert got["completion"]["maxTokens"] == 33
    assert got["context"]["budgetTokens"] == 999
    # A later change is pulled again on didChangeConfiguration.
    bare.set_configuration({"completion": {"maxTokens": 44}}, section="stagecoder")
    bare.workspace_did_change_configuration(types.DidChangeConfigurationParams(settings=None))
    got = await settled(bare, lambda s: s["completion"]["maxTokens"] == 44)
    assert got["completion"]["maxTokens"] == 44
    assert got["context"]["budgetTokens"] == 2048  # the new configuration no longer sets it


@pytest.mark.parametrize("profile", PROFILES)
async def test_invalid_setting_named_once(bare: LanguageClient, profile: str):
    options = {"completion": {"maxTokens": "lots", "url": "http://127.0.0.1:7777"},
               "stages": 5}
    await bare.initialize_session(initialize_params(profile, options))
    got = await effective(bare)
    assert got["completion"]["maxTokens"] == 128  # the default stays in force
    assert got["completion"]["url"] == "http://127.0.0.1:7777"  # valid keys still apply
    assert got["stages"]["candidates"] == 2
    shown = [m for m in bare.messages if "invalid" in m.message]
    assert len(shown) == 1, [m.message for m in bare.messages]
    assert "`completion.maxTokens`" in shown[0].message and "`stages`" in shown[0].message
    assert shown[0].type == types.MessageType.Warning
    # The same bad configuration pulled again does not pop up a second message.
    bare.workspace_did_change_configuration(types.DidChangeConfigurationParams(settings=None))
    await effective(bare)
    await asyncio.sleep(0.2)
    assert len([m for m in bare.messages if "invalid" in m.message]) == 1


@pytest.mark.parametrize("profile", PROFILES)
async def test_project_settings_under_the_editor_settings(bare: LanguageClient, profile: str,
                                                          tmp_path):
    (tmp_path / "pyproject.toml").write_text(
        '[tool.stagecoder]\nselect = ["SC305"]\nmax-file-bytes = 1234\n'
        '[tool.stagecoder.context]\nbudget-tokens = 500\n')
    options = {"context": {"budgetTokens": 700}}
    await bare.initialize_session(initialize_params(profile, options,
                                                    root_uri=tmp_path.as_uri()))
    got = await effective(bare)
    assert got["review"]["select"] == ["SC305"]  # what `stagecoder review` in CI reads too
    assert got["maxFileBytes"] == 1234
    assert got["context"]["budgetTokens"] == 700  # the editor wins, key by key
    assert bare.messages == []
