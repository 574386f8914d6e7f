"""The LSP fuzzer: random edits, requests, malformed params and frames, bursts with cancels,
against a real `stagecoder serve` in both position encodings, with document-state checks.

The client keeps its own model of every open document, applying each edit with LSP's rules
(positions in the negotiated encoding; a character past a line's end means its end, a line past
the document's end means the end; a position inside a character means its start; a reversed
range is swapped; a notification whose params are invalid, such as a negative position, is
ignored whole). Every few operations it compares the server's `stagecoder.documentState`
(`sha256`, `bytes`, `version`) with the model. A hang is a request not answered in time; a
crash is the server dying or answering -32603; unanswered counts requests never answered.

Seeded: STAGECODER_FUZZ_SEED=N replays a run (the seed is printed); STAGECODER_FUZZ_SECONDS
bounds each encoding's run (default 40 s, at most 10,000 operations). Operations are drawn in
the same order for a seed; how many fit in the time depends on the machine.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import random
import re
import time
from collections import Counter
from typing import Any

import pytest

from tests.lsp_server._raw_lsp import RawClient, encode, frame

SEED = int(os.environ.get("STAGECODER_FUZZ_SEED") or random.randrange(2**32))
SECONDS = float(os.environ.get("STAGECODER_FUZZ_SECONDS", "40"))
MAX_OPERATIONS = 10_000
CHECK_EVERY = 8
ANSWER_TIMEOUT = 20.0
HUGE = 2**31 - 1
BREAK = re.compile(r"\r\n|\r|\n")
# Completions go to a closed port: the request path runs to a fast connection error.
OPTIONS = {"completion": {"url": "http://127.0.0.1:9", "connectTimeout": 0.5}}
LANGUAGES = [("py", "python"), ("js", "javascript"), ("go", "go"), ("txt", "plaintext")]
PIECES = [*"abcxyz_=():,.'\"#+-*/0123 ", "\n", "\n", "\r\n", "\r", "    ", "\t", "é", "ß",
          "中文", "😀", "👋🌍", "\udc00", "\ud83d", "def f(x):\n    return x\n", "if x:\n",
          "function g() { return 1 }\n", "func main() {}\n", "return ", "print('dead')\n"]


# ---------------------------------------------------------------------- the client's model

def _width(ch: str, encoding: str) -> int:
    if encoding == "utf-8":
        return len(ch.encode("utf-8", "surrogatepass"))
    if encoding == "utf-16":
        return 2 if ord(ch) > 0xFFFF else 1
    return 1


def _lines(text: str) -> list[tuple[int, int]]:
    """(start, end) str index of each line's content, LSP line breaks."""
    spans, start = [], 0
    for m in BREAK.finditer(text):
        spans.append((start, m.start()))
        start = m.end()
    spans.append((start, len(text)))
    return spans


def index_of(text: str, line: int, character: int, encoding: str) -> int:
    """The str index of an LSP position, with LSP's clamping (the model's own codec)."""
    spans = _lines(text)
    if line >= len(spans):
        return len(text)
    start, end = spans[line]
    units = 0
    for i in range(start, end):
        w = _width(text[i], encoding)
        if units + w > character:
            return i
        units += w
    return end


def position_of(text: str, index: int, encoding: str) -> tuple[int, int]:
    for line, (start, end) in enumerate(_lines(text)):
        if index <= end:
            return line, sum(_width(ch, encoding) for ch in text[start:index])
    raise AssertionError("index past the text")


def wire(text: str) -> str:
    """The text the server receives: JSON joins an escaped surrogate pair into one character."""
    return json.loads(json.dumps(text))


# ---------------------------------------------------------------------- the fuzzer

class Fuzzer:
    """One run against one server; counts what the summary line reports."""

    def __init__(self, client: RawClient, rng: random.Random) -> None:
        self.client, self.rng, self.enc = client, rng, client.encoding
        self.texts: dict[str, str] = {}
        self.versions: dict[str, int] = {}
        self.closed: list[str] = []
        self.waiting: list[tuple[asyncio.Future[dict[str, Any]], str, set[int]]] = []
        self.operations = self.crashes = self.hangs = self.mismatches = self.unanswered = 0
        self.checks = 0
        self.serial = 0
        self.problems: list[str] = []
        self.answers: Counter[str] = Counter()  # "result" or the error code, per answer

    # ------------------------------------------------------------------ generators

    def text(self, most: int = 12) -> str:
        return "".join(self.rng.choice(PIECES) for _ in range(self.rng.randint(0, most)))

    def position(self, uri: str | None) -> tuple[int, int]:
        text = self.texts.get(uri, "") if uri else ""
        r = self.rng.random()
        if r < 0.04:
            return HUGE, HUGE
        if r < 0.12:
            return self.rng.randint(0, 50), self.rng.randint(0, 200)  # often past the end
        line, character = position_of(text, self.rng.randint(0, len(text)), self.enc)
        return line, character

    def range(self, uri: str | None) -> dict[str, Any]:
        a, b = self.position(uri), self.position(uri)
        if self.rng.random() < 0.6:
            a, b = sorted((a, b))
        return {"start": {"line": a[0], "character": a[1]},
                "end": {"line": b[0], "character": b[1]}}

    def some_uri(self) -> str | None:
        return self.rng.choice(sorted(self.texts)) if self.texts else None

    # ------------------------------------------------------------------ operations

    def open(self) -> None:
        self.serial += 1
        ext, lang = self.rng.choice(LANGUAGES)
        uri = f"file:///tmp/stagecoder-fuzz/doc{self.serial}.{ext}"
        text = wire(self.text(30))
        self.texts[uri], self.versions[uri] = text, 1
        self.client.notify("textDocument/didOpen", {"textDocument": {
            "uri": uri, "languageId": lang, "version": 1, "text": text}})

    def close(self) -> None:
        uri = self.some_uri()
        if uri is None:
            return
        del self.texts[uri], self.versions[uri]
        self.closed.append(uri)
        self.client.notify("textDocument/didClose", {"textDocument": {"uri": uri}})

    def edit(self) -> None:
        uri = self.some_uri()
        if uri is None:
            return self.open()
        text, changes, valid = self.texts[uri], [], True
        for _ in range(self.rng.randint(1, 3)):
            if self.rng.random() < 0.05:
                new = wire(self.text(30))
                changes.append({"text": new})
                text = new
                continue
            rng, new = self.range(uri), wire(self.text())
            if self.rng.random() < 0.03:
                rng["start"]["character"] = -1  # invalid params: the whole notification is ignored
                valid = False
            changes.append({"range": rng, "text": new})
            if valid:
                a = index_of(text, rng["start"]["line"], rng["start"]["character"], self.enc)
                b = index_of(text, rng["end"]["line"], rng["end"]["character"], self.enc)
                a, b = min(a, b), max(a, b)
                text = text[:a] + new + text[b:]
        version = self.versions[uri] + 1
        if valid:
            self.texts[uri], self.versions[uri] = text, version
        self.client.notify("textDocument/didChange", {
            "textDocument": {"uri": uri, "version": version}, "contentChanges": changes})

    def request(self, allowed: set[int] | None = None) -> int:
        uri = self.some_uri() or "file:///tmp/stagecoder-fuzz/none.py"
        line, character = self.position(uri)
        at = {"textDocument": {"uri": uri}, "position": {"line": line, "character": character}}
        method, params = self.rng.choice([
            ("textDocument/inlineCompletion", {**at, "context": {"triggerKind": 2}}),
            ("textDocument/completion", at),
            ("textDocument/codeAction", {"textDocument": {"uri": uri}, "range": self.range(uri),
                                         "context": {"diagnostics": []}}),
            ("textDocument/diagnostic", {"textDocument": {"uri": uri}}),
            ("workspace/executeCommand", {"command": "stagecoder.documentState",
                                          "arguments": [uri]}),
        ])
        msg_id = self.client.next_id()
        self.track(self.client.send_request(method, params, msg_id=msg_id), method,
                   allowed or {-32602})
        return msg_id

    def malformed_params(self) -> None:
        uri = self.some_uri() or "file:///x.py"
        method = self.rng.choice(["textDocument/inlineCompletion", "textDocument/completion",
                                  "textDocument/codeAction", "textDocument/diagnostic",
                                  "codeAction/resolve", "workspace/executeCommand"])
        shape = self.rng.choice([None, [], [1], "x", 7, {}, {"textDocument": 5},
                                 {"textDocument": {"uri": uri}, "position": {"line": -3}},
                                 {"textDocument": {"uri": 9}, "range": [], "command": 4,
                                  "title": None}])
        self.track(self.client.send_request(method, shape), f"{method} {shape!r}", {-32602})

    def malformed_frame(self) -> None:
        self.serial += 1
        body = json.dumps({"jsonrpc": "2.0", "id": f"bad-{self.serial}",
                           "method": "workspace/executeCommand",
                           "params": {"command": "stagecoder.showSettings"}}).encode()
        n = len(body)
        self.client.send_raw(self.rng.choice([
            frame(body, b"Content-Type: application/vscode-jsonrpc\r\n\r\n"),
            frame(body, b"Content-Length: many\r\n\r\n"),
            frame(body, b"Content-Length: -12\r\n\r\n"),
            frame(body, f"Content-Length: {n + 300}\r\n\r\n".encode()),
            frame(body, f"Content-Length: {n - 7}\r\n\r\n".encode()),
            frame(body, f"content-length: {n}\r\n\r\n".encode()),
            frame(body[:-9]),
            body,
            b"\r\n\x00\xff garbage \r\n",
            encode({"jsonrpc": "2.0", "id": {"bad": True}, "method": "shutdown"}),
            encode([{"jsonrpc": "2.0", "method": "initialized"}]),  # type: ignore[arg-type]
        ]))

    def burst(self) -> None:
        ids = [self.request({-32602, -32800}) for _ in range(self.rng.randint(3, 8))]
        for msg_id in self.rng.sample(ids, self.rng.randint(1, len(ids))):
            self.client.notify("$/cancelRequest", {"id": msg_id})

    def track(self, future: asyncio.Future[dict[str, Any]], what: str,
              allowed: set[int]) -> None:
        self.waiting.append((future, what, allowed))

    # ------------------------------------------------------------------ checks

    async def settle(self) -> bool:
        """Wait for every outstanding answer; False after a hang or a crash."""
        waiting, self.waiting = self.waiting, []
        if not waiting:
            return True
        done, pending = await asyncio.wait([f for f, _, _ in waiting], timeout=ANSWER_TIMEOUT)
        for future, what, allowed in waiting:
            if future not in done:
                self.hangs += 1
                self.problems.append(f"no answer in {ANSWER_TIMEOUT:.0f} s: {what}")
                continue
            if future.exception() is not None:
                self.crashes += 1
                self.problems.append(f"{what}: {future.exception()}")
                continue
            error = future.result().get("error")
            self.answers[str(error["code"]) if error else "result"] += 1
            if error is not None and error["code"] not in allowed:
                self.crashes += int(error["code"] == -32603)
                self.problems.append(f"{what}: {error}")
        return not pending and self.client.alive

    async def check_state(self) -> bool:
        if not await self.settle():
            return False
        uris = sorted(self.texts) + self.closed[-2:]
        replies = await asyncio.wait_for(asyncio.gather(
            *(self.client.document_state(u) for u in uris)), ANSWER_TIMEOUT)
        for uri, got in zip(uris, replies, strict=True):
            self.checks += 1
            if uri not in self.texts:
                if got is not None:
                    self.mismatches += 1
                    self.problems.append(f"{uri} closed but the server still has it")
                continue
            data = self.texts[uri].encode("utf-8", "surrogatepass")
            want = {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data),
                    "version": self.versions[uri]}
            if got is None or {k: got.get(k) for k in want} != want:
                self.mismatches += 1
                self.problems.append(f"{uri}: server {got and {k: got.get(k) for k in want}} "
                                     f"!= model {want} for {self.texts[uri]!r}")
        return True

    async def run(self, deadline: float) -> None:
        ops = [(self.edit, 40), (self.request, 20), (self.malformed_params, 8),
               (self.malformed_frame, 5), (self.burst, 4), (self.open, 3), (self.close, 2)]
        actions, weights = zip(*ops, strict=True)
        for _ in range(3):
            self.open()
        while self.operations < MAX_OPERATIONS and time.monotonic() < deadline:
            self.rng.choices(actions, weights)[0]()
            self.operations += 1
            if len(self.texts) > 5:
                self.close()
            if self.operations % CHECK_EVERY == 0:
                if not await self.check_state():
                    break
                if self.mismatches:
                    break  # later states only repeat the first difference
        else:
            await self.check_state()
        self.unanswered = len([f for f, _, _ in self.waiting if not f.done()])
        self.unanswered += len(self.client.pending())
        if not self.client.alive:
            self.crashes += 1
            self.problems.append(f"the server exited (see {self.client.log_path})")


@pytest.mark.parametrize("profile", ["visual-studio-code", "neovim"])
async def test_fuzz(profile: str, tmp_path, capsys):
    client = RawClient(tmp_path / "server.log")
    await client.start(profile, OPTIONS)
    assert client.encoding == {"visual-studio-code": "utf-16", "neovim": "utf-8"}[profile]
    rng = random.Random(f"{SEED}-{profile}")
    fuzzer = Fuzzer(client, rng)
    started = time.monotonic()
    try:
        await fuzzer.run(started + SECONDS)
    finally:
        returncode = await client.close()
    summary = (f"fuzz: operations={fuzzer.operations} crashes={fuzzer.crashes} "
               f"hangs={fuzzer.hangs} mismatches={fuzzer.mismatches} "
               f"unanswered={fuzzer.unanswered}")
    with capsys.disabled():  # shown in every run, not only when the test fails
        print(f"\nfuzz seed={SEED} profile={profile} encoding={client.encoding} "
              f"state checks={fuzzer.checks} answers={dict(fuzzer.answers)} "
              f"in {time.monotonic() - started:.1f} s")
        print(summary)
    shown = [p["message"] for p in client.notifications("window/showMessage")]
    assert all(m.startswith("stagecoder: no completions:") for m in shown), shown  # model down
    assert fuzzer.problems == [], f"seed {SEED}: {fuzzer.problems[:5]}"
    assert summary == (f"fuzz: operations={fuzzer.operations} crashes=0 hangs=0 mismatches=0 "
                       "unanswered=0")
    assert fuzzer.operations >= 200 and fuzzer.checks >= 50
    assert returncode == 0
