"""Wire types of vLLM's OpenAI-compatible API, as msgspec Structs (requests and responses)."""

from __future__ import annotations

from typing import Any

import msgspec


class StreamOptions(msgspec.Struct):
    """Ask vLLM for a final usage chunk in a stream."""

    include_usage: bool = True


class CompletionRequest(msgspec.Struct, omit_defaults=True):
    """Body of POST /v1/completions; fields left at None are not sent."""

    model: str
    prompt: str | list[int]
    max_tokens: int
    temperature: float
    stream: bool = False
    stream_options: StreamOptions | None = None
    stop: list[str] | None = None
    seed: int | None = None
    ignore_eos: bool = False  # vLLM extension: generate past EOS (tests, benchmarks)
    n: int | None = None  # candidates sampled for the same prompt
    logprobs: int | None = None  # report the sampled tokens' log-probabilities
    priority: int | None = None  # vLLM's scheduling priority (lower first; see replicas.py)


class ChatMessage(msgspec.Struct):
    """One chat message."""

    role: str
    content: str


class ChatRequest(msgspec.Struct, omit_defaults=True):
    """Body of POST /v1/chat/completions; fields left at None are not sent."""

    model: str
    messages: list[ChatMessage]
    max_tokens: int
    temperature: float
    stream: bool = False
    stream_options: StreamOptions | None = None
    stop: list[str] | None = None
    seed: int | None = None
    ignore_eos: bool = False
    priority: int | None = None  # vLLM's scheduling priority (lower first)


class Usage(msgspec.Struct):
    """Token counts of one request."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0


class CompletionLogprobs(msgspec.Struct):
    """Log-probabilities of the tokens in a completion choice (or chunk)."""

    token_logprobs: list[float | None] = msgspec.field(default_factory=list)


class CompletionChoice(msgspec.Struct):
    """One choice of a completion response or chunk."""

    text: str
    index: int = 0
    finish_reason: str | None = None
    logprobs: CompletionLogprobs | None = None


class CandidatePiece(msgspec.Struct, frozen=True):
    """A streamed piece of one of several candidates: its text and token log-probabilities."""

    index: int
    text: str
    logprob: float  # sum over the piece's tokens
    tokens: int


class CompletionResponse(msgspec.Struct):
    """A /v1/completions response or streamed chunk (`choices` is required)."""

    choices: list[CompletionChoice]
    usage: Usage | None = None
    model: str | None = None  # who answered: the served model's name, or a LoRA adapter's


class ChatDelta(msgspec.Struct):
    """The new part of a streamed chat message."""

    content: str | None = None


class ChatStreamChoice(msgspec.Struct):
    """One choice of a streamed chat chunk."""

    delta: ChatDelta
    index: int = 0
    finish_reason: str | None = None


class ChatChunk(msgspec.Struct):
    """One streamed /v1/chat/completions chunk."""

    choices: list[ChatStreamChoice]
    usage: Usage | None = None


class ChatReply(msgspec.Struct):
    """The assistant message of a whole chat response."""

    content: str | None = None


class ChatChoice(msgspec.Struct):
    """One choice of a whole chat response."""

    message: ChatReply
    index: int = 0
    finish_reason: str | None = None


class ChatResponse(msgspec.Struct):
    """A whole /v1/chat/completions response."""

    choices: list[ChatChoice]
    usage: Usage | None = None


class TokenizeRequest(msgspec.Struct):
    """Body of POST /tokenize."""

    model: str
    prompt: str
    add_special_tokens: bool = True


class TokenizeResponse(msgspec.Struct):
    """Answer of /tokenize."""

    count: int
    tokens: list[int]
    max_model_len: int = 0


class ModelCard(msgspec.Struct):
    """One model that the server serves."""

    id: str
    root: str | None = None
    max_model_len: int | None = None


class ModelList(msgspec.Struct):
    """Answer of /v1/models."""

    data: list[ModelCard]


class Completion(msgspec.Struct, frozen=True):
    """The result of a whole (not streamed) completion or chat request."""

    text: str
    finish_reason: str | None = None
    usage: Usage | None = None


class _ErrorEvent(msgspec.Struct):
    error: dict[str, Any]
