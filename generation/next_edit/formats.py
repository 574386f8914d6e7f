"""Prompt formats for next-edit models: how the request is written and the answer read back.

A format turns a `NextEditInput` (the edit history as unified-diff hunks, the editable region
and the excerpt around it) into a `Prompt` (chat messages for an instruct model, or raw text for
a completion model, with its stop strings), and reads the model's answer back into the region's
new text, or None when the model says nothing should change. Formats are picked by the
`nextEdit.format` setting (`FORMATS`).

- `deepseek-instruct`: DeepSeek-Coder instruct over /v1/chat/completions. The region is marked
  with `<|region_start|>`/`<|region_end|>` and the cursor with `<|cursor|>`; the model answers
  the rewritten region in one fenced block, or `NO_CHANGE`.
- `zeta`: the documented prompt of Zed's open Zeta model (zeta1) over /v1/completions:
  `### Instruction:` / `### User Edits:` (each hunk as `User edited "path":` and a diff block) /
  `### User Excerpt:` (the excerpt in a block named by the path, `<|start_of_file|>` when it
  begins the file, the region between `<|editable_region_start|>` and
  `<|editable_region_end|>`, the cursor as `<|user_cursor_is_here|>`) / `### Response:`. The
  model answers the excerpt again; the text between the region markers is the new region, and
  an answer equal to the region is no change.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Protocol

from generation.next_edit.region import Region

NO_CHANGE = "NO_CHANGE"


@dataclass(frozen=True, slots=True)
class NextEditInput:
    """Everything a format needs for one request."""

    path: str  # as shown in prompts (workspace-relative)
    language: str
    history: tuple[str, ...]  # unified-diff hunks, oldest first (already masked)
    region: Region


@dataclass(frozen=True, slots=True)
class Prompt:
    """A request to the model: chat `messages` (instruct) or raw `text` (completion)."""

    messages: tuple[tuple[str, str], ...] = ()  # (role, content)
    text: str = ""
    stop: tuple[str, ...] = field(default=())

    @property
    def chat(self) -> bool:
        """True for a chat request (/v1/chat/completions)."""
        return bool(self.messages)


class PromptFormat(Protocol):
    """Writes the prompt and reads the answer for one kind of next-edit model."""

    name: str

    def build(self, request: NextEditInput) -> Prompt:
        """The prompt for `request`."""
        ...

    def parse(self, answer: str, request: NextEditInput) -> str | None:
        """The region's new text from the model's answer; None for "no change"."""
        ...

    def complete(self, partial: str) -> bool:
        """True once a streamed answer holds all that `parse` needs (the stream may close)."""
        ...


# ---------------------------------------------------------------------- DeepSeek instruct

_SYSTEM = ("You are a code editing assistant inside a code editor. From the programmer's recent "
           "edits, predict the next edit they will make near the cursor: finish a change they "
           "started, repeat it where the same change is still missing, add what the new code "
           "needs. Change nothing else.")
REGION_START = "<|region_start|>"
REGION_END = "<|region_end|>"
CURSOR = "<|cursor|>"
_FENCE = re.compile(r"```[^\n]*\n(.*?)(?:\n?```|\Z)", re.S)


class DeepSeekInstruct:
    """DeepSeek-Coder instruct: rewrite the marked region, or answer NO_CHANGE."""

    name = "deepseek-instruct"

    def build(self, request: NextEditInput) -> Prompt:
        """Chat messages: system rules, then history, excerpt and the task."""
        r = request.region
        lang = request.language if request.language != "plaintext" else ""
        history = "\n".join(request.history) if request.history else "(no edits yet)\n"
        marked = (r.text[:r.cursor_in_text] + CURSOR + r.text[r.cursor_in_text:])
        user = (
            f"Recent edits to {request.path}, oldest first:\n```diff\n{history}```\n\n"
            f"The code around the cursor. The editable region lies between {REGION_START} and "
            f"{REGION_END}; {CURSOR} marks the cursor.\n"
            f"```{lang}\n{r.before}{REGION_START}\n{marked}{REGION_END}\n{r.after}```\n\n"
            "Rewrite the editable region with the programmer's next edit applied. Answer with "
            f"the whole rewritten region in one ```{lang} block, without the markers. If no "
            f"edit is needed, answer exactly {NO_CHANGE}."
        )
        return Prompt(messages=(("system", _SYSTEM), ("user", user)))

    def parse(self, answer: str, request: NextEditInput) -> str | None:
        """The fenced block's text (markers removed), or None for NO_CHANGE or no code."""
        stripped = answer.strip()
        if not stripped or stripped.startswith(NO_CHANGE):
            return None
        match = _FENCE.search(answer)
        if match is None:
            return None  # prose without code is no edit
        text = match.group(1)
        for marker in (CURSOR, REGION_START, REGION_END):
            text = text.replace(marker, "")
        text = text.lstrip("\n") if not request.region.text.startswith("\n") else text
        return _with_final_newline(text, request.region.text)

    def complete(self, partial: str) -> bool:
        """The block has closed, or the answer is NO_CHANGE."""
        head = partial.lstrip()
        if head.startswith(NO_CHANGE):
            return True
        first = partial.find("```")
        return first != -1 and partial.find("\n```", first + 3) != -1


# ---------------------------------------------------------------------- Zeta (zeta1)

ZETA_INSTRUCTION = (
    "You are a code completion assistant and your task is to analyze user edits and then "
    "rewrite an excerpt that the user provides, suggesting the appropriate edits within the "
    "excerpt, taking into account the cursor location."
)
ZETA_CURSOR = "<|user_cursor_is_here|>"
ZETA_START_OF_FILE = "<|start_of_file|>"
ZETA_REGION_START = "<|editable_region_start|>"
ZETA_REGION_END = "<|editable_region_end|>"


class Zeta:
    """Zed's Zeta (zeta1) prompt over /v1/completions."""

    name = "zeta"

    def build(self, request: NextEditInput) -> Prompt:
        """The instruction, the user's edits, the excerpt, and the response header."""
        r = request.region
        events = "\n\n".join(
            f'User edited "{request.path}":\n```diff\n{hunk}```' for hunk in request.history)
        region = r.text[:r.cursor_in_text] + ZETA_CURSOR + r.text[r.cursor_in_text:]
        if region and not region.endswith("\n"):
            region += "\n"
        excerpt = (
            f"```{request.path}\n"
            + (f"{ZETA_START_OF_FILE}\n" if r.starts_file else "")
            + r.before + f"{ZETA_REGION_START}\n" + region + f"{ZETA_REGION_END}\n"
            + r.after + ("" if not r.after or r.after.endswith("\n") else "\n") + "```"
        )
        text = (f"### Instruction:\n{ZETA_INSTRUCTION}\n\n### User Edits:\n\n{events}\n\n"
                f"### User Excerpt:\n\n{excerpt}\n\n### Response:\n")
        return Prompt(text=text, stop=(ZETA_REGION_END,))

    def parse(self, answer: str, request: NextEditInput) -> str | None:
        """The text between the region markers (the cursor marker removed); None when the
        answer has no region or repeats it unchanged."""
        start = answer.find(ZETA_REGION_START)
        if start == -1:
            return None
        body = answer[start + len(ZETA_REGION_START):]
        body = body.removeprefix("\n")
        end = body.find(ZETA_REGION_END)
        if end != -1:
            body = body[:end]
        body = body.replace(ZETA_CURSOR, "")
        body = _with_final_newline(body, request.region.text)
        return None if body == request.region.text else body

    def complete(self, partial: str) -> bool:
        """The region's end marker has been written (the stop string ends the stream too)."""
        return ZETA_REGION_END in partial


def _with_final_newline(text: str, region: str) -> str:
    """`text` ending in a line break exactly when the region does (models drop or add one)."""
    if region.endswith("\n") and not text.endswith("\n"):
        return text + "\n"
    if not region.endswith("\n") and text.endswith("\n"):
        return text.rstrip("\n")
    return text


FORMATS: dict[str, PromptFormat] = {f.name: f for f in (DeepSeekInstruct(), Zeta())}


def format_named(name: str) -> PromptFormat:
    """The format for a setting's value (unknown names fall back to DeepSeek instruct)."""
    return FORMATS.get(name) or FORMATS[DeepSeekInstruct.name]
