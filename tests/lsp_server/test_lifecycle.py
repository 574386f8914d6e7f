"""initialize: capabilities and position encoding for both client profiles; version flags."""

from __future__ import annotations

import subprocess
import sys

from lsprotocol import types
from pytest_lsp import LanguageClient, client_capabilities

from lsp_server import __version__


async def test_server_advertises_features(client: LanguageClient):
    result: types.InitializeResult = client.init_result
    assert result.server_info is not None and result.server_info.name == "stagecoder"
    caps = result.capabilities
    sync = caps.text_document_sync
    assert isinstance(sync, types.TextDocumentSyncOptions)
    assert sync.change == types.TextDocumentSyncKind.Incremental
    assert sync.open_close is True
    assert caps.inline_completion_provider is not None
    assert isinstance(caps.code_action_provider, types.CodeActionOptions)
    kinds = set(caps.code_action_provider.code_action_kinds or ())
    assert {"quickfix", "refactor.extract", "refactor.rewrite"} <= kinds
    assert caps.code_action_provider.resolve_provider is True
    assert isinstance(caps.diagnostic_provider, types.DiagnosticOptions)
    assert caps.diagnostic_provider.identifier == "stagecoder"


async def test_position_encoding_follows_the_client(client: LanguageClient):
    caps = client.init_result.capabilities
    general = client_capabilities(client.profile).general
    offered = (general.position_encodings if general else None) or []
    expected = next((e for e in offered if e in ("utf-8", "utf-16", "utf-32")), "utf-16")
    assert caps.position_encoding == expected
    if client.profile == "neovim":
        assert expected == "utf-8"  # Neovim offers utf-8 first: the byte path is exercised
    else:
        assert expected == "utf-16"


def test_version_and_help():
    version = subprocess.run([sys.executable, "-m", "lsp_server", "--version"],
                             capture_output=True, text=True, check=True)
    assert version.stdout.strip() == f"stagecoder {__version__}"
    helptext = subprocess.run([sys.executable, "-m", "lsp_server", "serve", "--help"],
                              capture_output=True, text=True, check=True)
    assert "--tcp HOST:PORT" in helptext.stdout and "stdio" in helptext.stdout
    bad = subprocess.run([sys.executable, "-m", "lsp_server", "serve", "--tcp", "nope"],
                         capture_output=True, text=True)
    assert bad.returncode == 2 and "expected HOST:PORT" in bad.stderr
