"""Model-written explanations of review findings (`stagecoder review --model`).

For each finding, the chat model gets the rule's message and the lines around it (secret values
masked; secret files never sent) and answers with a short explanation and a suggested
rewrite in a code block. A server that cannot be reached fails fast (one health check), so the
review still reports its findings without explanations.
"""

from __future__ import annotations

import asyncio
from collections.abc import Hashable, Sequence
from dataclasses import dataclass

from analysis.secrets import is_secret_file, redact
from generation.chat.rewrite import code_of
from generation.model.client import ChatMessage, ModelClient
from generation.model.errors import ModelError

SYSTEM = ("You are a code reviewer. Explain the problem a static check found in two or three "
          "sentences, then give a suggested rewrite of the flagged lines in one fenced code "
          "block.")
CONTEXT_LINES = 3


@dataclass(frozen=True, slots=True)
class Item:
    """One finding to explain: a key chosen by the caller, and what the model is shown."""

    key: Hashable
    path: str
    code: str
    message: str
    snippet: str
    language: str


@dataclass(frozen=True, slots=True)
class Note:
    """The model's explanation and suggested rewrite."""

    explanation: str
    suggestion: str


def snippet(source: bytes, line: int, end_line: int, context: int = CONTEXT_LINES,
            path: str = "") -> str:
    """Lines line-context .. end_line+context (1-based) with numbers, secret values masked."""
    # The whole file is masked, so a key block that starts above the snippet is known.
    lines = redact(source.decode("utf-8", "replace"), path).text.splitlines()
    lo, hi = max(1, line - context), min(len(lines), end_line + context)
    return "\n".join(f"{n:>5} | {lines[n - 1]}" for n in range(lo, hi + 1))


def parse_reply(reply: str) -> Note:
    """Split a reply into its prose and its first code block."""
    fence = reply.find("```")
    prose = (reply[:fence] if fence != -1 else reply).strip()
    return Note(prose, code_of(reply) if fence != -1 else "")


async def explain(client: ModelClient, items: Sequence[Item], concurrency: int = 2
                  ) -> tuple[dict[Hashable, Note], ModelError | None]:
    """Notes for the items; stops at the first model error and returns it with what it got."""
    await client.health()  # an unreachable server raises here, before any finding is sent
    notes: dict[Hashable, Note] = {}
    failure: list[ModelError] = []
    gate = asyncio.Semaphore(concurrency)

    async def one(item: Item) -> None:
        if failure or is_secret_file(item.path):
            return
        async with gate:
            if failure:
                return
            prompt = (f"{item.code}: {item.message}\nFile {item.path}:\n```{item.language}\n"
                      f"{item.snippet}\n```")
            prompt = redact(prompt, item.path).text  # the message may quote the code too
            try:
                reply = await client.chat([ChatMessage("system", SYSTEM),
                                           ChatMessage("user", prompt)])
            except ModelError as exc:
                failure.append(exc)
                return
            notes[item.key] = parse_reply(reply.text)

    await asyncio.gather(*(one(item) for item in items))
    return notes, (failure[0] if failure else None)
