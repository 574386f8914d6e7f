"""No planted secret reaches a model through the real server, nor its context command, nor the CLI.

`stagecoder serve` runs on a copy of tests/fixtures/secrets_workspace with a model factory that
writes down every prompt it is sent (tests/fakes/models.py:recording). The YAML config exists
only as an editor buffer (didOpen, then typed into); the Python file is edited so that recent
edits near the secrets join the prompts. Completions are requested at the start, middle and end of
every line of every open document; `stagecoder.completionContext` is asked at the same places and
`stagecoder context` is run on the files on disk. None of it may hold any planted secret.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import attrs
import pytest
import pytest_lsp
from lsprotocol import types
from pytest_lsp import ClientServerConfig, LanguageClient, client_capabilities

from analysis.documents.store import path_to_uri
from lsp_server.cli import main
from tests.analysis.test_secrets import PLANTED, WORKSPACE, leaks
from tests.lsp_server.conftest import SERVER_COMMAND, accept_registrations

ROOT = Path(__file__).resolve().parents[2]
RUN_DIR = Path(os.environ.get("TMPDIR", "/tmp")) / f"stagecoder-secrets-{os.getpid()}"
RUN_DIR.mkdir(parents=True, exist_ok=True)
PROMPTS = RUN_DIR / "prompts.jsonl"
OPEN = {"app/settings.py": "python", "app/client.py": "python", "web/api.js": "javascript",
        "config/service.ini": "ini", "config/app.yaml": "yaml"}
BUFFER_ONLY = "config/app.yaml"
TYPED = "  replica_password: FakeTypedReplicaPassw0rd77\n"  # typed into the unsaved buffer


def leaked(text: str) -> list[str]:
    """Planted secrets (whole or any 12 characters of one) in `text`, plus the typed one."""
    found = leaks(text)
    if "FakeTypedReplica" in text or "Passw0rd77" in text:
        found.append("password typed into the YAML buffer")
    return found


@pytest_lsp.fixture(config=ClientServerConfig(
    server_command=SERVER_COMMAND,
    server_env={**os.environ, "PYTHONPATH": str(ROOT),
                "STAGECODER_MODEL_FACTORY": "tests.fakes.models:recording",
                "STAGECODER_RECORD_PROMPTS": str(PROMPTS),
                "STAGECODER_FAKE_TEXT": "value\n"}))
async def client(lsp_client: LanguageClient, tmp_path_factory):
    project = tmp_path_factory.mktemp("secrets") / "workspace"
    shutil.copytree(WORKSPACE, project)
    (project / BUFFER_ONLY).unlink()  # the editor has it; the disk does not
    PROMPTS.unlink(missing_ok=True)
    lsp_client.project = project
    caps = client_capabilities("visual-studio-code")
    caps = attrs.evolve(caps, text_document=attrs.evolve(
        caps.text_document, inline_completion=types.InlineCompletionClientCapabilities()))
    accept_registrations(lsp_client)
    await lsp_client.initialize_session(types.InitializeParams(
        capabilities=caps, root_uri=path_to_uri(project),
        initialization_options={"stages": {"candidates": 1}}))
    yield
    await lsp_client.shutdown_session()
    PROMPTS.unlink(missing_ok=True)


async def command(client: LanguageClient, name: str, *args):
    return await client.workspace_execute_command_async(
        types.ExecuteCommandParams(command=name, arguments=list(args)))


async def index_ready(client: LanguageClient, timeout: float = 30.0) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        state = await command(client, "stagecoder.indexState")
        if state["ready"] or time.monotonic() > deadline:
            return state
        await asyncio.sleep(0.1)


def positions(text: str) -> list[types.Position]:
    """Start, middle and end of every line (the files are ASCII: characters are UTF-16 units)."""
    out = []
    for number, line in enumerate(text.split("\n")):
        out += [types.Position(line=number, character=c)
                for c in sorted({0, len(line) // 2, len(line)})]
    return out


@pytest.mark.timeout(240)
async def test_no_planted_secret_in_any_prompt_or_context(client: LanguageClient, capsys):
    state = await index_ready(client)
    assert state["ready"] and state["files"] == 3  # settings.py, client.py, api.js; not .env

    texts: dict[str, str] = {}
    for name, language in OPEN.items():
        texts[name] = (WORKSPACE / name).read_text(encoding="utf-8")
        client.text_document_did_open(types.DidOpenTextDocumentParams(
            text_document=types.TextDocumentItem(uri=path_to_uri(client.project / name),
                                                 language_id=language, version=1,
                                                 text=texts[name])))
    # Type into the unsaved YAML buffer and next to the key and the headers in settings.py.
    yaml_uri = path_to_uri(client.project / BUFFER_ONLY)
    at = texts[BUFFER_ONLY].split("\n").index("  pool: 10")
    client.text_document_did_change(types.DidChangeTextDocumentParams(
        text_document=types.VersionedTextDocumentIdentifier(uri=yaml_uri, version=2),
        content_changes=[types.TextDocumentContentChangePartial(
            range=types.Range(start=types.Position(line=at, character=0),
                              end=types.Position(line=at, character=0)), text=TYPED)]))
    lines = texts[BUFFER_ONLY].split("\n")
    texts[BUFFER_ONLY] = "\n".join([*lines[:at], TYPED.rstrip("\n"), *lines[at:]])
    settings_uri = path_to_uri(client.project / "app" / "settings.py")
    settings_lines = texts["app/settings.py"].split("\n")
    for version, anchor in enumerate(("SIGNING_KEY", "    headers = "), start=2):
        line = next(i for i, text in enumerate(settings_lines) if text.startswith(anchor))
        client.text_document_did_change(types.DidChangeTextDocumentParams(
            text_document=types.VersionedTextDocumentIdentifier(uri=settings_uri,
                                                                version=version),
            content_changes=[types.TextDocumentContentChangePartial(
                range=types.Range(start=types.Position(line=line, character=0),
                                  end=types.Position(line=line, character=0)), text="")]))
    state = await command(client, "stagecoder.indexState")
    assert state["recentEdits"] >= 1

    contexts: list[str] = []
    requests = 0
    for name in OPEN:
        uri = path_to_uri(client.project / name)
        for position in positions(texts[name]):
            await client.text_document_inline_completion_async(types.InlineCompletionParams(
                text_document=types.TextDocumentIdentifier(uri=uri), position=position,
                context=types.InlineCompletionContext(
                    trigger_kind=types.InlineCompletionTriggerKind.Invoked)))
            requests += 1
            shown = await command(client, "stagecoder.completionContext", uri, position.line,
                                  position.character)
            assert shown is not None, (name, position)
            contexts.append(json.dumps(shown))

    prompts = [json.loads(line) for line in PROMPTS.read_text(encoding="utf-8").splitlines()]
    cli_outputs = run_cli(capsys)
    bad = [(i, leaked(text)) for i, text in enumerate(prompts + contexts + cli_outputs)
           if leaked(text)]
    print(f"\nsecrets: prompts={len(prompts)} contexts={len(contexts) + len(cli_outputs)} "
          f"leaked={len(bad)} (completion requests={requests}, planted={len(PLANTED) + 1})")
    assert bad == []
    # The prompts are real: every file was completed, with related snippets and recent edits.
    assert len(prompts) >= 100 and len(contexts) == requests
    for header in ("# app/settings.py\n", "# app/client.py\n", "// web/api.js\n",
                   "# config/app.yaml\n", "# config/service.ini\n"):
        assert any(header in p for p in prompts), header
    assert any("def fetch_report(session, report_id: int):" in p and "# app/client.py\n" in p
               for p in prompts)
    assert any("password: " + "x" * 24 in p for p in prompts if "# config/app.yaml\n" in p)
    assert "redacted:    " in cli_outputs[-1]  # the CLI says that it masked lines


def run_cli(capsys) -> list[str]:
    """`stagecoder context` (text and JSON) at a few places in every file on disk, in process,
    and once through the console entry point."""
    outputs = []
    for name in OPEN:
        text = (WORKSPACE / name).read_text(encoding="utf-8")
        count = text.count("\n")
        for line in sorted({1, count // 3 + 1, count // 2 + 1, count}):
            for extra in ([], ["--json"], ["--budget", "40"]):
                code = main(["context", str(WORKSPACE / name), "--line", str(line), "--col", "1",
                             "--workspace", str(WORKSPACE), *extra])
                out = capsys.readouterr().out
                assert code == 0 and "prompt" in out
                outputs.append(out)
    done = subprocess.run(
        [sys.executable, "-m", "lsp_server", "context", str(WORKSPACE / "app" / "settings.py"),
         "--line", "20", "--col", "1", "--workspace", str(WORKSPACE)],
        capture_output=True, text=True, check=False, timeout=60, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    outputs.append(done.stdout + done.stderr)
    return outputs
