"""Shared pieces for tests that drive `stagecoder serve` through pytest-lsp."""

from __future__ import annotations

import asyncio
import sys
import warnings

import pytest_lsp
from lsprotocol import types
from pytest_lsp import ClientServerConfig, LanguageClient, client_capabilities

SERVER_COMMAND = [sys.executable, "-m", "lsp_server", "serve"]
PROFILES = ["visual-studio-code", "neovim"]


async def shutdown_within(client: LanguageClient, seconds: float = 30) -> None:
    """`shutdown_session`, bounded: a server that has not exited after `seconds` is killed and
    a warning names it, so one stuck teardown cannot hang the whole run (pytest-timeout does
    not cover a test's rerun). Seen once in CI after a rerun of a vLLM test; not reproduced."""
    try:
        await asyncio.wait_for(client.shutdown_session(), seconds)
    except TimeoutError:
        server = getattr(client, "_server", None)
        if server is not None and server.returncode is None:
            server.kill()
        warnings.warn(f"the language server did not exit within {seconds} s of shutdown; "
                      "killed", RuntimeWarning, stacklevel=2)


def initialize_params(profile: str, options: dict | None = None,
                      root_uri: str | None = None) -> types.InitializeParams:
    """InitializeParams with a real client's capabilities and optional initializationOptions."""
    return types.InitializeParams(
        capabilities=client_capabilities(profile),
        initialization_options=options,
        root_uri=root_uri,
    )


def accept_registrations(client: LanguageClient) -> list[types.RegistrationParams]:
    """Answer client/registerCapability like an editor does; returns what was registered."""
    seen: list[types.RegistrationParams] = []
    if getattr(client, "_accepts_registrations", None) is not None:
        return client._accepts_registrations

    @client.feature(types.CLIENT_REGISTER_CAPABILITY)
    def register_capability(params: types.RegistrationParams) -> None:
        seen.append(params)

    client._accepts_registrations = seen
    return seen


@pytest_lsp.fixture(params=PROFILES, config=ClientServerConfig(server_command=SERVER_COMMAND))
async def client(request, lsp_client: LanguageClient):
    """A client for each profile, initialised with no options (defaults)."""
    lsp_client.profile = request.param
    accept_registrations(lsp_client)
    lsp_client.init_result = await lsp_client.initialize_session(initialize_params(request.param))
    yield
    await lsp_client.shutdown_session()
