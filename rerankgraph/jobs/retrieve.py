"""First-stage runs from a corpus index: `rerankgraph retrieve` as a function."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from rerankgraph.data import check_outputs, read_queries, write_trec_run
from rerankgraph.errors import InputError
from rerankgraph.index.corpus import CorpusIndex
from rerankgraph.retrievers.base import SearchResults, check_positive, short_queries

# Queries per search call: bounds memory and lets a progress bar move.
_CHUNK = 256


@dataclass
class RetrieveReport:
    """What a retrieval run wrote, and which queries came back with fewer than k hits."""

    out: Path
    retriever: str
    queries: int
    k: int
    wall_time_s: float
    short: dict[str, int] = field(default_factory=dict)

    def summary_line(self) -> str:
        line = (f"wrote {self.out}: {self.queries} queries, top {self.k} by {self.retriever}, "
                f"{self.wall_time_s:.1f} s ({self.queries / max(self.wall_time_s, 1e-9):,.1f} "
                "queries/s)")
        if self.short:
            line += (f"; {len(self.short)} queries came back short of {self.k} (fewest: "
                     f"{min(self.short.values())}), their terms match fewer documents")
        return line


@dataclass(frozen=True)
class RetrieveSettings:
    """`rerankgraph retrieve`: DATA's queries (the first `queries`) searched in `index`
    with `retriever`, the top `k` of each written to `out`."""

    index: Path
    data: Path
    out: Path
    retriever: str = "bm25"
    k: int = 100
    queries: int | None = None
    rrf_k: int = 60  # hybrid: the RRF constant
    force: bool = False  # write `out` even over one of the inputs


def run_retrieve(settings: RetrieveSettings,
                 on_progress: Callable[[int, int], None] | None = None) -> RetrieveReport:
    """Checks the files (before any search), then runs `retrieve_run` over the wanted
    queries. Bad input raises InputError."""
    data = settings.data
    check_outputs({"--out": settings.out}, [data / "corpus.jsonl", data / "queries.jsonl"],
                  force=settings.force)
    index = CorpusIndex(settings.index)
    index.check_corpus(data)
    if settings.queries is not None and settings.queries <= 0:
        raise InputError(f"--queries must be positive, got {settings.queries}")
    wanted = dict(list(read_queries(data).items())[:settings.queries])
    return retrieve_run(index, wanted, settings.out, retriever=settings.retriever,
                        k=settings.k, rrf_k=settings.rrf_k, on_progress=on_progress)


def run_lines_from_hits(results: SearchResults, tag: str) -> dict[str, list[str]]:
    """TREC lines, rank from 1, with the retriever's own scores."""
    return {qid: [f"{qid} Q0 {doc_id} {rank} {score:.6f} {tag}"
                  for rank, (doc_id, score) in enumerate(hits, start=1)]
            for qid, hits in results.items() if hits}


def retrieve_run(index: CorpusIndex, queries: Mapping[str, str], out: str | Path, *,
                 retriever: str = "bm25", k: int = 100, rrf_k: int = 60,
                 on_progress: Callable[[int, int], None] | None = None) -> RetrieveReport:
    """Searches every query and writes the top `k` per query as a TREC run (atomically:
    an interrupted run leaves no file)."""
    check_positive(k, "--k")
    search = index.retriever(retriever, rrf_k=rrf_k)
    query_ids = list(queries)
    results: SearchResults = {}
    started = time.perf_counter()
    for start in range(0, len(query_ids), _CHUNK):
        chunk = {q: queries[q] for q in query_ids[start:start + _CHUNK]}
        results.update(search.search(chunk, k))
        if on_progress is not None:
            on_progress(len(results), len(query_ids))
    wall = time.perf_counter() - started
    write_trec_run(out, run_lines_from_hits(results, f"rerankgraph-{retriever}"))
    return RetrieveReport(out=Path(out), retriever=search.name, queries=len(query_ids), k=k,
                          wall_time_s=wall, short=short_queries(results, k))
