"""`setwise`: Setwise heapsort, one call per parent-and-children set."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rerankgraph.agents.setwise import SetwiseAgent, SetwiseParams
from rerankgraph.context import RerankContext
from rerankgraph.graphs.heap import build_heap_graph
from rerankgraph.spec import MethodSpec
from rerankgraph.types import Candidate, Judgment, Query


def build_graph() -> Any:
    """A fresh compiled setwise graph."""
    agent = SetwiseAgent()

    async def best_of(context: RerankContext, query: Query, docs: Sequence[Candidate],
                      sink: list[Judgment]) -> int:
        chosen, item = await agent.best_of(context.engine, query, docs, context.params)
        sink.append(item)
        return chosen

    return build_heap_graph(agent.name, best_of, lambda params: params.num_child)


METHOD = MethodSpec(
    name="setwise", build_graph=build_graph, params=SetwiseParams,
    description="Setwise heapsort: pick the best of 1 + num_child passages per call, top k",
    aliases=("setwise_heapsort",))
