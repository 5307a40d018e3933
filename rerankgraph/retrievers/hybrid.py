"""A retriever that fuses any retrievers by reciprocal rank fusion."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from rerankgraph.errors import InputError
from rerankgraph.retrievers.base import Retriever, SearchResults, check_positive
from rerankgraph.retrievers.fusion import reciprocal_rank_fusion

__all__ = ["HybridRetriever", "reciprocal_rank_fusion"]


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
