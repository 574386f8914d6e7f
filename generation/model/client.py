"""The request API of vLLM's OpenAI-compatible server: completions and chat, tokenize, health.

`ModelClient` talks to one endpoint (its servers, model, limits and deadlines from
`EndpointSettings`) through shared connection pools, one per server (`generation.model.pools`).
An endpoint with several replicas (`urls`) routes each request by `generation.model.replicas`
and retries it once on another replica when its connection fails before an answer. Every
request body carries the client's vLLM `priority` (the kind of work it does); a server that
refuses a non-zero priority gets the request again without one, and no priority from then on.
A whole answer is read in an owned exchange (`generation.model.exchange`); a streamed one is a
`TextStream` or `CandidateStream` (`generation.model.streams`). Every failure is a `ModelError`
subclass (see `generation.model.errors`).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
from collections.abc import Sequence
from typing import Any, Self, TypeVar

import httpx
import msgspec

from analysis.settings import EndpointSettings
from generation.model.errors import ModelHTTPError, ModelProtocolError, ModelTimeout, excerpt
from generation.model.exchange import (
    MAX_BODY_BYTES,
    Owned,
    aclose_shielded,
    read_body,
    transport_error,
)
from generation.model.pools import DEFAULT_LIMITS, ConnectionPools, base_url
from generation.model.replicas import Replica, ReplicaSet, affinity
from generation.model.streams import CandidateStream, TextStream, chat_piece, completion_piece
from generation.model.wire import (
    ChatMessage,
    ChatRequest,
    ChatResponse,
    Completion,
    CompletionRequest,
    CompletionResponse,
    ModelCard,
    ModelList,
    StreamOptions,
    TokenizeRequest,
    TokenizeResponse,
)

# The client's companions, importable from here as before the split.
__all__ = [
    "DEFAULT_LIMITS",
    "CandidateStream",
    "ChatMessage",
    "ConnectionPools",
    "ModelClient",
    "TextStream",
    "base_url",
]

T = TypeVar("T")
log = logging.getLogger(__name__)


class ModelClient:
    """Client for one model endpoint (url, model, limits and deadlines from `EndpointSettings`)."""

    def __init__(
        self,
        settings: EndpointSettings | None = None,
        *,
        pools: ConnectionPools | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        priority: int | None = None,
    ) -> None:
        self.settings = settings or EndpointSettings()
        urls = [base_url(url) for url in self.settings.replica_urls()]
        self.replicas = ReplicaSet(urls, self._probe)
        self.url = urls[0]  # the first server (the only one without replicas)
        self.priority = priority  # sent with every generation request (None: not sent)
        self._own_pools = pools is None
        self.pools = pools or ConnectionPools(transport)
        self._model: str | None = self.settings.model or None

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Stop the health probes; close the connection pools if this client owns them."""
        await self.replicas.aclose()
        if self._own_pools:
            await self.pools.aclose()

    # -- plumbing --

    @property
    def http(self) -> httpx.AsyncClient:
        """The shared connection pool of this endpoint's (first) server."""
        return self.pools.get(self.url)

    def connection_counts(self) -> dict[str, int]:
        """Connections to every server of the endpoint by state (in use, kept for reuse)."""
        total = {"active": 0, "idle": 0}
        for replica in self.replicas.replicas:
            for state, n in self.pools.counts(replica.url).items():
                total[state] += n
        return total

    def _timeout(self) -> httpx.Timeout:
        s = self.settings
        # Read/write limits are a safety net; the asyncio deadlines below are the real ones.
        return httpx.Timeout(s.total_timeout, connect=s.connect_timeout, pool=s.connect_timeout)

    def _headers(self, stream: bool = False) -> dict[str, str]:
        # The body is read raw (see the module docstring), so it must come uncompressed.
        headers = {"accept": "text/event-stream" if stream else "application/json",
                   "accept-encoding": "identity"}
        key = os.environ.get(self.settings.api_key_env) if self.settings.api_key_env else None
        if key:
            headers["authorization"] = f"Bearer {key}"
        return headers

    def build_request(self, method: str, path: str, body: msgspec.Struct | None = None,
                      stream: bool = False, url: str | None = None) -> httpx.Request:
        """An httpx request for `path` on server `url` (default: the first), headers and
        timeouts set."""
        content = msgspec.json.encode(body) if body is not None else None
        headers = self._headers(stream)
        if content is not None:
            headers["content-type"] = "application/json"
        return self.pools.get(url or self.url).build_request(
            method, path, content=content, headers=headers, timeout=self._timeout()
        )

    # -- replicas and priorities --

    def body_for(self, replica: Replica, body: T) -> T:
        """`body` as it goes to `replica`: without a priority if that server refused one."""
        if replica.priority_refused and getattr(body, "priority", None) is not None:
            return msgspec.structs.replace(body, priority=None)  # type: ignore[type-var]
        return body

    def refused_priority(self, replica: Replica, body: object, status: int,
                         answer: bytes | str) -> bool:
        """Whether `answer` rejects the body's non-zero priority (a server without priority
        scheduling may); if so, no priority is sent to `replica` from now on."""
        if status != 400 or getattr(body, "priority", None) in (None, 0):
            return False
        text = answer.lower() if isinstance(answer, str) else answer.decode("utf-8", "replace")
        if "priority" not in text.lower():
            return False
        replica.priority_refused = True
        log.warning("model server %s refuses request priorities (start it with "
                    "--scheduling-policy priority); sending none to it", replica.url)
        return True

    async def _call(self, method: str, path: str, body: msgspec.Struct | None,
                    type_: type[T]) -> T:
        """One whole request, routed to a replica (one retry on another when the connection
        fails before an answer), decoded into `type_`."""
        key = affinity.get()
        tried: list[Replica] = []
        while True:
            replica = self.replicas.pick(key, tried)
            assert replica is not None  # only the replicas already tried are excluded
            self.replicas.begin(replica)
            try:
                result = await self._once(replica, method, path, body, type_)
            except BaseException as exc:
                outcome = self.replicas.outcome_of(exc)
                retry = outcome == "failed" and not tried and len(self.replicas) > 1
                self.replicas.end(replica, "retried" if retry else outcome)
                if retry:
                    tried.append(replica)
                    continue
                raise
            self.replicas.end(replica, "ok")
            return result

    async def _probe(self, replica: Replica) -> None:
        """GET /health on one replica (the breaker's probe)."""
        await self._once(replica, "GET", "/health", None, type(None))

    async def _once(self, replica: Replica, method: str, path: str,
                    body: msgspec.Struct | None, type_: type[T]) -> T:
        """One whole request to `replica` under the total deadline, decoded into `type_`."""
        url = replica.url
        body = self.body_for(replica, body)
        status, content = await self._exchange(url, method, path, body)
        if self.refused_priority(replica, body, status, content):
            status, content = await self._exchange(url, method, path,
                                                   self.body_for(replica, body))
        if status >= 400:
            raise ModelHTTPError(url, status, excerpt(content))
        if type_ is type(None):
            return None  # type: ignore[return-value]
        try:
            return msgspec.json.decode(content, type=type_)
        except msgspec.DecodeError as exc:  # ValidationError is a DecodeError
            detail = f"{exc}; body: {excerpt(content)}"
            raise ModelProtocolError(url, detail) from None

    async def _exchange(self, url: str, method: str, path: str, body: msgspec.Struct | None
                        ) -> tuple[int, bytes]:
        """Status and body of one request to server `url`, under the total deadline."""
        total = self.settings.total_timeout
        request = self.build_request(method, path, body, url=url)
        exchange = Owned(functools.partial(self._fetch, url, request))
        try:
            async with asyncio.timeout(total):
                answer = await exchange.result()
        except TimeoutError:
            exchange.stop()
            raise ModelTimeout(url, "total", total) from None
        except httpx.HTTPError as exc:
            raise transport_error(url, exc, self.settings.connect_timeout, False) from exc
        except BaseException:
            exchange.stop()
            raise
        assert answer is not None  # only a stopped exchange has no answer
        return answer

    async def _fetch(self, url: str, request: httpx.Request) -> tuple[int, bytes]:
        """Send `request` to server `url` and read its whole body (runs in an owned task)."""
        response = await self.pools.get(url).send(request, stream=True)
        try:
            return response.status_code, await read_body(response, MAX_BODY_BYTES)
        finally:
            await aclose_shielded(self.pools, url, response)

    # -- endpoints --

    async def health(self) -> None:
        """GET /health: returns when the server is up, raises a ModelError otherwise."""
        await self._call("GET", "/health", None, type(None))

    async def models(self) -> list[ModelCard]:
        """GET /v1/models: the models the server serves."""
        return (await self._call("GET", "/v1/models", None, ModelList)).data

    async def model_name(self) -> str:
        """The configured model name, or the server's first model (asked once)."""
        if self._model is None:
            cards = await self.models()
            if not cards:
                raise ModelProtocolError(self.url, "/v1/models lists no model")
            self._model = cards[0].id
        return self._model

    async def tokenize(self, text: str, *, add_special_tokens: bool = True) -> list[int]:
        """POST /tokenize: the server's token ids for `text`."""
        body = TokenizeRequest(await self.model_name(), text, add_special_tokens)
        return (await self._call("POST", "/tokenize", body, TokenizeResponse)).tokens

    async def complete(self, prompt: str | list[int], **options: Any) -> Completion:
        """POST /v1/completions, not streamed: the whole text."""
        sampling = self._sampling(options)
        body = self._completion_request(await self.model_name(), prompt, False, sampling)
        data = await self._call("POST", "/v1/completions", body, CompletionResponse)
        if not data.choices:
            raise ModelProtocolError(self.url, "completion response has no choices")
        choice = data.choices[0]
        return Completion(choice.text, choice.finish_reason, data.usage)

    def stream_complete(self, prompt: str | list[int], **options: Any) -> TextStream:
        """POST /v1/completions streamed: use as `async with client.stream_complete(p) as s`."""
        sampling = self._sampling(options)

        def build(model: str) -> CompletionRequest:
            return self._completion_request(model, prompt, True, sampling)

        return TextStream(self, "/v1/completions", build, completion_piece)

    def stream_candidates(self, prompt: str | list[int], *, n: int = 1, **options: Any
                          ) -> CandidateStream:
        """POST /v1/completions streamed with `n` candidates and their token log-probabilities.

        With n > 1 and temperature 0 the candidates would be identical, so they are sampled at
        temperature 0.3 instead.
        """
        sampling = self._sampling({**options, "n": n, "logprobs": 1})
        if n > 1 and not sampling.get("temperature"):
            sampling["temperature"] = 0.3

        def build(model: str) -> CompletionRequest:
            return self._completion_request(model, prompt, True, sampling)

        return CandidateStream(self, build)

    async def chat(self, messages: Sequence[ChatMessage], **options: Any) -> Completion:
        """POST /v1/chat/completions, not streamed: the assistant's whole reply."""
        sampling = self._sampling(options)
        body = self._chat_request(await self.model_name(), messages, False, sampling)
        data = await self._call("POST", "/v1/chat/completions", body, ChatResponse)
        if not data.choices:
            raise ModelProtocolError(self.url, "chat response has no choices")
        choice = data.choices[0]
        return Completion(choice.message.content or "", choice.finish_reason, data.usage)

    def stream_chat(self, messages: Sequence[ChatMessage], **options: Any) -> TextStream:
        """POST /v1/chat/completions streamed: use as `async with client.stream_chat(m) as s`."""
        sampling = self._sampling(options)

        def build(model: str) -> ChatRequest:
            return self._chat_request(model, messages, True, sampling)

        return TextStream(self, "/v1/chat/completions", build, chat_piece)

    # -- request bodies --

    def _completion_request(self, model: str, prompt: str | list[int], stream: bool,
                            sampling: dict[str, Any]) -> CompletionRequest:
        return CompletionRequest(
            model=model, prompt=prompt, stream=stream,
            stream_options=StreamOptions() if stream else None, priority=self.priority,
            **sampling,
        )

    def _chat_request(self, model: str, messages: Sequence[ChatMessage], stream: bool,
                      sampling: dict[str, Any]) -> ChatRequest:
        return ChatRequest(
            model=model, messages=list(messages), stream=stream,
            stream_options=StreamOptions() if stream else None, priority=self.priority,
            **sampling,
        )

    def _sampling(self, options: dict[str, Any]) -> dict[str, Any]:
        """max_tokens/temperature from settings unless given; stop, seed, ignore_eos passed on."""
        unknown = set(options) - {"max_tokens", "temperature", "stop", "seed", "ignore_eos", "n",
                                  "logprobs"}
        if unknown:
            raise TypeError(f"unknown generation options: {sorted(unknown)}")
        s = self.settings
        out: dict[str, Any] = {"max_tokens": s.max_tokens, "temperature": s.temperature}
        out |= {k: v for k, v in options.items() if v is not None}
        if "stop" in out:
            out["stop"] = list(out["stop"])
        return out

