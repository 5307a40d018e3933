"""Reciprocal rank fusion of any retrievers (Cormack, Clarke and Buettcher, SIGIR 2009)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from rerankgraph.errors import InputError
from rerankgraph.retrievers.base import Retriever, SearchResults, check_positive


def reciprocal_rank_fusion(rankings: Sequence[Sequence[str]], k: int = 60
                           ) -> list[tuple[str, float]]:
    """Fuses ranked lists of doc ids: score(d) = sum over lists of 1 / (k + rank of d),
    ranks from 1. Best first; ties go to the better single rank, then the doc id."""
    scores: dict[str, float] = {}
    best_rank: dict[str, int] = {}
    for ranking in rankings:
        for rank, doc_id in enumerate(ranking, start=1):
            scores[doc_id] = scores.get(doc_id, 0.0) + 1.0 / (k + rank)
            best_rank[doc_id] = min(best_rank.get(doc_id, rank), rank)
    order = sorted(scores, key=lambda d: (-scores[d], best_rank[d], d))
    return [(d, scores[d]) for d in order]


class HybridRetriever:
    """Fuses its retrievers' rankings by RRF. Each retriever is asked for `depth`
    documents (at least k) before fusion."""

    def __init__(self, retrievers: Sequence[Retriever], rrf_k: int = 60, depth: int = 100
                 ) -> None:
        if not retrievers:
            raise InputError("a hybrid retriever needs at least one retriever")
        if rrf_k < 0:
            raise InputError(f"the RRF constant k must be 0 or more, got {rrf_k}")
        self.retrievers = list(retrievers)
        self.rrf_k = rrf_k
        self.depth = check_positive(depth, "depth")
        self.name = "hybrid(" + "+".join(r.name for r in self.retrievers) + ")"

    def search(self, queries: Mapping[str, str], k: int) -> SearchResults:
        check_positive(k, "k")
        depth = max(k, self.depth)
        each = [r.search(queries, depth) for r in self.retrievers]
        return {qid: reciprocal_rank_fusion(
                    [[d for d, _ in result.get(qid, [])] for result in each], self.rrf_k)[:k]
                for qid in queries}
