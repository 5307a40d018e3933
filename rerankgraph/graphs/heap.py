"""The graph shared by heap-selection judges (setwise, pairwise).

select_top_k --> rank. Heapsort is sequential by nature within a query (each pick
decides the next comparison); heapify levels are batched, and the queries of a batch
run concurrently, so the engine still sees many calls at once.
"""

from __future__ import annotations

import operator
from collections.abc import Awaitable, Callable, Sequence
from typing import Annotated, Any, TypedDict

from langgraph.graph import END, START, StateGraph
from langgraph.runtime import Runtime

from rerankgraph.agents.heapsort import heap_top_k
from rerankgraph.context import RerankContext
from rerankgraph.graphs.windows import ranking_from_order
from rerankgraph.types import Candidate, Judgment, Query, ScoredDoc

# (context, query, docs of the set, sink for judgments) -> index of the best doc
BestOfFactory = Callable[[RerankContext, Query, Sequence[Candidate], list[Judgment]],
                         Awaitable[int]]


class HeapState(TypedDict, total=False):
    query: Query
    candidates: list[Candidate]
    judgments: Annotated[list[Judgment], operator.add]
    ranking: list[ScoredDoc]


def build_heap_graph(name: str, best_of: BestOfFactory, arity_of: Callable[[Any], int]) -> Any:
    """A fresh compiled graph that extracts the top `params.k` with a heap."""

    async def select_top_k(state: HeapState, runtime: Runtime[RerankContext]) -> dict:
        by_id = {c.doc_id: c for c in state["candidates"]}
        judgments: list[Judgment] = []

        async def pick(doc_ids: Sequence[str]) -> int:
            return await best_of(runtime.context, state["query"],
                                 [by_id[d] for d in doc_ids], judgments)

        order = await heap_top_k([c.doc_id for c in state["candidates"]],
                                 runtime.context.params.k, arity_of(runtime.context.params),
                                 pick)
        return {"ranking": ranking_from_order(order), "judgments": judgments}

    graph = StateGraph(HeapState, context_schema=RerankContext)
    graph.add_node("select_top_k", select_top_k)
    graph.add_edge(START, "select_top_k")
    graph.add_edge("select_top_k", END)
    return graph.compile(name=name)
