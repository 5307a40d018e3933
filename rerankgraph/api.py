"""An HTTP rerank service in the request and response shape of Cohere's and Jina's
`/v1/rerank`, over one Reranker whose engine every request shares.

    POST /v1/rerank  {"query": ..., "documents": ["..." | {"text": ...}], "top_n": 3,
                      "return_documents": false}
      -> {"id": ..., "model": ..., "results": [{"index": 2, "relevance_score": 0.91}],
          "usage": {"total_tokens": ...}, "meta": {"method": ..., "llm_calls": ...}}
    GET /health, GET /metrics (Prometheus text), GET /openapi.json

`relevance_score` is the method's own score: a probability for pointwise, a 0-1 rubric
score, ranks turned into descending numbers for the permutation methods. Higher is
better in every case; `results` are sorted by it.

Under load the service answers every request it accepts: at most `max_in_flight`
rerank at once (past it 429 with Retry-After, nothing queued), each within
`request_timeout_s` (504, its engine work cancelled), and `serve` drains on SIGTERM (new
requests 503, those in flight finish within the grace period or are cancelled with
503). A client that hangs up has its engine work cancelled. Every outcome is counted
in /metrics.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import os
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    JsonValue,
    StrictBool,
    StrictStr,
    field_validator,
)
from starlette.requests import Request  # the routes' annotations are read at run time

from rerankgraph.errors import EngineError, InputError, StrictModeError

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable, Iterator

    from fastapi import FastAPI
    from prometheus_client import CollectorRegistry

    from rerankgraph.sdk import Reranker
    from rerankgraph.types import RerankResult

MAX_DOCUMENTS = 1000
MAX_BYTES = 4 * 1024 * 1024
MAX_IN_FLIGHT = 32
REQUEST_TIMEOUT_S = 300.0
SHUTDOWN_GRACE_S = 30.0
# How long an over-limit body may take to arrive while it is read and thrown away, so
# that the client, which sends it whole before reading, gets its 413 and not a reset.
DRAIN_S = 30.0


class DocumentObject(BaseModel):
    """A document as an object (Cohere and Jina accept {"text": ...})."""

    model_config = ConfigDict(extra="allow")
    text: StrictStr = Field(max_length=MAX_BYTES)


class RerankBody(BaseModel):
    model_config = ConfigDict(extra="ignore")  # clients send fields of other services

    # Types as the spec says: 0 is not a boolean, "3" not an integer (nothing coerced).
    # The pattern puts the blank-query rule into the spec. It names the separators
    # \x1c-\x1f and \x85 that Python's str.strip() removes but ECMAScript's \s (which
    # clients and fuzzers read the spec with) does not count, so both read it alike, and
    # NUL, which every text field drops (types.py).
    query: StrictStr = Field(min_length=1, max_length=MAX_BYTES,
                             json_schema_extra={"pattern": r"[^\s\x00\x1c-\x1f\x85]"})
    documents: list[StrictStr | DocumentObject] = Field(min_length=1)
    top_n: int | None = Field(None, ge=1, description="results to return (default: all)")
    return_documents: StrictBool = False
    model: str | None = Field(None, description="ignored: the server runs one model")
    params: dict[str, Any] | None = Field(
        None, description="the method's parameters for this request, over the server's "
                          "(see `rerankgraph methods`); an unknown name is a 422")

    @field_validator("top_n", mode="before")
    @classmethod
    def _top_n_is_a_json_integer(cls, value: object) -> object:
        # JSON Schema's integer: 3 and 3.0, not "3" or true (lax pydantic takes both).
        if isinstance(value, bool | str):
            raise ValueError("Input should be a valid integer")
        return value

    @field_validator("query")
    @classmethod
    def _query_not_blank(cls, value: str) -> str:
        if not value.replace("\x00", "").strip():
            raise ValueError("query is empty or only whitespace")
        return value


class ResultDocument(BaseModel):
    text: str


class RerankHit(BaseModel):
    index: int = Field(description="position of the document in the request")
    relevance_score: float
    document: ResultDocument | None = None


class Usage(BaseModel):
    total_tokens: int


class Meta(BaseModel):
    method: str
    llm_calls: int
    repaired: int
    fallbacks: int
    truncated_docs: int
    truncated_query: bool = Field(False, description="the query was cut to the server's "
                                                     "query token budget")
    dropped_samples: int = Field(0, description="sampled replies left out as unreadable")
    fusion: str = Field("none", description="fusion with the first stage that ran")


class RerankReply(BaseModel):
    id: str
    model: str
    results: list[RerankHit]
    usage: Usage
    meta: Meta


class ErrorReply(BaseModel):
    message: str


class Health(BaseModel):
    status: str
    method: str
    model: str


ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorReply, "description": why} for code, why in (
        (400, "the body is not JSON"), (401, "missing or wrong API key"),
        (413, "request too large"),
        (422, "invalid request, or a prompt that cannot fit the model's context"),
        (429, "too many requests in flight: retry after Retry-After seconds"),
        (503, "the engine failed, or the server is shutting down"),
        (504, "the request ran past the server's timeout and was cancelled"))}


@dataclass(frozen=True)
class ServiceLimits:
    """What one server accepts: per request, and at once."""

    max_documents: int = MAX_DOCUMENTS
    max_bytes: int = MAX_BYTES
    max_in_flight: int = MAX_IN_FLIGHT
    request_timeout_s: float = REQUEST_TIMEOUT_S


class Gate:
    """Admission to reranking: a bound on requests in flight, and the drain after a
    shutdown signal (then nothing new is admitted, and those in flight have until the
    grace period ends)."""

    def __init__(self, max_in_flight: int) -> None:
        self.max_in_flight = max_in_flight
        self.in_flight = 0
        self.draining = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._drained: asyncio.Event | None = None

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        """The loop the app runs on (from its lifespan), for `drain` from a signal."""
        self._loop = loop

    def drain(self, grace_s: float) -> None:
        """Starts the drain; safe from a signal handler or another thread."""
        self.draining = True
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._loop.call_later, grace_s, self._end_grace)

    def _end_grace(self) -> None:
        self._event().set()

    async def grace_over(self) -> None:
        await self._event().wait()

    def _event(self) -> asyncio.Event:
        if self._drained is None:  # made on the loop that waits on it
            self._drained = asyncio.Event()
        return self._drained


class ServiceMetrics:
    """The service's Prometheus series, in a registry of its own (one per app)."""

    def __init__(self, gate: Gate) -> None:
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

        self.registry: CollectorRegistry = CollectorRegistry()
        self.requests = Counter("rerankgraph_requests", "HTTP requests by route and status",
                                ["route", "status"], registry=self.registry)
        in_flight = Gauge("rerankgraph_requests_in_flight", "rerank requests running now",
                          registry=self.registry)
        in_flight.set_function(lambda: gate.in_flight)
        self.latency = Histogram(
            "rerankgraph_request_seconds", "time to answer POST /v1/rerank, any status",
            registry=self.registry,
            buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 40, 80, 160, 320))
        self.tokens = Counter("rerankgraph_tokens", "model tokens of answered requests",
                              ["kind"], registry=self.registry)
        self.calls = Counter("rerankgraph_llm_calls", "LLM calls of answered requests",
                             registry=self.registry)
        self.replies = Counter("rerankgraph_replies", "replies read after a repair, or "
                               "replaced by a fallback", ["status"], registry=self.registry)
        self.truncated = Counter("rerankgraph_truncated", "queries and documents cut to "
                                 "their token budget", ["what"], registry=self.registry)
        self.cancelled = Counter("rerankgraph_cancelled", "requests whose engine work was "
                                 "cancelled, by why", ["reason"], registry=self.registry)

    def count_result(self, result: RerankResult) -> None:
        provenance = result.provenance
        if provenance is None:
            return
        self.tokens.labels("prompt").inc(provenance.prompt_tokens)
        self.tokens.labels("completion").inc(provenance.completion_tokens)
        self.calls.inc(provenance.llm_calls)
        self.replies.labels("repaired").inc(provenance.repaired)
        self.replies.labels("fallback").inc(provenance.fallbacks)
        self.truncated.labels("document").inc(provenance.truncated_docs)
        self.truncated.labels("query").inc(int(provenance.truncated_query))


ROUTES = ("/v1/rerank", "/health", "/metrics", "/openapi.json", "/docs")


class Guard:
    """The ASGI layer in front of every route: the API key, the body limit, and the
    status count. A body over the limit is read to its end and thrown away before the
    413 goes out (unless the client waits on `Expect: 100-continue`), because a server
    that answers and closes while the client is still sending makes the client's TCP
    stack see a reset, not the answer."""

    def __init__(self, app: Any, *, api_key: str | None, max_bytes: int,
                 metrics: ServiceMetrics) -> None:
        self.app = app
        self.expected = api_key.encode() if api_key else None
        self.max_bytes = max_bytes
        self.metrics = metrics

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        route = path if path in ROUTES else "other"
        started = time.perf_counter()

        async def counted_send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                self.metrics.requests.labels(route, str(message["status"])).inc()
                if route == "/v1/rerank":
                    self.metrics.latency.observe(time.perf_counter() - started)
            await send(message)

        headers = {k.decode("latin-1").lower(): v.decode("latin-1")
                   for k, v in scope.get("headers", [])}
        if self.expected is not None and path != "/health" and not self._authorised(headers):
            await _send_json(counted_send, 401,
                             "missing or wrong API key (Authorization: Bearer KEY)")
            return
        declared = headers.get("content-length", "")
        if declared.isdigit() and int(declared) > self.max_bytes:
            if "100-continue" not in headers.get("expect", "").lower():
                await _discard_body(receive)
            await _send_json(counted_send, 413, f"request body of {declared} bytes is over "
                                                f"the limit of {self.max_bytes}", close=True)
            return
        body, size = await _read_body(receive, self.max_bytes)
        if body is None:
            await _send_json(counted_send, 413, f"request body of {size} bytes or more is "
                                                f"over the limit of {self.max_bytes}",
                             close=True)
            return
        await self.app(scope, _replay(body, receive), counted_send)

    def _authorised(self, headers: Mapping[str, str]) -> bool:
        assert self.expected is not None
        given = headers.get("x-api-key", "")
        bearer = headers.get("authorization", "")
        if bearer.lower().startswith("bearer "):
            given = bearer[7:].strip()
        return hmac.compare_digest(given.encode(), self.expected)


async def _send_json(send: Any, status: int, message: str, close: bool = False,
                     headers: Mapping[str, str] | None = None) -> None:
    import json

    payload = json.dumps({"message": message}).encode()
    raw = [(b"content-type", b"application/json"),
           (b"content-length", str(len(payload)).encode())]
    raw += [(k.encode(), v.encode()) for k, v in (headers or {}).items()]
    if close:
        raw.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": payload})


async def _read_body(receive: Any, limit: int) -> tuple[bytes | None, int]:
    """The whole body, or None (and the bytes seen) once it passes `limit`; then the
    rest is read and thrown away."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return b"".join(chunks), size
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            await _discard_body(receive, more=message.get("more_body", False))
            return None, size
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks), size


async def _discard_body(receive: Any, more: bool = True) -> None:
    try:
        async with asyncio.timeout(DRAIN_S):
            while more:
                message = await receive()
                more = message["type"] != "http.disconnect" and message.get("more_body", False)
    except TimeoutError:
        pass  # a client this slow gets its 413 and the connection closed


def _replay(body: bytes, receive: Any) -> Callable[[], Awaitable[dict[str, Any]]]:
    """A receive that gives the app the body read already, then the client's later
    messages (its disconnect)."""
    sent = False

    async def replayed() -> dict[str, Any]:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return dict(await receive())

    return replayed


def build_app(reranker: Reranker, api_key: str | None = None,
              max_documents: int = MAX_DOCUMENTS, max_bytes: int = MAX_BYTES,
              max_in_flight: int = MAX_IN_FLIGHT,
              request_timeout_s: float = REQUEST_TIMEOUT_S) -> FastAPI:
    """The FastAPI app over `reranker`. With `api_key`, every route but /health needs
    `Authorization: Bearer KEY` (or `X-API-Key: KEY`), compared in constant time."""
    from fastapi import FastAPI
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import JSONResponse, Response
    from starlette.exceptions import HTTPException as StarletteHTTPException

    limits = ServiceLimits(max_documents, max_bytes, max_in_flight, request_timeout_s)
    gate = Gate(limits.max_in_flight)
    metrics = ServiceMetrics(gate)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        gate.bind(asyncio.get_running_loop())
        yield

    app = FastAPI(title="rerankgraph", version=_version(), lifespan=lifespan,
                  description=_description(reranker))
    app.state.gate, app.state.metrics, app.state.limits = gate, metrics, limits
    app.add_middleware(Guard, api_key=api_key, max_bytes=limits.max_bytes, metrics=metrics)

    def error(status: int, message: str, headers: Mapping[str, str] | None = None
              ) -> JSONResponse:
        return JSONResponse(status_code=status, content={"message": message}, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"] if p != "body")
        return error(422, f"{where}: {first['msg']}" if where else str(first["msg"]))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return error(exc.status_code, str(exc.detail), exc.headers)  # e.g. 405's Allow

    @app.get("/health", response_model=Health)
    async def health() -> Health:
        return Health(status="ok", method=reranker.spec.name, model=reranker.engine.model_name)

    @app.get("/metrics", response_class=Response)
    async def prometheus() -> Any:
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    @app.post("/v1/rerank", response_model=RerankReply, response_model_exclude_none=True,
              responses=ERRORS)
    async def rerank(body: RerankBody, request: Request) -> Any:
        if len(body.documents) > limits.max_documents:
            return error(422, f"documents: {len(body.documents)} documents is over the limit "
                              f"of {limits.max_documents} per request")
        if gate.draining:
            return error(503, "the server is shutting down; retry on another instance",
                         {"Retry-After": "5", "Connection": "close"})
        if gate.in_flight >= gate.max_in_flight:
            return error(429, f"{gate.in_flight} requests in flight, the server's limit; "
                              "retry later", {"Retry-After": "1"})
        texts = [d if isinstance(d, str) else d.text for d in body.documents]
        if not any(t.replace("\x00", "").strip() for t in texts):
            return error(422, f"documents: all {len(texts)} documents are empty; there is "
                              "nothing to rank")
        gate.in_flight += 1
        try:
            result, cancelled = await _answer_or_cancel(
                reranker.arerank(body.query, texts, params=body.params), request, gate,
                limits.request_timeout_s)
        except InputError as exc:
            return error(422, str(exc))
        except (EngineError, StrictModeError) as exc:
            return error(503, str(exc))
        finally:
            gate.in_flight -= 1
        if cancelled is not None:
            metrics.cancelled.labels(cancelled).inc()
            if cancelled == "timeout":
                return error(504, f"no answer within the server's {limits.request_timeout_s:g} "
                                  "s; the request was cancelled")
            # A client that hung up reads nothing; the status is for the count.
            return error(503 if cancelled == "shutdown" else 499,
                         "the server shut down before the request finished; it was "
                         "cancelled" if cancelled == "shutdown" else "client disconnected",
                         {"Retry-After": "5", "Connection": "close"})
        assert result is not None
        metrics.count_result(result)
        return _reply(result, texts, body)

    def openapi() -> dict[str, Any]:
        # The spec states the server's own document limit (maxItems), so a longer list
        # is a schema violation and gets 422 like any other.
        if app.openapi_schema is None:
            from fastapi.openapi.utils import get_openapi
            spec = get_openapi(title=app.title, version=app.version,
                               description=app.description, routes=app.routes)
            fields = spec["components"]["schemas"]["RerankBody"]["properties"]
            fields["documents"]["maxItems"] = limits.max_documents
            # At least one document with a visible character, as the route checks.
            visible = fields["query"]["pattern"]
            fields["documents"]["contains"] = {"anyOf": [
                {"type": "string", "pattern": visible},
                {"type": "object", "required": ["text"],
                 "properties": {"text": {"type": "string", "pattern": visible}}}]}
            fields["params"] = _params_schema(reranker)
            app.openapi_schema = spec
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app


async def _answer_or_cancel(work: Awaitable[RerankResult], request: Request, gate: Gate,
                            timeout_s: float) -> tuple[RerankResult | None, str | None]:
    """The work's result, or None and why it was cancelled: the timeout, the client
    hanging up, or the end of the shutdown grace period."""
    task = asyncio.ensure_future(work)
    hung_up = asyncio.ensure_future(_client_gone(request))
    grace_over = asyncio.ensure_future(gate.grace_over())
    try:
        done, _ = await asyncio.wait({task, hung_up, grace_over}, timeout=timeout_s,
                                     return_when=asyncio.FIRST_COMPLETED)
    finally:
        hung_up.cancel()
        grace_over.cancel()
    if task in done:
        return task.result(), None
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    return None, ("disconnect" if hung_up in done else
                  "shutdown" if grace_over in done else "timeout")


async def _client_gone(request: Request, every_s: float = 0.2) -> None:
    while not await request.is_disconnected():
        await asyncio.sleep(every_s)


def _reply(result: RerankResult, texts: list[str], body: RerankBody) -> RerankReply:
    position = {f"d{i}": i for i in range(len(texts))}
    provenance = result.provenance
    assert provenance is not None  # a result without error has one
    hits = [RerankHit(index=position[d.doc_id], relevance_score=d.score,
                      document=ResultDocument(text=texts[position[d.doc_id]])
                      if body.return_documents else None)
            for d in result.ranking[:body.top_n]]
    return RerankReply(
        id=str(uuid.uuid4()), model=provenance.model, results=hits,
        usage=Usage(total_tokens=provenance.prompt_tokens + provenance.completion_tokens),
        meta=Meta(method=provenance.method, llm_calls=provenance.llm_calls,
                  repaired=provenance.repaired, fallbacks=provenance.fallbacks,
                  truncated_docs=provenance.truncated_docs,
                  truncated_query=provenance.truncated_query,
                  dropped_samples=provenance.dropped_samples, fusion=provenance.fusion))


def _params_schema(reranker: Reranker) -> dict[str, Any]:
    """The body's `params`: the method's own parameters by name, with their types and
    defaults (nested models are left as plain objects)."""
    schema = reranker.spec.params.model_json_schema()
    schema.pop("$defs", None)
    schema.pop("title", None)
    running = _running_defaults(reranker)
    for name, prop in schema.get("properties", {}).items():
        if "$ref" in str(prop):
            prop.clear()
            prop["type"] = "object"
        if name in running and name.startswith("fusion"):
            prop["description"] = (f"{prop.get('description', '')} (runs here as "
                                   f"{running[name]!r})")
    return {"anyOf": [schema, {"type": "null"}], "default": None,
            "description": RerankBody.model_fields["params"].description}


def _running_defaults(reranker: Reranker) -> dict[str, Any]:
    """The server's parameters as they run on its model: the per-model fusion resolved,
    as `rerankgraph methods --model` lists them and provenance records them."""
    from rerankgraph.registry import running_defaults

    return running_defaults(reranker.spec, reranker.engine.model_name, reranker.params)


def _description(reranker: Reranker) -> str:
    running = _running_defaults(reranker)
    shown = ", ".join(f"{k}={v!r}" for k, v in running.items())
    return (f"Reranking with method {reranker.spec.name!r} on {reranker.engine.model_name}; "
            f"the parameters that run: {shown}")


def serve(app: FastAPI, host: str, port: int, grace_s: float = SHUTDOWN_GRACE_S) -> None:
    """Runs `app` until SIGTERM or SIGINT, then drains: the socket stops accepting, new
    requests on open connections get 503, and those in flight have `grace_s` to finish
    before they are cancelled and answered 503. Returns once every one is answered (the
    signal is not raised again: a caller closes its engine and exits 0)."""
    import uvicorn

    gate: Gate = app.state.gate

    class DrainingServer(uvicorn.Server):
        def handle_exit(self, sig: int, frame: Any) -> None:
            gate.drain(grace_s)
            super().handle_exit(sig, frame)

        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            # uvicorn raises the signal again once it has shut down, which would kill
            # the process before its caller closes the engine: the drain answered it.
            with super().capture_signals():
                yield
                self._captured_signals.clear()

    # uvicorn's own deadline comes after ours, so it never cuts an answer short.
    config = uvicorn.Config(app, host=host, port=port, log_level="warning",
                            timeout_graceful_shutdown=int(grace_s) + 10)
    DrainingServer(config).run()


@dataclass(frozen=True)
class ServiceSettings:
    """`rerankgraph api`: the method and engine every request shares, where to listen,
    and the limits. `api_key` defaults to $RERANKGRAPH_SERVICE_KEY (none: open)."""

    method: str = "pointwise"
    model: str | None = None
    base_url: str | None = None
    index: Path | None = None
    params: Mapping[str, JsonValue] = field(default_factory=dict)
    # a server without vLLM's extensions: a local tokenizer and the context length
    tokenizer: str | None = None
    max_model_len: int | None = None
    host: str = "127.0.0.1"
    port: int = 8080
    api_key: str | None = None
    max_documents: int = MAX_DOCUMENTS
    max_bytes: int = MAX_BYTES
    max_in_flight: int = MAX_IN_FLIGHT
    request_timeout_s: float = REQUEST_TIMEOUT_S
    shutdown_grace_s: float = SHUTDOWN_GRACE_S
    max_query_tokens: int = 256


def run_service(settings: ServiceSettings, log: Callable[[str], None] = lambda _: None,
                while_loading: Callable[[], contextlib.AbstractContextManager[None]] =
                contextlib.nullcontext) -> None:
    """Loads the engine (inside `while_loading()`, which may quiet its output), then
    serves until SIGTERM or Ctrl-C, drained as `serve` says; the engine is closed at the
    end. `log`
    receives notices, one line each. Bad input raises InputError before a model loads."""
    from rerankgraph.sdk import Reranker

    options = {k: v for k, v in (("tokenizer", settings.tokenizer),
                                 ("max_model_len", settings.max_model_len)) if v}
    reranker = Reranker(settings.method, model=settings.model, base_url=settings.base_url,
                        index=settings.index, params=settings.params, engine_options=options,
                        max_query_tokens=settings.max_query_tokens)
    log(f"loading engine ({settings.base_url or settings.model or 'embedded judge'}) ...")
    with while_loading():  # the engine processes keep the log as their stderr
        model_name = reranker.engine.model_name  # load before the first request
    if getattr(reranker.engine, "detected", ""):
        log(reranker.engine.detected)  # type: ignore[attr-defined]
    key = settings.api_key or os.environ.get("RERANKGRAPH_SERVICE_KEY")
    log(f"serving {reranker.spec.name} with {model_name} on http://{settings.host}:"
        f"{settings.port}/v1/rerank{' (API key required)' if key else ''}; Ctrl-C or "
        "SIGTERM stops it")
    try:
        serve(build_app(reranker, key, settings.max_documents, settings.max_bytes,
                        settings.max_in_flight, settings.request_timeout_s),
              settings.host, settings.port, settings.shutdown_grace_s)
    finally:
        reranker.close()


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("rerankgraph")
    except PackageNotFoundError:
        return "0+unknown"
