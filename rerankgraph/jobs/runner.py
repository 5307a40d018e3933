"""Batch jobs: many queries through one method, concurrently, resumable from a JobStore."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from rerankgraph.jobs.store import JobStore
from rerankgraph.sdk import Reranker
from rerankgraph.types import RerankRequest, RerankResult, SearchRequest


@dataclass
class JobReport:
    """Every query's result (sorted by query id), and what the job cost. `resumed_ids`
    are the queries taken as finished from an earlier run; `failures` maps the queries
    that failed in this run to their error."""

    results: list[RerankResult]
    wall_time_s: float
    resumed_ids: frozenset[str] = frozenset()
    prefix_cache: tuple[int, int] | None = None
    cache_hits: int = 0
    failures: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.failures

    @property
    def resumed(self) -> int:
        return len(self.resumed_ids)

    def totals(self) -> JobTotals:
        """The sums the summary line reports."""
        return JobTotals.of(self)

    def summary_line(self, out_path: str | Path) -> str:
        """One line: queries, failures, calls, tokens, repairs, fallbacks, time, tokens/s
        and the prefix-cache hit rate; it starts with SIMULATED JUDGE when one answered."""
        totals = self.totals()
        line = ("SIMULATED JUDGE, not a model: " if totals.simulated else "") + (
            f"wrote {out_path}: {totals.queries} queries reranked ({self.resumed} resumed), "
            f"{len(self.failures)} failed, {totals.llm_calls} LLM calls "
            f"({self.cache_hits} from cache), {totals.prompt_tokens} prompt + "
            f"{totals.completion_tokens} completion tokens, {totals.repaired} repaired, "
            f"{totals.fallbacks} fallbacks, {totals.dropped_samples} samples dropped, "
            f"{totals.unchanged} orders left as shown, "
            f"{totals.unscored_docs} unscored docs, {totals.truncated_docs} truncated docs, "
            f"{totals.truncated_queries} truncated queries, "
            f"{self.wall_time_s:.1f} s, {totals.tokens_per_s:,.0f} tok/s")
        if self.prefix_cache and self.prefix_cache[1]:
            hits, queried = self.prefix_cache
            line += f", prefix cache hit rate {hits / queried:.1%}"
        if totals.flagged_docs:
            line += (f"; {totals.flagged_docs} documents read like instructions to the judge "
                     "(flagged in provenance, scores unchanged)")
        return line

    def failure_lines(self, out_path: str | Path) -> list[str]:
        """One line per distinct error (a dead server is one message, not a thousand),
        then how many queries failed and how to retry them; empty when none failed."""
        if not self.failures:
            return []
        by_error: dict[str, list[str]] = {}
        for qid, error in self.failures.items():
            by_error.setdefault(error, []).append(qid)
        lines = []
        for error, qids in by_error.items():
            shown = ", ".join(repr(q) for q in qids[:5]) + (
                f" and {len(qids) - 5} more" if len(qids) > 5 else "")
            lines.append(f"failed: {'query' if len(qids) == 1 else f'{len(qids)} queries'} "
                         f"{shown}: {error}")
        lines.append(f"{len(self.failures)} of {len(self.results)} queries failed; their "
                     f"lines are not in {out_path}. Rerun the same command to retry them.")
        return lines


@dataclass(frozen=True)
class JobTotals:
    """Sums over a job's finished queries (resumed ones included), and `run_tokens`:
    the tokens this run computed, over which tokens/s is measured. Resumed queries and
    replies replayed from the reply cache cost this run nothing, so they are left out
    of it."""

    queries: int
    llm_calls: int
    prompt_tokens: int
    completion_tokens: int
    repaired: int
    fallbacks: int
    truncated_docs: int
    run_tokens: int
    wall_time_s: float
    simulated: bool
    flagged_docs: int = 0
    unchanged: int = 0
    unscored_docs: int = 0
    dropped_samples: int = 0
    truncated_queries: int = 0

    @property
    def tokens_per_s(self) -> float:
        return self.run_tokens / max(self.wall_time_s, 1e-9)

    @classmethod
    def of(cls, report: JobReport) -> JobTotals:
        done = [r for r in report.results if r.ok and r.provenance is not None]
        provenance = [r.provenance for r in done if r.provenance is not None]
        fresh = [r.provenance for r in done
                 if r.provenance is not None and r.query_id not in report.resumed_ids]
        return cls(
            queries=len(done),
            llm_calls=sum(p.llm_calls for p in provenance),
            prompt_tokens=sum(p.prompt_tokens for p in provenance),
            completion_tokens=sum(p.completion_tokens for p in provenance),
            repaired=sum(p.repaired for p in provenance),
            fallbacks=sum(p.fallbacks for p in provenance),
            unchanged=sum(p.unchanged for p in provenance),
            unscored_docs=sum(len(p.unscored_docs) for p in provenance),
            dropped_samples=sum(p.dropped_samples for p in provenance),
            truncated_docs=sum(p.truncated_docs for p in provenance),
            truncated_queries=sum(p.truncated_query for p in provenance),
            run_tokens=sum(j.prompt_tokens + j.completion_tokens
                           for p in fresh for j in p.judgments if not j.cached),
            wall_time_s=report.wall_time_s,
            simulated=any(p.simulated for p in provenance),
            flagged_docs=sum(len(p.flagged_docs) for p in provenance))


def run_job(reranker: Reranker, requests: Sequence[RerankRequest | SearchRequest],
            store: JobStore | None = None,
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
    return JobReport(results=results, resumed_ids=frozenset(resumed), wall_time_s=wall,
                     prefix_cache=prefix, cache_hits=getattr(reranker.engine, "cache_hits", 0),
                     failures={r.query_id: r.error for r in fresh if r.error is not None})
