"""Server-side time per inline completion, through a real LSP client, with an instant model.

The server (`stagecoder serve`, a subprocess) runs with an in-process model that answers at once,
so what is measured is stagecoder's own work: context, prompt, stages, cache, protocol. The file
is 5,000 lines of real Python; each round types one character somewhere in a function body (an
incremental edit) and asks for an inline completion at a fresh spot there. Figures:
- server_p50_ms / server_p95_ms: the engine's own time per request (context to staged text);
- server_cpu_p50_ms / server_cpu_p95_ms: the same on the CPU only (a loaded machine's stalls
  inflate wall time, not this);
- roundtrip_p50_ms / roundtrip_p95_ms: as the client sees it (adds JSON-RPC and the handler).
The last line is JSON.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import statistics
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from lsprotocol import types  # noqa: E402
from pygls.lsp.client import LanguageClient  # noqa: E402

from analysis.documents.document import Document  # noqa: E402
from benchmarks._corpus import python_file  # noqa: E402
from generation.completion.pipeline import Delta  # noqa: E402

URI = "file:///bench/latency.py"
HOLE = "<｜fim▁hole｜>"


class InstantModel:
    """Answers at once, like a model that continues the cursor's block: two statements at the
    cursor's indentation, then runs on past the hole (a dedented `def`, which the structure
    stage must cut). The names are not in the file, so the naming stage has work to do."""

    @contextlib.asynccontextmanager
    async def stream(self, prompt: str, *, n: int, max_tokens: int
                     ) -> AsyncIterator[AsyncIterator[Delta]]:
        before = prompt.split(HOLE, 1)[0]
        indent = before[before.rfind("\n") + 1:]
        answer = (f"result = compute(value)\n{indent}return result\n\n\n"
                  "def later():\n    pass\n")
        yield self._pieces(n, answer)

    async def _pieces(self, n: int, answer: str) -> AsyncIterator[Delta]:
        for i in range(n):
            yield Delta(i, answer, -0.5, 8)


def instant(settings) -> InstantModel:
    """Factory for STAGECODER_MODEL_FACTORY."""
    return InstantModel()


def pct(values: list[float], q: float) -> float:
    """The q-quantile (0..1) of values."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def body_lines(text: str) -> list[int]:
    """Lines that are statements inside function bodies (indented, code, not decorators)."""
    doc = Document("file:///x.py", text, "python")
    out = []
    for i in range(doc.line_count):
        line = doc.line_text(i)
        if line.startswith("        ") and line.strip() and not line.strip().startswith(("#", "@")):
            out.append(i)
    return out


async def run(rounds: int) -> dict:
    text = python_file(5000)
    lines = text.splitlines()
    candidates = body_lines(text)
    rng = random.Random(0)
    client = LanguageClient("latency-bench", "1")
    env = {**os.environ, "PYTHONPATH": str(ROOT),
           "STAGECODER_MODEL_FACTORY": "benchmarks.latency:instant"}
    await client.start_io(sys.executable, "-m", "lsp_server", "serve", env=env)
    caps = types.ClientCapabilities(
        text_document=types.TextDocumentClientCapabilities(
            inline_completion=types.InlineCompletionClientCapabilities()),
        general=types.GeneralClientCapabilities(position_encodings=["utf-16"]))
    await client.initialize_async(types.InitializeParams(
        capabilities=caps, initialization_options={"stages": {"candidates": 1}}))
    client.initialized(types.InitializedParams())
    client.text_document_did_open(types.DidOpenTextDocumentParams(
        text_document=types.TextDocumentItem(uri=URI, language_id="python", version=1,
                                             text=text)))
    roundtrip: list[float] = []
    version = 1
    for _ in range(rounds):
        line = rng.choice(candidates)
        col = len(lines[line])
        version += 1
        # Type a newline at the end of a body line: the cursor lands on a fresh indented line.
        indent = lines[line][: len(lines[line]) - len(lines[line].lstrip())]
        client.text_document_did_change(types.DidChangeTextDocumentParams(
            text_document=types.VersionedTextDocumentIdentifier(uri=URI, version=version),
            content_changes=[types.TextDocumentContentChangePartial(
                range=types.Range(start=types.Position(line=line, character=col),
                                  end=types.Position(line=line, character=col)),
                text="\n" + indent)]))
        lines[line + 1:line + 1] = [indent]
        candidates = [c + 1 if c > line else c for c in candidates]
        t0 = time.perf_counter()
        result = await client.text_document_inline_completion_async(types.InlineCompletionParams(
            text_document=types.TextDocumentIdentifier(uri=URI),
            position=types.Position(line=line + 1, character=len(indent)),
            context=types.InlineCompletionContext(
                trigger_kind=types.InlineCompletionTriggerKind.Automatic)))
        roundtrip.append((time.perf_counter() - t0) * 1e3)
        assert result is None or result.items, "malformed answer"
    stats = await client.workspace_execute_command_async(
        types.ExecuteCommandParams(command="stagecoder.stats"))
    await client.shutdown_async(None)
    client.exit(None)
    await client.stop()
    server = stats["serverMs"][-rounds:]
    server_cpu = stats["serverCpuMs"][-rounds:]
    figures = {
        "lines": len(lines),
        "requests": rounds,
        "model_calls": stats["modelCalls"],
        "server_p50_ms": round(statistics.median(server), 3),
        "server_p95_ms": round(pct(server, 0.95), 3),
        "server_cpu_p50_ms": round(statistics.median(server_cpu), 3),
        "server_cpu_p95_ms": round(pct(server_cpu, 0.95), 3),
        "roundtrip_p50_ms": round(statistics.median(roundtrip), 3),
        "roundtrip_p95_ms": round(pct(roundtrip, 0.95), 3),
    }
    print(f"{rounds} inline completions on a {len(lines)}-line file, instant model")
    print(f"server-side (engine) p50 {figures['server_p50_ms']:.2f} ms, "
          f"p95 {figures['server_p95_ms']:.2f} ms   (budget: p50 <= 5, p95 <= 15)")
    print(f"server-side on-CPU    p50 {figures['server_cpu_p50_ms']:.2f} ms, "
          f"p95 {figures['server_cpu_p95_ms']:.2f} ms   (wall minus time the CPU was elsewhere)")
    print(f"client round trip     p50 {figures['roundtrip_p50_ms']:.2f} ms, "
          f"p95 {figures['roundtrip_p95_ms']:.2f} ms")
    print(json.dumps(figures))
    return figures


def main() -> dict:
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 200
    return asyncio.run(run(rounds))


if __name__ == "__main__":
    main()
