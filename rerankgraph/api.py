"""An HTTP rerank service in the request and response shape of Cohere's and Jina's
`/v1/rerank`, over one Reranker whose engine every request shares.

    POST /v1/rerank  {"query": ..., "documents": ["..." | {"text": ...}], "top_n": 3,
                      "return_documents": false}
      -> {"id": ..., "model": ..., "results": [{"index": 2, "relevance_score": 0.91}],
          "usage": {"total_tokens": ...}, "meta": {"method": ..., "llm_calls": ...}}
    GET /health, GET /openapi.json

`relevance_score` is the method's own score: a probability for pointwise, a 0-1 rubric
score, ranks turned into descending numbers for the permutation methods. Higher is
better in every case; `results` are sorted by it.
"""

from __future__ import annotations

import contextlib
import hmac
import os
import uuid
from collections.abc import Callable, Mapping
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

from rerankgraph.errors import EngineError, InputError, StrictModeError

if TYPE_CHECKING:
    from fastapi import FastAPI

    from rerankgraph.sdk import Reranker

MAX_DOCUMENTS = 1000
MAX_BYTES = 4 * 1024 * 1024


class DocumentObject(BaseModel):
    """A document as an object (Cohere and Jina accept {"text": ...})."""

    model_config = ConfigDict(extra="allow")
    text: StrictStr = Field(max_length=MAX_BYTES)


class RerankBody(BaseModel):
    model_config = ConfigDict(extra="ignore")  # clients send fields of other services

    # Types as the spec says: 0 is not a boolean, "3" not an integer (nothing coerced).
    # The pattern puts the blank-query rule into the spec. It names the separators
    # \x1c-\x1f and \x85 that Python's str.strip() removes but ECMAScript's \s (which
    # clients and fuzzers read the spec with) does not count, so both read it alike.
    query: StrictStr = Field(min_length=1, max_length=MAX_BYTES,
                             json_schema_extra={"pattern": r"[^\s\x1c-\x1f\x85]"})
    documents: list[StrictStr | DocumentObject] = Field(min_length=1)
    top_n: int | None = Field(None, ge=1, description="results to return (default: all)")
    return_documents: StrictBool = False
    model: str | None = Field(None, description="ignored: the server runs one model")

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
        if not value.strip():
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
        (422, "invalid request"), (503, "the engine failed"))}


def build_app(reranker: Reranker, api_key: str | None = None,
              max_documents: int = MAX_DOCUMENTS, max_bytes: int = MAX_BYTES) -> FastAPI:
    """The FastAPI app over `reranker`. With `api_key`, every route but /health needs
    `Authorization: Bearer KEY` (or `X-API-Key: KEY`), compared in constant time."""
    from fastapi import FastAPI, Request
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import JSONResponse
    from starlette.exceptions import HTTPException as StarletteHTTPException

    app = FastAPI(title="rerankgraph", version=_version(),
                  description=f"Reranking with method {reranker.spec.name!r}")
    expected = api_key.encode() if api_key else None

    def error(status: int, message: str, headers: Mapping[str, str] | None = None
              ) -> JSONResponse:
        return JSONResponse(status_code=status, content={"message": message}, headers=headers)

    @app.middleware("http")
    async def guard(request: Request, call_next: Any) -> Any:
        if expected is not None and request.url.path not in ("/health",):
            given = request.headers.get("x-api-key") or ""
            bearer = request.headers.get("authorization", "")
            if bearer.lower().startswith("bearer "):
                given = bearer[7:].strip()
            if not hmac.compare_digest(given.encode(), expected):
                return error(401, "missing or wrong API key (Authorization: Bearer KEY)")
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > max_bytes:
            return error(413, f"request body of {declared} bytes is over the limit of "
                              f"{max_bytes}")
        body = await request.body()
        if len(body) > max_bytes:
            return error(413, f"request body of {len(body)} bytes is over the limit of "
                              f"{max_bytes}")
        return await call_next(request)

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

    @app.post("/v1/rerank", response_model=RerankReply, response_model_exclude_none=True,
              responses=ERRORS)
    async def rerank(body: RerankBody) -> Any:
        if len(body.documents) > max_documents:
            return error(422, f"documents: {len(body.documents)} documents is over the limit "
                              f"of {max_documents} per request")
        texts = [d if isinstance(d, str) else d.text for d in body.documents]
        try:
            result = await reranker.arerank(body.query, texts)
        except InputError as exc:
            return error(422, str(exc))
        except (EngineError, StrictModeError) as exc:
            return error(503, str(exc))
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
                      dropped_samples=provenance.dropped_samples, fusion=provenance.fusion))

    def openapi() -> dict[str, Any]:
        # The spec states the server's own document limit (maxItems), so a longer list
        # is a schema violation and gets 422 like any other.
        if app.openapi_schema is None:
            from fastapi.openapi.utils import get_openapi
            spec = get_openapi(title=app.title, version=app.version,
                               description=app.description, routes=app.routes)
            body = spec["components"]["schemas"]["RerankBody"]["properties"]["documents"]
            body["maxItems"] = max_documents
            app.openapi_schema = spec
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app


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


def run_service(settings: ServiceSettings, log: Callable[[str], None] = lambda _: None,
                while_loading: Callable[[], contextlib.AbstractContextManager[None]] =
                contextlib.nullcontext) -> None:
    """Loads the engine (inside `while_loading()`, which may quiet its output), then
    serves until uvicorn stops (Ctrl-C); the engine is closed at the end. `log`
    receives notices, one line each. Bad input raises InputError before a model loads."""
    import uvicorn

    from rerankgraph.sdk import Reranker

    options = {k: v for k, v in (("tokenizer", settings.tokenizer),
                                 ("max_model_len", settings.max_model_len)) if v}
    reranker = Reranker(settings.method, model=settings.model, base_url=settings.base_url,
                        index=settings.index, params=settings.params, engine_options=options)
    log(f"loading engine ({settings.base_url or settings.model or 'embedded judge'}) ...")
    with while_loading():  # the engine processes keep the log as their stderr
        model_name = reranker.engine.model_name  # load before the first request
    if getattr(reranker.engine, "detected", ""):
        log(reranker.engine.detected)  # type: ignore[attr-defined]
    key = settings.api_key or os.environ.get("RERANKGRAPH_SERVICE_KEY")
    log(f"serving {reranker.spec.name} with {model_name} on http://{settings.host}:"
        f"{settings.port}/v1/rerank{' (API key required)' if key else ''}; Ctrl-C stops it")
    try:
        uvicorn.run(build_app(reranker, key, settings.max_documents, settings.max_bytes),
                    host=settings.host, port=settings.port, log_level="warning")
    finally:
        reranker.close()


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("rerankgraph")
    except PackageNotFoundError:
        return "0+unknown"
