"""The Python SDK: `Reranker(...).rerank(query, docs)` and friends."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Coroutine, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Any, TypedDict, TypeVar

from pydantic import BaseModel, ValidationError

from rerankgraph.context import RerankContext
from rerankgraph.errors import EngineError, InputError, PromptTooLongError, StrictModeError
from rerankgraph.index.corpus import CorpusIndex
from rerankgraph.injection import injection_flag
from rerankgraph.registry import get_method
from rerankgraph.retrievers.base import Retriever, asearch, check_positive, document_reader
from rerankgraph.retrievers.fusion import FOUND_BY, found_by_metadata, fuse_with_sightings
from rerankgraph.retrievers.hybrid import HybridRetriever
from rerankgraph.serving.base import Engine, NoEngine
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
    SearchRequest,
)

DocLike = str | Candidate | dict[str, Any]
RequestLike = RerankRequest | SearchRequest | tuple[str | Query, Sequence[DocLike]]


T = TypeVar("T")

# Queries are cut like passages: a 100 KB query would otherwise overflow every prompt.
# 256 tokens keep the longest reasoning-style queries whole (BRIGHT's run to about 200).
DEFAULT_MAX_QUERY_TOKENS = 256


class GraphInput(TypedDict):
    """What every method's graph is invoked with: the query and its candidates, cut to
    the depth asked for (a run's top `depth`, or the retriever's); empty for a search
    method, which reaches the corpus through its context."""

    query: Query
    candidates: list[Candidate]


def run_sync(coro: Coroutine[Any, Any, T]) -> T:
    """Runs a coroutine to its end from sync code. Inside a running event loop (Jupyter,
    an async framework calling a sync API such as LangChain's `invoke`) asyncio.run
    would refuse, so it runs on a fresh loop in a worker thread instead."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="rerankgraph") as pool:
        return pool.submit(asyncio.run, coro).result()


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


def left_as_given(judgment: Judgment) -> bool:
    """Whether a readable reply kept the order its passages were shown in: a
    permutation of them that is the identity, the first of a set picked, the first of a
    pair preferred (a probability above 0.5 that it wins), or scores that never rise
    down the group. Replies of other shapes (one passage, a text) keep no order and
    count as changed."""
    shown, parsed = list(judgment.doc_ids), judgment.parsed
    if judgment.status == ParseStatus.FALLBACK or len(shown) < 2:
        return False
    if isinstance(parsed, float) and len(shown) == 2:
        return parsed > 0.5
    if isinstance(parsed, list | tuple) and sorted(map(str, parsed)) == sorted(shown):
        return list(parsed) == shown
    if isinstance(parsed, str) and parsed in shown:
        return parsed == shown[0]
    if (isinstance(parsed, dict) and parsed and set(parsed) <= set(shown)
            and all(isinstance(v, int | float) for v in parsed.values())):
        scores = [parsed[d] for d in shown if d in parsed]
        return all(a >= b for a, b in zip(scores, scores[1:], strict=False))
    return False


def summarize(method: str, model: str, judgments: Sequence[Judgment], wall_time_s: float,
              simulated: bool = False, candidates_from: str = "given",
              flagged_docs: Sequence[str] = (), trace: Sequence[dict[str, Any]] = (),
              unscored_docs: Sequence[str] = (), fusion: str = "none",
              truncated_query: bool = False) -> Provenance:
    """Provenance with every call, token, repair, fallback and unchanged order counted."""
    return Provenance(
        method=method, model=model, llm_calls=sum(j.calls for j in judgments),
        prompt_tokens=sum(j.prompt_tokens for j in judgments),
        completion_tokens=sum(j.completion_tokens for j in judgments),
        wall_time_s=round(wall_time_s, 4),
        repaired=sum(j.status == ParseStatus.REPAIRED for j in judgments),
        fallbacks=sum(j.status == ParseStatus.FALLBACK for j in judgments),
        truncated_docs=sum(j.truncated_docs for j in judgments),
        truncated_query=truncated_query, cached_calls=sum(j.cached for j in judgments),
        dropped_samples=sum(j.dropped_samples for j in judgments), fusion=fusion,
        unchanged=sum(left_as_given(j) for j in judgments),
        unscored_docs=tuple(unscored_docs),
        simulated=simulated, candidates_from=candidates_from,
        flagged_docs=tuple(flagged_docs), trace=tuple(trace), judgments=tuple(judgments))


class Reranker:
    """Reranks candidates, or searches a corpus, with a registered method on a vLLM engine.

    Give one of: `engine` (a built Engine, shared and not closed by this object),
    `base_url` (a running vLLM server) or `model` (a local HF folder or hub id, loaded
    in-process; default: the embedded SmolLM2-135M judge). `params` are the method's
    parameters (see `rerankgraph methods`). With `strict=True` any repaired or
    fallback reply fails the query instead of being counted. A query longer than
    `max_query_tokens` of the model's tokenizer is cut to it before the method runs
    (after retrieval, which reads it whole), and provenance says so.

    `index` (a folder from `rerankgraph index build`, or a CorpusIndex) and `retriever`
    ("bm25", "dense", "hybrid" over the index, or any object with the Retriever
    protocol) give the method a corpus: a search method reads it directly; a rerank
    method retrieves its top `depth` candidates first when it is given no docs.
    """

    def __init__(self, method: str = "pointwise", *, model: str | None = None,
                 base_url: str | None = None, engine: Engine | None = None,
                 api_key: str | None = None,
                 params: Mapping[str, object] | BaseModel | None = None,
                 strict: bool = False, seed: int = 0, max_concurrency: int = 64,
                 engine_options: dict[str, Any] | None = None,
                 index: str | Path | CorpusIndex | None = None,
                 retriever: str | Retriever | Sequence[str | Retriever] | None = None,
                 depth: int = 100, max_query_tokens: int = DEFAULT_MAX_QUERY_TOKENS) -> None:
        if sum(x is not None for x in (model, base_url, engine)) > 1:
            raise InputError("give only one of model, base_url and engine")
        self.spec = get_method(method)
        self.params = self.spec.make_params(params)
        self.strict = strict
        self.seed = seed
        self.depth = check_positive(depth, "depth")
        self.max_query_tokens = check_positive(max_query_tokens, "max_query_tokens")
        self.index = _open_index(index)
        self.retrievers = _choose_retrievers(self.index, retriever)
        # A search method reads one retriever: several are fused into a hybrid.
        self.retriever: Retriever | None = (
            self.retrievers[0] if len(self.retrievers) == 1 else
            HybridRetriever(self.retrievers, depth=depth) if self.retrievers else None)
        if self.spec.kind == "search" and self.retriever is None and not self.spec.reranks:
            raise InputError(f"method {self.spec.name!r} searches a corpus: give index= (a "
                             "folder from `rerankgraph index build`) or retriever=")
        self._graph = self.spec.graph(self.params, get_method)
        self._owns_engine = engine is None
        self._engine = engine
        self._engine_factory: Callable[[], Engine] = lambda: build_engine(
            model, base_url, api_key, max_concurrency, engine_options)

    @property
    def engine(self) -> Engine:
        """The engine, built on first use."""
        if self._engine is None:
            # A method that makes no LLM call (retrieve) never loads a model.
            self._engine = self._engine_factory() if self.spec.uses_engine else NoEngine()
        return self._engine

    @property
    def graph(self) -> Any:
        """The compiled LangGraph graph of this method."""
        return self._graph

    def context(self, params: BaseModel | None = None) -> RerankContext:
        return RerankContext(engine=self.engine, params=params or self.params, seed=self.seed,
                             strict=self.strict, retriever=self.retriever, index=self.index,
                             resolve_method=get_method)

    # -- search: the corpus through the index or retriever ----------------------------
    def search(self, query: str | Query, k: int = 100, query_id: str = "q0") -> RerankResult:
        """The top `k` documents of the corpus for `query`: a search method's own
        ranking, or a rerank method's ranking of its top `depth` retrieved candidates.
        Raises like `rerank`."""
        return run_sync(self.asearch(query, k, query_id))

    async def asearch(self, query: str | Query, k: int = 100, query_id: str = "q0"
                      ) -> RerankResult:
        return _raised(await self._run(make_search_request(query, k, query_id), self.context()))

    def search_batch(self, queries: Mapping[str, str] | Iterable[SearchRequest], k: int = 100,
                     on_result: Callable[[RerankResult], None] | None = None
                     ) -> list[RerankResult]:
        """Searches many queries ({query_id: text}, or SearchRequest records)
        concurrently; a failed query comes back with `error` set."""
        requests = ([make_search_request(text, k, qid) for qid, text in queries.items()]
                    if isinstance(queries, Mapping) else list(queries))
        return self.rerank_batch(requests, on_result)

    async def _retrieve_candidates(self, request: SearchRequest) -> list[Candidate]:
        """A rerank method's candidates: the retriever's top `depth` (or the RRF of
        several retrievers' runs), with their texts.
        Empty when no document shares a term with the query (counted short, not raised,
        so the rest of a batch goes on)."""
        if self.retriever is None:
            raise InputError(f"method {self.spec.name!r} needs candidates: pass docs, or "
                             "give the Reranker an index= to retrieve them from")
        document = document_reader([self.index, *self.retrievers])
        queries = {request.query.id: request.query.text}
        found = await asyncio.gather(*(asearch(r, queries, self.depth)
                                       for r in self.retrievers))
        lists = {_name(r): hits.get(request.query.id, []) for r, hits in
                 zip(self.retrievers, found, strict=True)}
        # Several retrievers: their runs fused by RRF, each candidate with its sightings
        # (which a fusing method reads from one list too).
        hits, found_by = (fuse_with_sightings(lists) if len(lists) > 1
                          else (next(iter(lists.values())),
                                found_by_metadata(lists) if self.spec.fuses else {}))
        candidates = []
        for rank, (doc_id, score) in enumerate(hits[:self.depth], start=1):
            title, text = document(doc_id)
            metadata = {FOUND_BY: found_by[doc_id]} if found_by else {}
            candidates.append(Candidate(doc_id=doc_id, text=text, title=title or None,
                                        score=score, rank=rank, metadata=metadata))
        return candidates

    def rerank(self, query: str | Query, docs: Sequence[DocLike], query_id: str = "q0"
               ) -> RerankResult:
        """Reranks docs for one query. Bad input raises InputError; an engine failure
        raises EngineError, a strict-mode violation StrictModeError (rerank_batch returns
        both as results with `error` set instead)."""
        return run_sync(self.arerank(query, docs, query_id))

    async def arerank(self, query: str | Query, docs: Sequence[DocLike],
                      query_id: str = "q0", params: dict[str, Any] | None = None
                      ) -> RerankResult:
        """`params` override the Reranker's own for this call (a method whose graph
        is shaped by its parameters, a cascade, takes none)."""
        context = self.context(self._params_for_call(params) if params else None)
        return _raised(await self._run(make_request(query, docs, query_id), context))

    def _params_for_call(self, params: dict[str, Any]) -> BaseModel:
        if self.spec.shaped_by_params:
            raise InputError(f"method {self.spec.name!r} is built from its parameters; "
                             "give them when the Reranker is made, not per call")
        return self.spec.make_params({**self.params.model_dump(exclude_unset=True), **params})

    def rerank_batch(self, requests: Iterable[RequestLike],
                     on_result: Callable[[RerankResult], None] | None = None
                     ) -> list[RerankResult]:
        """Reranks many queries concurrently. A query whose engine calls fail comes back
        with `error` set and no ranking; the others are unaffected."""
        return run_sync(self.arerank_batch(requests, on_result))

    async def arerank_batch(self, requests: Iterable[RequestLike],
                            on_result: Callable[[RerankResult], None] | None = None
                            ) -> list[RerankResult]:
        checked = [r if isinstance(r, RerankRequest | SearchRequest)
                   else make_request(r[0], r[1]) for r in requests]
        context = self.context()

        async def one(request: RerankRequest | SearchRequest) -> RerankResult:
            result = await self._run(request, context)
            if on_result is not None:
                on_result(result)
            return result

        return list(await asyncio.gather(*(one(r) for r in checked)))

    async def _run(self, request: RerankRequest | SearchRequest, context: RerankContext
                   ) -> RerankResult:
        started = time.perf_counter()
        k: int | None = None
        source = "given"
        if isinstance(request, SearchRequest):
            k = request.k
            if self.spec.kind == "search":
                source = f"method:{self.spec.name}({_name(self.retriever)})"
                if "k" in type(context.params).model_fields:
                    context = replace(context, params=context.params.model_copy(update={"k": k}))
                graph_input = GraphInput(query=request.query, candidates=[])
            else:
                source = f"retriever:{_name(self.retriever)}"
                graph_input = GraphInput(query=request.query,
                                         candidates=await self._retrieve_candidates(request))
        else:
            source = request.candidates_from
            graph_input = GraphInput(query=request.query, candidates=list(request.candidates))
        truncated_query = False
        try:
            if self.spec.uses_engine:
                graph_input["query"], truncated_query = await fit_query(
                    context.engine, request.query, self.max_query_tokens)
            if graph_input["candidates"] or self.spec.kind == "search":
                state = await self._graph.ainvoke(graph_input, context=context,
                                                  config={"recursion_limit": 10_000})
            else:  # the retriever found nothing: an empty ranking, counted short
                state = {"judgments": [], "ranking": []}
        except EngineError as exc:
            return RerankResult(query_id=request.query.id, error=str(exc), error_kind="engine")
        except PromptTooLongError as exc:  # this query's fault: the rest of a batch goes on
            return RerankResult(query_id=request.query.id, error=str(exc), error_kind="input")
        judgments = state.get("judgments", [])
        flagged = [c.doc_id for c in graph_input["candidates"] if injection_flag(c.full_text)]
        provenance = summarize(self.spec.name, context.engine.model_name, judgments,
                               time.perf_counter() - started, context.engine.simulated,
                               candidates_from=source, flagged_docs=flagged,
                               trace=state.get("trace", []),
                               unscored_docs=state.get("unscored", []),
                               fusion=state.get("fusion", "none"),
                               truncated_query=truncated_query)
        if self.strict and (provenance.repaired or provenance.fallbacks):
            # A failed query, not a crash: the rest of a batch goes on.
            return RerankResult(
                query_id=request.query.id, provenance=provenance, error_kind="strict",
                error=f"{provenance.repaired} repaired and {provenance.fallbacks} fallback "
                      "replies under --strict")
        ranking: list[ScoredDoc] = state["ranking"]
        return RerankResult(query_id=request.query.id, ranking=tuple(ranking[:k]),
                            provenance=provenance)

    def close(self) -> None:
        if self._owns_engine and self._engine is not None:
            self._engine.close()
            self._engine = None

    def __enter__(self) -> Reranker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _raised(result: RerankResult) -> RerankResult:
    """The result of a one-query call, or its error raised as its kind."""
    if result.error is None:
        return result
    kind = {"strict": StrictModeError, "input": PromptTooLongError}.get(
        result.error_kind or "", EngineError)
    raise kind(result.error)


async def fit_query(engine: Engine, query: Query, max_tokens: int) -> tuple[Query, bool]:
    """The query cut to `max_tokens` of the engine's tokenizer, and whether it was cut."""
    ((text, cut),) = await engine.fit_texts([query.text], max_tokens)
    return (query.model_copy(update={"text": text}) if cut else query), cut


def draw_mermaid(method: str, params: Mapping[str, object] | None = None) -> str:
    """The Mermaid diagram of a method's compiled graph (LangGraph's own drawing); a
    method shaped by its parameters (a cascade) is drawn for `params`."""
    return str(get_method(method).graph(params, get_method).get_graph().draw_mermaid())


def make_search_request(query: str | Query, k: int = 100, query_id: str = "q0"
                        ) -> SearchRequest:
    """Validates one search query; bad input raises a one-line InputError."""
    check_positive(k, "k")
    try:
        record = query if isinstance(query, Query) else Query(id=query_id, text=query)
        return SearchRequest(query=record, k=k)
    except ValidationError as exc:
        error = exc.errors()[0]
        raise InputError(str(error.get("ctx", {}).get("error") or error["msg"])) from None


def _open_index(index: str | Path | CorpusIndex | None) -> CorpusIndex | None:
    if index is None or isinstance(index, CorpusIndex):
        return index
    return CorpusIndex(index)


def _choose_retrievers(index: CorpusIndex | None,
                       retriever: str | Retriever | Sequence[str | Retriever] | None
                       ) -> list[Retriever]:
    """The first stages: "bm25,dense" or a list names several (their runs are fused)."""
    if retriever is None:
        return [index.retriever("bm25")] if index is not None else []
    if isinstance(retriever, str):
        retriever = [n.strip() for n in retriever.split(",") if n.strip()]
    if not isinstance(retriever, Sequence):
        return [retriever]
    chosen = []
    for item in retriever:
        if isinstance(item, str):
            if index is None:
                raise InputError(f"retriever {item!r} needs an index=")
            chosen.append(index.retriever(item))
        else:
            chosen.append(item)
    if not chosen:
        raise InputError("retriever= names no retriever; use bm25, dense or hybrid")
    return chosen


def _name(retriever: Retriever | None) -> str:
    return getattr(retriever, "name", type(retriever).__name__)


_default: dict[str, Reranker] = {}


def rerank(query: str, docs: Sequence[DocLike], method: str = "pointwise", **options: Any
           ) -> RerankResult:
    """One-call reranking with a Reranker kept per method for later calls."""
    key = f"{method}:{sorted(options.items())!r}"
    if key not in _default:
        _default[key] = Reranker(method, **options)
    return _default[key].rerank(query, docs)
