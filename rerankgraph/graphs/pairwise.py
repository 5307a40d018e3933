"""`pairwise`: PRP with both orders per comparison, top k by binary heapsort."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rerankgraph.agents.base import best_prior
from rerankgraph.agents.pairwise import PairwiseAgent, PairwiseParams
from rerankgraph.context import RerankContext
from rerankgraph.graphs.heap import build_heap_graph
from rerankgraph.spec import MethodSpec
from rerankgraph.types import Candidate, Judgment, Query


def build_graph() -> Any:
    """A fresh compiled pairwise graph."""
    agent = PairwiseAgent()

    async def best_of(context: RerankContext, query: Query, docs: Sequence[Candidate],
                      sink: list[Judgment]) -> int:
        # A knockout over the set: the winner of each comparison meets the next doc.
        best = 0
        for challenger in range(1, len(docs)):
            p_best_wins, judgments = await agent.prefer(context.engine, query, docs[best],
                                                        docs[challenger], context.params)
            sink.extend(judgments)
            # An exact tie (two unreadable replies) keeps the first stage's preference.
            tie_to_challenger = best_prior([docs[best], docs[challenger]]) == 1
            if p_best_wins < 0.5 or (p_best_wins == 0.5 and tie_to_challenger):
                best = challenger
        return best

    return build_heap_graph(agent.name, best_of, lambda params: 2)


METHOD = MethodSpec(
    name="pairwise", build_graph=build_graph, params=PairwiseParams,
    description="PRP: two passages per call, both orders, top k by binary heapsort",
    aliases=("prp",))
