"""Model-written rewrite of a selection (`refactor.rewrite`): chat prompt, stream, staged checks.

The selection goes to the chat model (secret values masked); the code block of its reply
is re-indented to the selection's place and passes the same stages as a completion (structure:
it must parse in context, naming, boundary checks) before an editor sees it.
"""

from __future__ import annotations

import re
import textwrap
from collections.abc import Callable
from dataclasses import dataclass, field

from analysis.context.builder import ContextBuilder
from analysis.documents.document import Document
from analysis.scope.names import KnownNames
from analysis.secrets import redact_window
from analysis.settings import StageSettings
from generation.completion.pipeline import Decision, prepare_at, run_stages
from generation.model.client import ChatMessage, ModelClient

SYSTEM = ("You are a careful senior engineer. Rewrite the code you are given so that it is "
          "clearer and handles bad input, keeping its behaviour. Answer with the rewritten code "
          "only, in one fenced code block.")
_FENCE = re.compile(r"```[^\n`]*\n(.*?)(?:```|\Z)", re.S)


@dataclass(slots=True)
class RewriteResult:
    """The rewritten text for the selection (None: nothing usable) and what the stages did."""

    text: str | None
    raw: str
    decisions: list[Decision] = field(default_factory=list)


def messages_for(doc: Document, start: int, end: int) -> list[ChatMessage]:
    """The chat messages asking for a rewrite of source[start:end]."""
    selection = redact_window(doc.source, start, end, end, doc.uri)[0]
    language = doc.language if doc.spec else "text"
    prompt = (f"Rewrite this {language} code. Keep the same names for anything used outside "
              f"it.\n```{language}\n{textwrap.dedent(selection)}\n```")
    return [ChatMessage("system", SYSTEM), ChatMessage("user", prompt)]


def code_of(reply: str) -> str:
    """The first fenced code block of a reply (the whole reply when it has none)."""
    match = _FENCE.search(reply)
    return (match.group(1) if match else reply).strip("\n")


def place(code: str, doc: Document, start: int) -> str:
    """Re-indent model code for the selection's place: first line bare, the rest indented."""
    line_start = doc.source.rfind(b"\n", 0, start) + 1
    before = doc.source[line_start:start].decode("utf-8", "replace")
    indent = before if not before.strip() else before[: len(before) - len(before.lstrip())]
    lines = textwrap.dedent(code).splitlines()
    return "\n".join([lines[0], *(indent + ln if ln.strip() else "" for ln in lines[1:])]) \
        if lines else ""


def staged(doc: Document, start: int, end: int, code: str, stages: StageSettings) -> RewriteResult:
    """Run the stages on a rewrite of source[start:end] (pure: no model)."""
    rest = doc.source[:start] + doc.source[end:]
    hole_doc = Document.from_bytes(doc.uri, rest, doc.language_id or None)
    placed = place(code, doc, start)
    if not placed.strip():
        return RewriteResult(None, code, [Decision("structure", "dropped", "empty rewrite")])
    _, inputs = prepare_at(hole_doc, start, ContextBuilder(), KnownNames())
    if inputs is None:  # a secret file: not staged (nor sent)
        return RewriteResult(None, code, [Decision("structure", "dropped", "file kept from "
                                                   "the model")])
    candidate = run_stages(inputs, placed, stages)
    return RewriteResult(candidate.text, code, candidate.decisions)


async def rewrite_selection(
    client: ModelClient, doc: Document, start: int, end: int, stages: StageSettings,
    on_text: Callable[[str], None] | None = None,
) -> RewriteResult:
    """Ask the chat model for a rewrite (streamed; cancelling the task aborts the request)."""
    async with client.stream_chat(messages_for(doc, start, end)) as stream:
        async for _ in stream:
            if on_text is not None:
                on_text(stream.text)
    return staged(doc, start, end, code_of(stream.text), stages)
