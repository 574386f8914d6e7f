"""The proxy's ASGI application: OpenAI-compatible `/v1/completions`, `/v1/models`, `/health`.

Each completion request becomes a document (the request's prefix and suffix, `fim.parse_body`)
that goes through `CompletionEngine.complete`, the editor's own path: `prepare_at` builds the
context and its `Hole`, the FIM prompt goes to the configured vLLM (its replicas, routing and
priorities as for the editor), and the structure, naming and boundary stages make the text
that is returned. A streamed request (`"stream": true`) gets that text as server-sent events
once the stages are done (they need the whole candidate). While a request is served the client's
connection is watched: when it goes, the completion is cancelled, which closes the model's
stream, so vLLM aborts the request.

`/stagecoder/stats` shows the engine's counters (as `stagecoder.stats` does in the editor).
Requests are logged one line each (method, path, status, time, sizes), never with code unless
`log_content`. With an API key set, `/v1/*` needs `Authorization: Bearer KEY`; `/health` is
open (load balancers probe it).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import itertools
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

import msgspec
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from analysis.documents.document import Document
from analysis.settings import Settings
from generation.completion.engine import CompletionEngine, ModelFactory
from generation.model.client import ModelClient
from generation.model.errors import ModelError
from lsp_server.proxy.fim import FimRequest, RequestError, parse_body

log = logging.getLogger("stagecoder.proxy")
MAX_BODY_BYTES = 8 << 20  # a completion request larger than this is refused (HTTP 413)
HEALTH_TIMEOUT = 5.0  # seconds for the model server's /health behind /health
AFFINITY_BYTES = 1024  # the start of a request's text that routes it (see `_complete`)


def _error(status: int, message: str, kind: str = "invalid_request_error") -> JSONResponse:
    return JSONResponse({"error": {"message": message, "type": kind, "code": status}}, status)


class Proxy:
    """The proxy's state: settings, the engine (model clients), the API key, request counter."""

    def __init__(self, settings: Settings, factory: ModelFactory, *, api_key: str | None = None,
                 log_content: bool = False) -> None:
        self.settings = settings
        self.engine = CompletionEngine(settings, factory)
        self.api_key = api_key
        self.log_content = log_content
        self._ids = itertools.count(1)
        self._served: dict[str, int] = {}  # completion requests by HTTP status

    def app(self) -> Starlette:
        """The ASGI application."""
        return Starlette(routes=[
            Route("/v1/completions", self.completions, methods=["POST"]),
            Route("/v1/models", self.models, methods=["GET"]),
            Route("/health", self.health, methods=["GET"]),
            Route("/stagecoder/stats", self.stats, methods=["GET"]),
        ], lifespan=self._lifespan)

    @contextlib.asynccontextmanager
    async def _lifespan(self, app: Starlette) -> AsyncIterator[None]:
        yield
        await self.aclose()

    async def aclose(self) -> None:
        """Close the model clients' connection pools."""
        await self.engine.aclose()

    def _refused(self, request: Request) -> JSONResponse | None:
        if self.api_key is None:
            return None
        given = request.headers.get("authorization", "")
        scheme, _, token = given.partition(" ")
        if scheme.lower() == "bearer" and hmac.compare_digest(token.strip().encode(),
                                                             self.api_key.encode()):
            return None
        return _error(401, "missing or wrong API key (Authorization: Bearer KEY)",
                      "authentication_error")

    # -- routes --

    async def completions(self, request: Request) -> Response:
        """POST /v1/completions: the staged completion of a FIM request."""
        number, started = next(self._ids), time.perf_counter()
        refused = self._refused(request)
        if refused is not None:
            self._log(number, request, refused.status_code, started)
            return refused
        raw = await request.body()
        if len(raw) > MAX_BODY_BYTES:
            self._log(number, request, 413, started)
            return _error(413, f"request body over {MAX_BODY_BYTES} bytes")
        try:
            fim = parse_body(raw)
        except RequestError as exc:
            self._log(number, request, 400, started)
            return _error(400, str(exc))
        if await request.is_disconnected():  # it waited in the queue, and its client left
            self._log(number, request, 499, started, fim, note="client disconnected")
            return Response(status_code=499)
        work = asyncio.ensure_future(self._complete(fim))
        watch = asyncio.ensure_future(_disconnect(request))
        try:
            await asyncio.wait({work, watch}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            watch.cancel()
        if not work.done():  # the client left: stop the model (vLLM aborts the request)
            work.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await work
            self._log(number, request, 499, started, fim, note="client disconnected")
            return Response(status_code=499)
        try:
            text = work.result()
        except ModelError as exc:
            self._log(number, request, 502, started, fim, note=str(exc))
            return _error(502, f"the model server failed: {exc}", "upstream_error")
        response = self._answer(fim, text, await self._model_name(fim))
        self._log(number, request, 200, started, fim, text)
        return response

    async def models(self, request: Request) -> Response:
        """GET /v1/models: the models of the model server behind the proxy."""
        refused = self._refused(request)
        if refused is not None:
            return refused
        client = self._client()
        try:
            if client is None:
                raise ModelError("no model client")
            cards = await client.models()
        except ModelError as exc:
            name = self.settings.completion.model
            if not name:
                return _error(502, f"the model server failed: {exc}", "upstream_error")
            ids = [name]
        else:
            ids = [card.id for card in cards]
        return JSONResponse({"object": "list", "data": [
            {"id": i, "object": "model", "created": 0, "owned_by": "stagecoder"} for i in ids]})

    async def health(self, request: Request) -> Response:
        """GET /health: 200 when a model server behind the proxy answers its /health."""
        client = self._client()
        if client is None:
            return JSONResponse({"status": "ok"})
        try:
            async with asyncio.timeout(HEALTH_TIMEOUT):
                await client.health()
        except (ModelError, TimeoutError) as exc:
            return JSONResponse({"status": "unavailable", "reason": str(exc) or "timeout"}, 503)
        return JSONResponse({"status": "ok", "replicas": client.replicas.stats()})

    async def stats(self, request: Request) -> Response:
        """GET /stagecoder/stats: the engine's counters (`stagecoder.stats` in the editor):
        server-side times, each replica's state and answers, model connections."""
        refused = self._refused(request)
        if refused is not None:
            return refused
        return JSONResponse({**self.engine.stats(), "requests": self._served})

    # -- helpers --

    def _client(self) -> ModelClient | None:
        client = getattr(self.engine.model, "client", None)
        return client if isinstance(client, ModelClient) else None

    async def _model_name(self, fim: FimRequest) -> str:
        client = self._client()
        if client is not None:
            with contextlib.suppress(ModelError):
                return await client.model_name()
        return fim.model or self.settings.completion.model or "stagecoder"

    async def _complete(self, fim: FimRequest) -> str:
        """The staged text for the request ("" when the stages keep nothing)."""
        doc = Document(f"file:///{fim.path.lstrip('/')}", fim.prefix + fim.suffix,
                       fim.language, 1, path=fim.path)
        offset = len(fim.prefix.encode("utf-8", "surrogatepass"))
        # Requests name no document: the start of its text stands for it, so that one file's
        # keystrokes go to one replica (whose prefix cache holds that start).
        start = doc.source[:AFFINITY_BYTES]
        key = hashlib.blake2b(start, digest_size=8).hexdigest()
        outcome = await self.engine.complete(doc, offset, use_cache=False, affinity=key)
        if outcome.error is not None:
            raise outcome.error
        return outcome.text or ""

    def _answer(self, fim: FimRequest, text: str, model: str) -> Response:
        ident = f"cmpl-stagecoder-{time.time_ns():x}"
        head: dict[str, Any] = {"id": ident, "object": "text_completion",
                                "created": int(time.time()), "model": model}
        if not fim.stream:
            return JSONResponse({**head, "choices": [
                {"index": 0, "text": text, "logprobs": None, "finish_reason": "stop"}]})
        events = [
            {**head, "choices": [{"index": 0, "text": text, "logprobs": None,
                                  "finish_reason": None}]},
            {**head, "choices": [{"index": 0, "text": "", "logprobs": None,
                                  "finish_reason": "stop"}]},
        ]
        body = b"".join(b"data: " + msgspec.json.encode(e) + b"\n\n" for e in events)
        return Response(body + b"data: [DONE]\n\n", media_type="text/event-stream",
                        headers={"cache-control": "no-cache"})

    def _log(self, number: int, request: Request, status: int, started: float,
             fim: FimRequest | None = None, text: str | None = None, note: str = "") -> None:
        ms = (time.perf_counter() - started) * 1e3
        self._served[str(status)] = self._served.get(str(status), 0) + 1
        parts = [f"#{number} {request.method} {request.url.path} {status} {ms:.1f} ms"]
        if fim is not None:
            parts.append(f"language={fim.language or 'text'} stream={int(fim.stream)} "
                         f"prefix_chars={len(fim.prefix)} suffix_chars={len(fim.suffix)}")
        if text is not None:
            parts.append(f"text_chars={len(text)}")
        if note:
            parts.append(note)
        if self.log_content and fim is not None:
            parts.append(f"prefix_tail={fim.prefix[-200:]!r} suffix_head={fim.suffix[:200]!r} "
                         f"text={text!r}")
        log.info(" ".join(parts))


async def _disconnect(request: Request) -> None:
    """Return when the client closes its connection (the body has been read already)."""
    while True:
        message = await request.receive()
        if message["type"] == "http.disconnect":
            return
