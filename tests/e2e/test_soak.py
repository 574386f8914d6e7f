"""Soak: 1,000 inline completions through `stagecoder serve` against a fake model server.

The fake (tests/fakes/openai_server.py, in this test's event loop) ends every stream exactly when
the unit completes: the finishing piece, finish_reason, usage and [DONE] arrive back to back,
which used to leak about 1.5 pooled connections per request until completions stopped (issue 18).
The requests are interleaved with `$/cancelRequest`s and supersedes (a second request for the
document before the first answered). Witnesses: every request answered; every plain request (and
the last one) non-empty; the model was really called (`modelCalls`); the server's pool has 0
connections in use; its open sockets to the model (read from /proc) and the fake's own count stay
within the keep-alive bound, and drop to 0 once the keep-alive expires; RSS stays flat.
"""

from __future__ import annotations

import asyncio
import os
import random
import time
from pathlib import Path

import attrs
import pytest_lsp
from lsprotocol import types
from pytest_lsp import ClientServerConfig, LanguageClient, client_capabilities

from generation.model.client import DEFAULT_LIMITS
from tests.fakes.openai_server import FakeModelServer
from tests.lsp_server.conftest import SERVER_COMMAND, accept_registrations

ROOT = Path(__file__).resolve().parents[2]
URI = "file:///tmp/stagecoder-soak/shapes.py"
SOURCE = "import math\n\n\ndef area_0000(radius):\n\n"  # the cursor goes on line 4
NAME_AT = (3, len("def area_"))  # the 4 digits rewritten before every request
UNIT = "    return math.pi * radius ** 2\n\ndef next_one():\n"  # the last piece completes it
SUGGESTION = "    return math.pi * radius ** 2"
REQUESTS = 1000
WARM_UP = 100
RSS_MARGIN_MB = 10.0  # allowed growth from after the warm-up to the end
KEEPALIVE = DEFAULT_LIMITS.keepalive_expiry or 0.0
IDLE_BOUND = DEFAULT_LIMITS.max_keepalive_connections or 0
ANSWER_S = 15.0  # generous: the machine is shared


@pytest_lsp.fixture(config=ClientServerConfig(
    server_command=SERVER_COMMAND,
    server_env={**os.environ, "PYTHONPATH": str(ROOT), "STAGECODER_MODEL_FACTORY": ""}))
async def lsp(lsp_client: LanguageClient):
    yield
    await lsp_client.shutdown_session()


def rss_mb(pid: int) -> float:
    """The process's resident set size in MB (VmRSS)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def sockets_to(pid: int, port: int) -> int:
    """The process's open TCP sockets whose remote port is `port` (from /proc)."""
    inodes = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            link = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue  # closed meanwhile
        if link.startswith("socket:["):
            inodes.add(link[len("socket:["):-1])
    count = 0
    for table in ("tcp", "tcp6"):
        for line in Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]:
            fields = line.split()
            if int(fields[2].rsplit(":", 1)[1], 16) == port and fields[9] in inodes:
                count += 1
    return count


async def test_soak_1000_completions_with_cancels_and_supersedes(lsp: LanguageClient):
    # A millisecond between pieces, so that cancels and supersedes land mid-stream too.
    async with FakeModelServer(mode="unit_end", text=UNIT, delay=0.001) as model:
        caps = client_capabilities("visual-studio-code")
        caps = attrs.evolve(caps, text_document=attrs.evolve(
            caps.text_document, inline_completion=types.InlineCompletionClientCapabilities()))
        accept_registrations(lsp)
        options = {"completion": {"url": model.url, "connectTimeout": 2,
                                  "firstTokenTimeout": 10, "totalTimeout": 10}}
        await lsp.initialize_session(types.InitializeParams(
            capabilities=caps, initialization_options=options))
        lsp.text_document_did_open(types.DidOpenTextDocumentParams(
            text_document=types.TextDocumentItem(uri=URI, language_id="python", version=1,
                                                 text=SOURCE)))
        server = lsp._server
        assert server is not None
        pid = server.pid
        params = types.InlineCompletionParams(
            text_document=types.TextDocumentIdentifier(uri=URI),
            position=types.Position(line=4, character=0),
            context=types.InlineCompletionContext(
                trigger_kind=types.InlineCompletionTriggerKind.Automatic))

        def send(msg_id: str) -> asyncio.Future:
            return asyncio.ensure_future(lsp.protocol.send_request_async(
                types.TEXT_DOCUMENT_INLINE_COMPLETION, params, msg_id=msg_id))

        def texts(result: object) -> str:
            if isinstance(result, types.InlineCompletionList) and result.items:
                return str(result.items[0].insert_text)
            return ""

        async def answer(future: asyncio.Future) -> tuple[bool, str]:
            """(answered, text); text is "-32800" for a request answered as cancelled."""
            try:
                return True, texts(await asyncio.wait_for(future, ANSWER_S))
            except TimeoutError:
                return False, ""
            except Exception as exc:
                cancelled = "cancel" in str(exc).lower()
                return cancelled, "-32800" if cancelled else ""

        rng = random.Random(18)
        counts = {"answered": 0, "plain": 0, "nonEmptyPlain": 0, "cancels": 0,
                  "cancelledInTime": 0, "supersedes": 0, "supersededEmpty": 0, "newerNonEmpty": 0}
        sent = 0
        rss_start = 0.0
        started = time.monotonic()
        i = 0
        while sent < REQUESTS:
            i += 1
            # A new function name each time: the typing-through cache cannot answer.
            lsp.text_document_did_change(types.DidChangeTextDocumentParams(
                text_document=types.VersionedTextDocumentIdentifier(uri=URI, version=i + 1),
                content_changes=[types.TextDocumentContentChangePartial(
                    range=types.Range(start=types.Position(line=NAME_AT[0], character=NAME_AT[1]),
                                      end=types.Position(line=NAME_AT[0],
                                                         character=NAME_AT[1] + 4)),
                    text=f"{i % 10000:04d}")]))
            roll = rng.random()
            if roll < 0.15 and sent + 1 <= REQUESTS:
                future = send(f"cancel-{i}")
                # At once (before the model is asked) or at some moment of the stream.
                await asyncio.sleep(0 if rng.random() < 0.3 else rng.uniform(0, 0.015))
                lsp.protocol.notify(types.CANCEL_REQUEST, types.CancelParams(id=f"cancel-{i}"))
                ok, text = await answer(future)
                counts["answered"] += ok
                counts["cancels"] += 1
                counts["cancelledInTime"] += text == "-32800"
                sent += 1
            elif roll < 0.30 and sent + 2 <= REQUESTS:
                older = send(f"older-{i}")
                await asyncio.sleep(rng.uniform(0, 0.01))
                newer = send(f"newer-{i}")
                (ok_old, old_text), (ok_new, new_text) = await asyncio.gather(
                    answer(older), answer(newer))
                counts["answered"] += ok_old + ok_new
                counts["supersedes"] += 1
                counts["supersededEmpty"] += old_text == ""
                counts["newerNonEmpty"] += new_text == SUGGESTION
                sent += 2
            else:
                ok, text = await answer(send(f"plain-{i}"))
                counts["answered"] += ok
                counts["plain"] += 1
                counts["nonEmptyPlain"] += text == SUGGESTION
                sent += 1
                if text != SUGGESTION:
                    break  # broken: report the figures now rather than time out
            if not rss_start and sent >= WARM_UP:
                rss_start = rss_mb(pid)
        ok, last = await answer(send("last"))  # completions still work at the end
        elapsed = time.monotonic() - started

        async def stats() -> dict:
            return await lsp.workspace_execute_command_async(
                types.ExecuteCommandParams(command="stagecoder.stats"))

        figures = await stats()
        deadline = time.monotonic() + 2.0
        while figures["modelConnections"].get("active") and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
            figures = await stats()
        in_use = figures["modelConnections"]["active"]
        sockets = sockets_to(pid, model.port)
        fake_open = model.open
        rss_end = rss_mb(pid)
        # Nothing more is asked: the idle connections must still close when keep-alive ends.
        deadline = time.monotonic() + KEEPALIVE + 3.0
        while (sockets_to(pid, model.port) or model.open) and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        sockets_later = sockets_to(pid, model.port)

        print(f"\nsoak: requests={sent + 1} of {REQUESTS + 1} answered={counts['answered'] + ok} "
              f"plain={counts['plain']} non_empty_plain={counts['nonEmptyPlain']} "
              f"last_non_empty={last == SUGGESTION} cancels={counts['cancels']} "
              f"cancelled_in_time={counts['cancelledInTime']} "
              f"supersedes={counts['supersedes']} "
              f"superseded_empty={counts['supersededEmpty']} "
              f"newer_non_empty={counts['newerNonEmpty']} model_calls={figures['modelCalls']} "
              f"model_requests={model.completions} connections_in_use={in_use} "
              f"idle={figures['modelConnections']['idle']} open_sockets={sockets} "
              f"fake_open={fake_open} fake_peak={model.peak} fake_accepted={model.accepted} "
              f"sockets_after_keepalive={sockets_later} rss_start_mb={rss_start:.1f} "
              f"rss_end_mb={rss_end:.1f} seconds={elapsed:.1f}", flush=True)

        assert sent == REQUESTS
        assert counts["answered"] + ok == sent + 1  # every request answered
        assert counts["nonEmptyPlain"] == counts["plain"] and last == SUGGESTION
        assert counts["newerNonEmpty"] == counts["supersedes"]
        assert counts["cancels"] >= 100 and counts["supersedes"] >= 50
        assert counts["cancelledInTime"] >= 20  # cancels that did land mid-request
        assert figures["modelCalls"] >= counts["plain"]  # the model, not the cache, answered
        assert in_use == 0
        assert sockets <= IDLE_BOUND and fake_open <= IDLE_BOUND
        assert sockets_later == 0 and model.open == 0
        assert rss_end - rss_start <= RSS_MARGIN_MB
