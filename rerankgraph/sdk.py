"""The Python SDK: `Reranker(...).rerank(query, docs)` and friends."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from pydantic import BaseModel, ValidationError

from rerankgraph.context import RerankContext
from rerankgraph.errors import EngineError, InputError, StrictModeError
from rerankgraph.registry import get_method
from rerankgraph.serving.base import Engine
from rerankgraph.serving.factory import build_engine
from rerankgraph.types import (
    Candidate,
    Judgment,
    ParseStatus,
    Provenance,
    Query,
    RerankRequest,
    RerankResult,
    ScoredDoc,
)

DocLike = str | Candidate | dict[str, Any]
RequestLike = RerankRequest | tuple[str | Query, Sequence[DocLike]]


def make_request(query: str | Query, docs: Sequence[DocLike], query_id: str = "q0"
                 ) -> RerankRequest:
    """Validates one query and its docs (strings get ids d0, d1, ...). Raises InputError
    with a one-line message naming the bad field."""
    try:
        query_record = query if isinstance(query, Query) else Query(id=query_id, text=query)
        candidates = tuple(_candidate(doc, i) for i, doc in enumerate(docs))
        return RerankRequest(query=query_record, candidates=candidates)
    except ValidationError as exc:
        error = exc.errors()[0]
        where = ".".join(str(p) for p in error["loc"])
        message = str(error.get("ctx", {}).get("error") or error["msg"])
        raise InputError(f"{where + ': ' if where else ''}{message}") from None


def _candidate(doc: DocLike, index: int) -> Candidate:
    if isinstance(doc, Candidate):
        return doc
    if isinstance(doc, str):
        return Candidate(doc_id=f"d{index}", text=doc, rank=index + 1)
    if isinstance(doc, dict):
        return Candidate.model_validate(doc)
    raise InputError(f"docs[{index}] is a {type(doc).__name__}; pass str, Candidate or dict")


def summarize(method: str, model: str, judgments: Sequence[Judgment], wall_time_s: float,
              simulated: bool = False) -> Provenance:
    """Provenance with every call, token, repair and fallback counted."""
    return Provenance(
        method=method, model=model, llm_calls=len(judgments),
        prompt_tokens=sum(j.prompt_tokens for j in judgments),
        completion_tokens=sum(j.completion_tokens for j in judgments),
        wall_time_s=round(wall_time_s, 4),
        repaired=sum(j.status == ParseStatus.REPAIRED for j in judgments),
        fallbacks=sum(j.status == ParseStatus.FALLBACK for j in judgments),
        truncated_docs=sum(j.truncated_docs for j in judgments),
        cached_calls=sum(j.cached for j in judgments),
        simulated=simulated, judgments=tuple(judgments))


class Reranker:
    """Reranks candidates with a registered method on a vLLM engine.

    Give one of: `engine` (a built Engine, shared and not closed by this object),
    `base_url` (a running vLLM server) or `model` (a local HF folder or hub id, loaded
    in-process; default: the embedded SmolLM2-135M judge). `params` are the method's
    parameters (see `rerankgraph methods`). With `strict=True` any repaired or
    fallback reply fails the query instead of being counted.
    """

    def __init__(self, method: str = "pointwise", *, model: str | None = None,
                 base_url: str | None = None, engine: Engine | None = None,
                 api_key: str | None = None, params: dict[str, Any] | BaseModel | None = None,
                 strict: bool = False, seed: int = 0, max_concurrency: int = 64,
                 engine_options: dict[str, Any] | None = None) -> None:
        if sum(x is not None for x in (model, base_url, engine)) > 1:
            raise InputError("give only one of model, base_url and engine")
        self.spec = get_method(method)
        self.params = self.spec.make_params(params)
        self.strict = strict
        self.seed = seed
        self._graph = self.spec.build_graph()
        self._owns_engine = engine is None
        self._engine = engine
        self._engine_factory: Callable[[], Engine] = lambda: build_engine(
            model, base_url, api_key, max_concurrency, engine_options)

    @property
    def engine(self) -> Engine:
        """The engine, built on first use."""
        if self._engine is None:
            self._engine = self._engine_factory()
        return self._engine

    @property
    def graph(self) -> Any:
        """The compiled LangGraph graph of this method."""
        return self._graph

    def context(self) -> RerankContext:
        return RerankContext(engine=self.engine, params=self.params, seed=self.seed,
                             strict=self.strict)

    def rerank(self, query: str | Query, docs: Sequence[DocLike], query_id: str = "q0"
               ) -> RerankResult:
        """Reranks docs for one query. Bad input raises InputError; an engine failure
        raises EngineError, a strict-mode violation StrictModeError (rerank_batch returns
        both as results with `error` set instead)."""
        return asyncio.run(self.arerank(query, docs, query_id))

    async def arerank(self, query: str | Query, docs: Sequence[DocLike],
                      query_id: str = "q0") -> RerankResult:
        result = await self._run(make_request(query, docs, query_id), self.context())
        if result.error is not None:
            raise (StrictModeError if result.error_kind == "strict" else EngineError)(result.error)
        return result

    def rerank_batch(self, requests: Iterable[RequestLike],
                     on_result: Callable[[RerankResult], None] | None = None
                     ) -> list[RerankResult]:
        """Reranks many queries concurrently. A query whose engine calls fail comes back
        with `error` set and no ranking; the others are unaffected."""
        return asyncio.run(self.arerank_batch(requests, on_result))

    async def arerank_batch(self, requests: Iterable[RequestLike],
                            on_result: Callable[[RerankResult], None] | None = None
                            ) -> list[RerankResult]:
        checked = [r if isinstance(r, RerankRequest) else make_request(r[0], r[1])
                   for r in requests]
        context = self.context()

        async def one(request: RerankRequest) -> RerankResult:
            result = await self._run(request, context)
            if on_result is not None:
                on_result(result)
            return result

        return list(await asyncio.gather(*(one(r) for r in checked)))

    async def _run(self, request: RerankRequest, context: RerankContext) -> RerankResult:
        started = time.perf_counter()
        try:
            state = await self._graph.ainvoke(
                {"query": request.query, "candidates": list(request.candidates)},
                context=context, config={"recursion_limit": 10_000})
        except EngineError as exc:
            return RerankResult(query_id=request.query.id, error=str(exc), error_kind="engine")
        judgments = state.get("judgments", [])
        provenance = summarize(self.spec.name, context.engine.model_name, judgments,
                               time.perf_counter() - started, context.engine.simulated)
        if self.strict and (provenance.repaired or provenance.fallbacks):
            # A failed query, not a crash: the rest of a batch goes on.
            return RerankResult(
                query_id=request.query.id, provenance=provenance, error_kind="strict",
                error=f"{provenance.repaired} repaired and {provenance.fallbacks} fallback "
                      "replies under --strict")
        ranking: list[ScoredDoc] = state["ranking"]
        return RerankResult(query_id=request.query.id, ranking=tuple(ranking),
                            provenance=provenance)

    def close(self) -> None:
        if self._owns_engine and self._engine is not None:
            self._engine.close()
            self._engine = None

    def __enter__(self) -> Reranker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


_default: dict[str, Reranker] = {}


def rerank(query: str, docs: Sequence[DocLike], method: str = "pointwise", **options: Any
           ) -> RerankResult:
    """One-call reranking with a Reranker kept per method for later calls."""
    key = f"{method}:{sorted(options.items())!r}"
    if key not in _default:
        _default[key] = Reranker(method, **options)
    return _default[key].rerank(query, docs)
