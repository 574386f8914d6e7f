"""Replay = editor: a position and a raw model output give the same hole kind and the same staged
text through the real language server as through `stagecoder stages` and `stagecoder context`.

The editor path is `stagecoder serve` driven by pytest-lsp, with a scripted model that streams
exactly the case's raw output (tests/fakes/models.py:scripted, STAGECODER_FAKE_TEXT): the inline
completion's text is what an editor would show, and `stagecoder.completionContext` names the hole
kind. The replay path is the two CLI commands as subprocesses. Every case also pins the kind and
the text the user gets, so a change in either path shows up here as a difference, not as two
paths that drift apart together. `max(a,` is the case the two paths used to disagree on (the
editor dropped the completion, `stagecoder stages` kept it): both keep it now.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import attrs
import pytest
from lsprotocol import types
from pytest_lsp import ClientServerConfig, LanguageClient, client_capabilities

from analysis.documents.store import path_to_uri
from tests.lsp_server.conftest import SERVER_COMMAND, accept_registrations

ROOT = Path(__file__).resolve().parents[2]
CURSOR = "█"
EXTENSIONS = {"python": "py", "javascript": "js", "typescript": "ts", "go": "go", "rust": "rs"}
GUARDED_FIRST = ('  if (items == null || items.length === 0) {\n'
                 '    throw new RangeError("items must not be empty");\n  }\n  return items[0];\n')


@dataclass(frozen=True)
class Case:
    """A cursor in a file, the model's raw output there, and what the user gets."""

    name: str
    language: str
    source: str  # with CURSOR where the cursor is
    raw: str
    kind: str  # the hole kind both paths name
    text: str | None  # the staged text both paths give (None: nothing shown)


CASES = [
    # The call is left open at the end of the line: the completion may close it on a later
    # line. Kept, and the file parses (the editor used to drop it: it cut at the line's end).
    Case("py-open-call", "python", "def f(a, b):\n    return max(a,█", " b,\n               0)\n",
         "arguments", " b,\n               0)"),
    Case("py-body-at-column-0", "python", "import math\n\n\ndef area(radius):\n█\n",
         "    return math.pi * radius ** 2\n\n\ndef other():\n    pass\n",
         "body", "    return math.pi * radius ** 2"),
    Case("py-closed-call", "python", "def total(items):\n    return sum(█)\n", "items)\n",
         "arguments", "items"),
    Case("py-comment", "python", "# compute the█\nx = 1\n", " total\nx = 1\n",
         "comment", " total"),
    Case("py-typo-repaired", "python",
         'def main(base_dir):\n    full_path = base_dir + "/x"\n    █\n', "return ful_path\n",
         "statement", "return full_path"),
    Case("js-body-guarded", "javascript", "function first(items) {\n█}\n",
         "  return items[0];\n}\n", "body", GUARDED_FIRST),
    Case("js-expression", "javascript", "function half(n) {\n  const h = █\n  return h;\n}\n",
         "n / 2; // halve\n  return h;\n}\n", "expression", "n / 2; // halve"),
    Case("js-string", "javascript", 'const greeting = "hel█";\n', 'lo world";\n',
         "string", "lo world"),
    Case("js-open-call", "javascript", "function f(a, b) {\n  return Math.max(a,█\n}\n",
         " b);\n}\n", "arguments", " b);"),
    Case("ts-closed-call", "typescript",
         "function add(a: number, b: number): number {\n  return Math.max(█);\n}\n",
         "a, b);\n}\n", "arguments", "a, b"),
    Case("ts-method-body", "typescript",
         "class Route {\n  stops: number[] = [];\n  clear(): void {\n    █\n  }\n}\n",
         "this.stops = [];\n  }\n}\n", "body", "this.stops = [];"),
    Case("ts-comment", "typescript", "// sum of█\nexport const total = 1;\n",
         " values\nexport const total = 1;\n", "comment", " values"),
    Case("go-if-block", "go",
         "package m\n\nfunc f(a int) int {\n\tif a > 0 {\n█\t}\n\treturn 0\n}\n",
         "\t\treturn a / 2\n\t}\n\treturn 0\n}\n", "block", "\t\treturn a / 2\n"),
    Case("go-expression", "go", "package m\n\nfunc double(x int) int {\n\ty := █\n\treturn y\n}\n",
         "x * 2\n\treturn y\n}\n", "expression", "x * 2"),
    Case("go-string", "go",
         'package m\n\nimport "fmt"\n\nfunc main() {\n\tfmt.Println("hel█")\n}\n', 'lo")\n}\n',
         "string", "lo"),
    Case("rust-let-value", "rust", "fn f(a: i32) -> i32 {\n    let y = █;\n    y\n}\n",
         "a * 2;\n    y\n}\n", "expression", "a * 2"),
    Case("rust-body", "rust", "fn is_empty(v: &[i32]) -> bool {\n    █\n}\n", "v.is_empty()\n}\n",
         "body", "v.is_empty()"),
    Case("rust-typo-repaired", "rust", "fn main() {\n    let numbers = vec![1, 2, 3];\n    █\n}\n",
         "let count = numbrs.len();\n}\n", "statement", "let count = numbers.len();"),
]


def cursor_of(source: str) -> tuple[int, int]:
    """Zero-based (line, column) of the cursor (ASCII sources: columns are UTF-16 units)."""
    before = source[: source.index(CURSOR)]
    return before.count("\n"), len(before) - (before.rfind("\n") + 1)


def inline_capabilities() -> types.ClientCapabilities:
    caps = client_capabilities("visual-studio-code")
    text = attrs.evolve(caps.text_document,
                        inline_completion=types.InlineCompletionClientCapabilities())
    return attrs.evolve(caps, text_document=text)


async def editor(case: Case, path: Path, line: int, column: int) -> tuple[str, str | None]:
    """(hole kind, shown text) from the real server with a model that streams `case.raw`."""
    env = {**os.environ, "PYTHONPATH": str(ROOT),
           "STAGECODER_MODEL_FACTORY": "tests.fakes.models:scripted",
           "STAGECODER_FAKE_TEXT": case.raw}
    client = await ClientServerConfig(server_command=SERVER_COMMAND, server_env=env).start()
    assert isinstance(client, LanguageClient)
    try:
        accept_registrations(client)
        await client.initialize_session(types.InitializeParams(
            capabilities=inline_capabilities(),
            initialization_options={"stages": {"candidates": 1}}))
        uri = path_to_uri(path)
        client.text_document_did_open(types.DidOpenTextDocumentParams(
            text_document=types.TextDocumentItem(uri=uri, language_id=case.language, version=1,
                                                 text=path.read_text(encoding="utf-8"))))
        shown = await client.text_document_inline_completion_async(types.InlineCompletionParams(
            text_document=types.TextDocumentIdentifier(uri=uri),
            position=types.Position(line=line, character=column),
            context=types.InlineCompletionContext(
                trigger_kind=types.InlineCompletionTriggerKind.Automatic)))
        context = await client.workspace_execute_command_async(types.ExecuteCommandParams(
            command="stagecoder.completionContext", arguments=[uri, line, column]))
        await client.shutdown_session()
    finally:
        await client.stop()
    text = shown.items[0].insert_text if shown is not None and shown.items else None
    assert isinstance(text, str | None)
    return context["context"]["hole"]["kind"], text


async def cli(*args: str) -> tuple[int, dict]:
    """Run `stagecoder ARGS...` (as a user would) and parse its JSON output."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "lsp_server", *args, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE, env={**os.environ, "PYTHONPATH": str(ROOT)})
    out, err = await asyncio.wait_for(process.communicate(), timeout=120)
    assert process.returncode in (0, 1), err.decode()
    return process.returncode, json.loads(out)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
async def test_replay_equals_editor(case: Case, tmp_path: Path) -> None:
    path = tmp_path / f"case.{EXTENSIONS[case.language]}"
    path.write_text(case.source.replace(CURSOR, ""), encoding="utf-8")
    raw = tmp_path / "raw.txt"
    raw.write_text(case.raw, encoding="utf-8")
    line, column = cursor_of(case.source)
    where = (str(path), "--line", str(line + 1), "--col", str(column + 1))
    replay = asyncio.gather(cli("stages", *where, "--raw", str(raw)),
                            cli("context", *where, "--workspace", str(tmp_path), "--json"))
    editor_kind, editor_text = await editor(case, path, line, column)
    (stages_code, stages), (_, context) = await replay

    assert (editor_kind, context["context"]["hole"]["kind"], stages["holeKind"]) == (
        case.kind, case.kind, case.kind)
    assert (editor_text, stages["text"]) == (case.text, case.text)
    assert stages_code == (0 if case.text is not None else 1)
