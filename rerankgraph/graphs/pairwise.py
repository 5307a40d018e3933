"""`pairwise`: PRP with both orders per comparison, top k by binary heapsort (or by
PRP-Sliding-K's bubble passes)."""

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
        # A knockout over the set: each challenger meets the best so far, so each
        # comparison waits for the one before (the two orders of one go together).
        best = 0
        for challenger in range(1, len(docs)):
            outcome, judgments = await agent.prefer(context.engine, query, docs[best],
                                                    docs[challenger], context.params)
            sink.extend(judgments)
            # A tie (the orders disagree, or both replies were unreadable) goes to the
            # first stage's preference: PRP scores it half a win each, and a heap needs
            # one winner.
            tie_to_challenger = best_prior([docs[best], docs[challenger]]) == 1
            if outcome == "second" or (outcome == "tie" and tie_to_challenger):
                best = challenger
        return best

    # Heapsort compares a parent with its two children; a bubble pass, neighbours.
    return build_heap_graph(agent.name, best_of,
                            lambda params: 2 if params.sort == "heapsort" else 1)


METHOD = MethodSpec(
    name="pairwise", build_graph=build_graph, params=PairwiseParams,
    description="PRP: two passages per call, both orders must agree, top k by heapsort "
                "or sliding passes",
    aliases=("prp",))
