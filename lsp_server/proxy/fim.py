"""What an OpenAI-style FIM request asks for: the text before and after the cursor, a language.

Two shapes are accepted on `/v1/completions`:
- a DeepSeek-Coder FIM prompt, `...<｜fim▁begin｜>PREFIX<｜fim▁hole｜>SUFFIX<｜fim▁end｜>` (Zed's
  `prompt_format: "deepseek_coder"`, Continue's and minuet-ai's DeepSeek templates); anything
  before the begin marker (a BOS, repository snippets) is not part of the document;
- `prompt` (the text before the cursor) with `suffix` (after it), as OpenAI's API has them.

The language comes from, in order: the request's `stagecoder: {"language": ..., "path": ...}`
extension, a file name in a comment on the prompt's first lines (`# path/to/file.py`, `// Path:
src/a.ts`, `-- language: go`), or the grammar (Python, TypeScript, JavaScript, Go, Rust, Java,
C++, C, in that order on a tie) under which the least of the text is broken (`guess_language`).
A text no grammar takes is plain text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import PurePosixPath

import msgspec
from tree_sitter import Node

from analysis.documents.languages import LANGUAGES, by_name, spec_for

FIM_BEGIN = "<｜fim▁begin｜>"
FIM_HOLE = "<｜fim▁hole｜>"
FIM_END = "<｜fim▁end｜>"
GUESS_ORDER = ("python", "typescript", "javascript", "go", "rust", "java", "cpp", "c")
GUESS_BYTES = 64 << 10  # the most of the text that language guessing parses
_HINT = re.compile(r"^\s*(?:#|//|--|/\*+|;+)\s*(?:(?:path|file|filename|language)\s*:\s*)?"
                   r"(?P<name>[\w./\\-]+)\s*(?:\*/)?\s*$", re.IGNORECASE)


class RequestError(Exception):
    """The request is not a completion request this proxy can serve (HTTP 400)."""


class Extension(msgspec.Struct, omit_defaults=True):
    """stagecoder's own optional fields of a request: what the file is."""

    language: str | None = None  # a languageId or a grammar name ("python", "typescriptreact")
    path: str | None = None  # a file name or path; its extension names the language


class CompletionBody(msgspec.Struct):
    """The fields of an OpenAI completion request that the proxy reads (the rest is ignored:
    the proxy's settings decide sampling, and the stages decide where a completion ends)."""

    prompt: str | list[str] = ""
    suffix: str | None = None
    stream: bool = False
    model: str | None = None
    stagecoder: Extension | None = None


@dataclass(frozen=True, slots=True)
class FimRequest:
    """The document around the cursor and its language."""

    prefix: str
    suffix: str
    language: str | None  # a grammar name, None: plain text
    path: str  # the file name used in the prompt's header line
    stream: bool
    model: str | None


def parse_body(raw: bytes) -> FimRequest:
    """A FimRequest from a /v1/completions body (RequestError when it is not one)."""
    try:
        body = msgspec.json.decode(raw, type=CompletionBody)
    except msgspec.DecodeError as exc:
        raise RequestError(f"not a completion request: {exc}") from None
    prompt = body.prompt
    if isinstance(prompt, list):
        if len(prompt) != 1:
            raise RequestError("give one prompt (a list of prompts is not supported)")
        prompt = prompt[0]
    prefix, suffix = split_prompt(prompt, body.suffix)
    extension = body.stagecoder or Extension()
    language, path = language_of(prefix, suffix, extension)
    return FimRequest(prefix, suffix, language, path, body.stream, body.model)


def split_prompt(prompt: str, suffix: str | None) -> tuple[str, str]:
    """(prefix, suffix) of a DeepSeek FIM prompt, or of a prompt with a separate suffix."""
    begin = prompt.find(FIM_BEGIN)
    hole = prompt.find(FIM_HOLE, begin + 1 if begin != -1 else 0)
    if hole == -1:
        return prompt, suffix or ""
    start = begin + len(FIM_BEGIN) if begin != -1 else 0
    end = prompt.find(FIM_END, hole)
    rest = prompt[hole + len(FIM_HOLE):end if end != -1 else len(prompt)]
    return prompt[start:hole], rest


def language_of(prefix: str, suffix: str, extension: Extension) -> tuple[str | None, str]:
    """(grammar name or None, file name for the prompt) for the text (see the module)."""
    if extension.language:
        spec = by_name(extension.language.lower()) or spec_for(extension.language)
        if spec is not None:
            return spec.name, extension.path or f"untitled{spec.extensions[0]}"
    if extension.path:
        spec = spec_for(None, extension.path)
        return (spec.name if spec else None), extension.path
    for line in prefix.splitlines()[:3]:
        match = _HINT.match(line)
        if match is None:
            continue
        name = match.group("name")
        spec = by_name(name.lower()) or spec_for(name.lower()) or spec_for(None, name)
        if spec is not None:
            shown = name if "." in PurePosixPath(name).name else f"untitled{spec.extensions[0]}"
            return spec.name, shown
    # The cursor's line is half written: guess on the whole lines around it.
    whole = prefix[:prefix.rfind("\n") + 1] + (suffix[suffix.find("\n"):] if "\n" in suffix else "")
    guessed = guess_language(whole.encode("utf-8", "surrogatepass")[:GUESS_BYTES])
    spec = by_name(guessed) if guessed else None
    return guessed, f"untitled{spec.extensions[0]}" if spec else "untitled.txt"


def guess_language(source: bytes) -> str | None:
    """The grammar (GUESS_ORDER breaks ties) under which `source` has the least broken text:
    bytes inside error nodes plus missing nodes. The text around a cursor is rarely whole (an
    open brace, a half-written line), so "no error at all" would be too strict; a text that
    is mostly broken under every grammar is plain text (None)."""
    if not source.strip():
        return None
    specs = {spec.name: spec for spec in LANGUAGES}
    best: tuple[int, str] | None = None
    for name in GUESS_ORDER:
        root = specs[name].parser().parse(source).root_node
        broken = _broken(root) if root.has_error else 0
        if best is None or broken < best[0]:
            best = (broken, name)
        if broken == 0:
            break
    assert best is not None
    return best[1] if best[0] * 4 <= len(source) else None


def _broken(root: Node) -> int:
    """Bytes of the tokens that no rule took (leaves right inside ERROR nodes), plus one per
    MISSING node; well-formed parts inside an ERROR node do not count (no recursion)."""
    total, stack = 0, [root]
    while stack:
        node = stack.pop()
        if node.is_missing:
            total += 1
        elif node.is_error:
            for child in node.children:
                if child.child_count == 0:
                    total += child.end_byte - child.start_byte
                elif child.has_error or child.is_error:
                    stack.append(child)
        elif node.has_error:
            stack.extend(node.children)
    return total
