"""`groupwise` (GroupRank): seeded rounds of shuffled groups, scored in parallel.

plan_groups --Send(group)--> judge_group (all groups in flight) --> aggregate
"""

from __future__ import annotations

import operator
import random
from typing import Annotated, Any, TypedDict

from langgraph.graph import END, START, StateGraph
from langgraph.runtime import Runtime
from langgraph.types import Send

from rerankgraph.agents.groupwise import GroupwiseAgent, GroupwiseParams
from rerankgraph.context import RerankContext
from rerankgraph.graphs.scoring import rank_by_score
from rerankgraph.spec import MethodSpec
from rerankgraph.types import Candidate, Judgment, ParseStatus, Query, ScoredDoc

# Nodes read this method's own parameter model through the runtime context.
GroupwiseRuntime = Runtime[RerankContext[GroupwiseParams]]


class GroupwiseState(TypedDict, total=False):
    query: Query
    candidates: list[Candidate]
    judgments: Annotated[list[Judgment], operator.add]
    ranking: list[ScoredDoc]


class GroupState(TypedDict):
    query: Query
    group: list[Candidate]
    seed: int


def plan_groups(candidates: list[Candidate], params: GroupwiseParams, seed: int,
                query_id: str) -> list[tuple[list[Candidate], int]]:
    """Each round shuffles the candidates with its own seed and cuts groups of
    `group_size` starting every `interval`; the last group takes the tail."""
    groups = []
    for round_index in range(params.rounds):
        round_seed = random.Random(f"{seed}:{query_id}:{round_index}").randrange(2**31)
        shuffled = list(candidates)
        random.Random(round_seed).shuffle(shuffled)
        start = 0
        while True:
            group = shuffled[start:start + params.group_size]
            if len(group) >= 2 or (len(shuffled) == 1 and group):
                groups.append((group, round_seed + start))
            if start + params.group_size >= len(shuffled):
                break
            start += params.interval
    return groups


def combine_scores(candidates: list[Candidate], judgments: list[Judgment],
                   params: GroupwiseParams) -> dict[str, float]:
    """Mean group score per doc over the groups that were read. A doc no group scored
    gets the mean of the others (never zero). Optionally min-max interpolated with
    the first-stage score."""
    totals: dict[str, list[float]] = {}
    for item in judgments:
        if item.status != ParseStatus.FALLBACK:
            for doc_id, score in item.parsed.items():
                totals.setdefault(doc_id, []).append(score)
    means = {d: sum(v) / len(v) for d, v in totals.items()}
    neutral = sum(means.values()) / len(means) if means else 0.5
    llm = {c.doc_id: means.get(c.doc_id, neutral) for c in candidates}
    if not params.interpolate:
        return llm
    first = {c.doc_id: (c.score if c.score is not None else -float(c.rank or i))
             for i, c in enumerate(candidates)}
    llm_n, first_n = _min_max(llm), _min_max(first)
    return {d: params.llm_weight * llm_n[d] + (1 - params.llm_weight) * first_n[d] for d in llm}


def _min_max(values: dict[str, float]) -> dict[str, float]:
    low, high = min(values.values()), max(values.values())
    span = high - low
    return {k: (v - low) / span if span else 0.5 for k, v in values.items()}


def build_graph() -> Any:
    """A fresh compiled groupwise graph."""
    agent = GroupwiseAgent()

    def fan_out(state: GroupwiseState, runtime: GroupwiseRuntime) -> list[Send]:
        groups = plan_groups(state["candidates"], runtime.context.params,
                             runtime.context.seed, state["query"].id)
        return [Send("judge_group", {"query": state["query"], "group": g, "seed": s})
                for g, s in groups]

    async def judge_group(state: GroupState, runtime: GroupwiseRuntime) -> dict:
        judgments = await agent.judge_group(runtime.context.engine, state["query"],
                                            state["group"], runtime.context.params,
                                            state["seed"])
        return {"judgments": judgments}

    def aggregate(state: GroupwiseState, runtime: GroupwiseRuntime) -> dict:
        scores = combine_scores(state["candidates"], state["judgments"],
                                runtime.context.params)
        return {"ranking": rank_by_score(state["candidates"], scores)}

    graph = StateGraph(GroupwiseState, context_schema=RerankContext)
    graph.add_node("judge_group", judge_group)
    graph.add_node("aggregate", aggregate)
    graph.add_conditional_edges(START, fan_out, ["judge_group"])
    graph.add_edge("judge_group", "aggregate")
    graph.add_edge("aggregate", END)
    return graph.compile(name=agent.name)


METHOD = MethodSpec(
    name="groupwise", build_graph=build_graph, params=GroupwiseParams,
    description="GroupRank: seeded shuffled groups scored 0-10 jointly, mean over rounds",
    aliases=("grouprank",))
