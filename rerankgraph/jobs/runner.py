"""Batch jobs: many queries through one method, concurrently, resumable from a JobStore."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from rerankgraph.jobs.store import JobStore
from rerankgraph.sdk import Reranker
from rerankgraph.types import RerankRequest, RerankResult


@dataclass
class JobReport:
    """Every query's result (sorted by query id), and what the job cost."""

    results: list[RerankResult]
    resumed: int
    wall_time_s: float
    prefix_cache: tuple[int, int] | None = None
    cache_hits: int = 0
    failures: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.failures


def run_job(reranker: Reranker, requests: Sequence[RerankRequest], store: JobStore | None = None,
            on_result: Callable[[RerankResult], None] | None = None) -> JobReport:
    """Reranks every request not already finished in `store`. All of them advance
    concurrently; each finished query is stored at once, so a killed job loses only
    the queries in flight (and even their engine replies are cached when the engine is
    a CachingEngine over the same store)."""
    done = store.finished() if store is not None else {}
    wanted = {r.query.id for r in requests}
    resumed = {qid: result for qid, result in done.items() if qid in wanted}
    todo = [r for r in requests if r.query.id not in resumed]
    before = reranker.engine.prefix_cache_counts()

    def finish(result: RerankResult) -> None:
        if store is not None:
            store.save_result(result)
        if on_result is not None:
            on_result(result)

    started = time.perf_counter()
    fresh = reranker.rerank_batch(todo, on_result=finish) if todo else []
    wall = time.perf_counter() - started
    after = reranker.engine.prefix_cache_counts()
    prefix = None
    if before is not None and after is not None:
        prefix = (after[0] - before[0], after[1] - before[1])
    results = sorted([*resumed.values(), *fresh], key=lambda r: r.query_id)
    return JobReport(results=results, resumed=len(resumed), wall_time_s=wall,
                     prefix_cache=prefix, cache_hits=getattr(reranker.engine, "cache_hits", 0),
                     failures={r.query_id: r.error for r in fresh if r.error is not None})
