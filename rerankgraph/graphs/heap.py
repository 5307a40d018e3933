"""The graph shared by top-k selection judges (setwise, pairwise).

With `sort="heapsort"` (the default, as in both papers):
start --> heapify (one step per tree level) --> pick (one step per document of the
top k) --> rank. With `sort="bubblesort"` (Setwise's bubblesort, PRP-Sliding-K):
start --> bubble (one step per pass) --> rank.

Each step is one graph node over a typed state that holds the heap (or the order),
the picks so far and the sets already judged, so a checkpointer sees every round and
a resumed run asks nothing twice. Within a query the steps are sequential by nature
(each pick decides the next comparison); the sets of one heapify level go to the engine
together, and the queries of a batch run concurrently.
"""

from __future__ import annotations

import operator
from collections.abc import Awaitable, Callable, Sequence
from typing import Annotated, Any, TypedDict

from langgraph.graph import START, StateGraph
from langgraph.runtime import Runtime

from rerankgraph.agents.heapsort import (
    Judged,
    bubble_pass,
    extract,
    heapify_level,
    heapify_levels,
    with_rest,
)
from rerankgraph.context import RerankContext
from rerankgraph.graphs.fusion import end_with_fusion
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
    fusion: str  # which fusion with the first stage ended the graph
    order: list[str]  # doc ids: the heap (heapsort) or the list being bubbled
    levels: list[list[int]]  # heapify levels still to sift, deepest first
    end: int  # heap size left (heapsort)
    top: list[str]  # picks so far, best first
    judged: dict[str, int]  # a set's ids -> index of its best (asked once)


HeapRuntime = Runtime[RerankContext]


def build_heap_graph(name: str, best_of: BestOfFactory, arity_of: Callable[[Any], int]) -> Any:
    """A fresh compiled graph that extracts the top `params.k`; `arity_of(params)` is
    the number of children a set compares its parent with."""

    def judge(state: HeapState, runtime: HeapRuntime, sink: list[Judgment]) -> Judged:
        by_id = {c.doc_id: c for c in state["candidates"]}
        answers = dict(state.get("judged", {}))

        async def pick(doc_ids: Sequence[str]) -> int:
            return await best_of(runtime.context, state["query"],
                                 [by_id[d] for d in doc_ids], sink)

        return Judged(pick, answers)

    def start(state: HeapState, runtime: HeapRuntime) -> dict:
        params = runtime.context.params
        order = [c.doc_id for c in state["candidates"]]
        levels = (heapify_levels(len(order), arity_of(params))
                  if params.sort == "heapsort" else [])
        return {"order": order, "levels": levels, "end": len(order), "top": [],
                "judged": {}}

    async def heapify(state: HeapState, runtime: HeapRuntime) -> dict:
        """Sifts the deepest level left; its sets are judged concurrently."""
        judgments: list[Judgment] = []
        judged = judge(state, runtime, judgments)
        heap = list(state["order"])
        await heapify_level(heap, state["levels"][0], arity_of(runtime.context.params), judged)
        return {"order": heap, "levels": state["levels"][1:], "judged": dict(judged.answers),
                "judgments": judgments}

    async def pick(state: HeapState, runtime: HeapRuntime) -> dict:
        """Takes the root as the next of the top k, and repairs the heap if more are due."""
        judgments: list[Judgment] = []
        judged = judge(state, runtime, judgments)
        heap, top = list(state["order"]), list(state["top"])
        end = await extract(heap, state["end"], top, wanted(state, runtime),
                            arity_of(runtime.context.params), judged)
        return {"order": heap, "end": end, "top": top, "judged": dict(judged.answers),
                "judgments": judgments}

    async def bubble(state: HeapState, runtime: HeapRuntime) -> dict:
        """One pass from the bottom: the best document met rises to the next place."""
        judgments: list[Judgment] = []
        judged = judge(state, runtime, judgments)
        order, done = list(state["order"]), len(state["top"])
        await bubble_pass(order, done, arity_of(runtime.context.params) + 1, judged)
        return {"order": order, "top": order[:done + 1], "judged": dict(judged.answers),
                "judgments": judgments}

    def rank(state: HeapState, runtime: HeapRuntime) -> dict:
        """The top k, then the rest: as the passes left them (bubblesort), or in the
        first stage's order (heapsort: a heap's layout is no ranking)."""
        if runtime.context.params.sort == "bubblesort":
            return {"ranking": ranking_from_order(state["order"])}
        return {"ranking": ranking_from_order(
            with_rest(state["top"], [c.doc_id for c in state["candidates"]]))}

    def wanted(state: HeapState, runtime: HeapRuntime) -> int:
        # Bubble passes stop one short of the list: the last place is settled by then.
        return min(runtime.context.params.k, len(state["candidates"]) -
                   (1 if runtime.context.params.sort == "bubblesort" else 0))

    def after_start(state: HeapState, runtime: HeapRuntime) -> str:
        if runtime.context.params.sort == "bubblesort":
            return "bubble" if len(state["top"]) < wanted(state, runtime) else "rank"
        return "heapify" if state["levels"] else after_heapify(state, runtime)

    def after_heapify(state: HeapState, runtime: HeapRuntime) -> str:
        if state["levels"]:
            return "heapify"
        return "pick" if len(state["top"]) < wanted(state, runtime) else "rank"

    def after_pick(state: HeapState, runtime: HeapRuntime) -> str:
        return "pick" if len(state["top"]) < wanted(state, runtime) else "rank"

    def after_bubble(state: HeapState, runtime: HeapRuntime) -> str:
        return "bubble" if len(state["top"]) < wanted(state, runtime) else "rank"

    graph = StateGraph(HeapState, context_schema=RerankContext)
    for node in (start, heapify, pick, bubble, rank):
        graph.add_node(node.__name__, node)
    graph.add_edge(START, "start")
    graph.add_conditional_edges("start", after_start, ["heapify", "pick", "bubble", "rank"])
    graph.add_conditional_edges("heapify", after_heapify, ["heapify", "pick", "rank"])
    graph.add_conditional_edges("pick", after_pick, ["pick", "rank"])
    graph.add_conditional_edges("bubble", after_bubble, ["bubble", "rank"])
    end_with_fusion(graph, "rank")
    return graph.compile(name=name)
