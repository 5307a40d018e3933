"""The graph shared by sliding-window judges (listwise, first).

plan --> judge_window --(more windows?)--> judge_window ... --> rank
Windows of one query run in order, since each sees the order the previous one left;
windows of different queries run concurrently as separate graph runs.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Sequence
from typing import Annotated, Any, Protocol, TypedDict

from langgraph.graph import START, StateGraph
from langgraph.runtime import Runtime

from rerankgraph.agents.windows import WindowParams, sliding_windows
from rerankgraph.context import RerankContext
from rerankgraph.graphs.fusion import end_with_fusion
from rerankgraph.serving.base import Engine
from rerankgraph.types import Candidate, Judgment, Query, ScoredDoc

# Nodes read this method's own parameter model through the runtime context.
WindowRuntime = Runtime[RerankContext[WindowParams]]


class WindowAgent(Protocol):
    name: str

    async def judge_window(self, engine: Engine, query: Query, window: Sequence[Candidate],
                           params: Any, candidates: Sequence[Candidate] = ()) -> Judgment: ...


# A method's own plan: from the candidates and parameters, the candidates to keep (they
# may gain metadata), the order to judge (ids may repeat; a repeat counts at its first
# place) and the windows' spans.
Plan = Callable[[list[Candidate], Any], tuple[list[Candidate], list[str],
                                             list[tuple[int, int]]]]


class WindowState(TypedDict, total=False):
    query: Query
    candidates: list[Candidate]
    judgments: Annotated[list[Judgment], operator.add]
    ranking: list[ScoredDoc]
    fusion: str  # which fusion with the first stage ended the graph
    order: list[str]  # current doc ids, best first
    spans: list[tuple[int, int]]  # windows still to judge


def ranking_from_order(order: Sequence[str]) -> list[ScoredDoc]:
    """Scores that decrease with rank (n, n-1, ..., 1) for an ordering; an id that
    repeats counts at its first place."""
    unique = list(dict.fromkeys(order))
    return [ScoredDoc(doc_id=d, score=float(len(unique) - i)) for i, d in enumerate(unique)]


def sliding_plan(candidates: list[Candidate], params: Any
                 ) -> tuple[list[Candidate], list[str], list[tuple[int, int]]]:
    """The candidates as given, windows slid from the bottom to the top."""
    spans = sliding_windows(len(candidates), params.window, params.stride) * params.passes
    return candidates, [c.doc_id for c in candidates], spans


def build_window_graph(agent: WindowAgent, plan_windows: Plan = sliding_plan) -> Any:
    """A fresh compiled graph that judges `agent`'s windows in the order `plan_windows`
    gives (default: slid from the bottom to the top). A plan may raise InputError before
    any call."""

    def plan(state: WindowState, runtime: WindowRuntime) -> dict:
        candidates, order, spans = plan_windows(list(state["candidates"]),
                                                runtime.context.params)
        return {"candidates": candidates, "order": order, "spans": spans}

    async def judge_window(state: WindowState, runtime: WindowRuntime) -> dict:
        (start, end), *rest = state["spans"]
        by_id = {c.doc_id: c for c in state["candidates"]}
        order = list(state["order"])
        window = [by_id[d] for d in order[start:end]]
        result = await agent.judge_window(runtime.context.engine, state["query"], window,
                                          runtime.context.params, state["candidates"])
        order[start:end] = result.parsed
        return {"order": order, "spans": rest, "judgments": [result]}

    def more_windows(state: WindowState) -> str:
        return "judge_window" if state["spans"] else "rank"

    def rank(state: WindowState) -> dict:
        return {"ranking": ranking_from_order(state["order"])}

    graph = StateGraph(WindowState, context_schema=RerankContext)
    graph.add_node("plan", plan)
    graph.add_node("judge_window", judge_window)
    graph.add_node("rank", rank)
    graph.add_edge(START, "plan")
    graph.add_conditional_edges("plan", more_windows, ["judge_window", "rank"])
    graph.add_conditional_edges("judge_window", more_windows, ["judge_window", "rank"])
    end_with_fusion(graph, "rank")
    return graph.compile(name=agent.name)
