"""`groupwise` (GroupRank): seeded rounds of shuffled groups, scored in parallel.

plan_groups --Send(group)--> judge_group (all groups in flight) --> aggregate
"""

from __future__ import annotations

import itertools
import operator
import random
from typing import Annotated, Any, TypedDict

from langgraph.graph import START, StateGraph
from langgraph.runtime import Runtime
from langgraph.types import Send

from rerankgraph.agents.groupwise import GroupwiseAgent, GroupwiseParams
from rerankgraph.context import RerankContext
from rerankgraph.graphs.fusion import end_with_fusion
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
    fusion: str  # which fusion with the first stage ended the graph
    unscored: list[str]  # docs no readable reply scored (counted in provenance)


class GroupState(TypedDict):
    query: Query
    group: list[Candidate]
    seed: int


def plan_groups(candidates: list[Candidate], params: GroupwiseParams, seed: int,
                query_id: str) -> list[tuple[list[Candidate], int]]:
    """Each round shuffles the candidates with its own seed and cuts them into groups
    of balanced sizes (see `group_bounds`), so every document of a round is judged on
    a like scale."""
    groups = []
    for round_index in range(params.rounds):
        round_seed = random.Random(f"{seed}:{query_id}:{round_index}").randrange(2**31)
        shuffled = list(candidates)
        random.Random(round_seed).shuffle(shuffled)
        for start, stop in group_bounds(len(shuffled), params.group_size, params.interval):
            groups.append((shuffled[start:stop], round_seed + start))
    return groups


def group_bounds(count: int, size: int, interval: int) -> list[tuple[int, int]]:
    """[start, stop) of each group of a round of `count` documents.

    With `interval` equal to `size` the groups partition the round, as many as
    ceil(count / size) and sizes that differ by one at most (21 documents in groups of
    20 make 11 + 10, not 20 + 1). With a smaller interval the groups overlap: each has
    `size` documents, and as many as a step of `interval` needs, with their starts
    spread evenly from the first document to the last full group. A group of one
    happens only when the round has one document."""
    if count <= size:
        return [(0, count)] if count else []
    if interval >= size:
        # Groups of two with an odd count would leave one document alone; it joins a
        # neighbour's group instead (one over the size) so it is scored against others.
        groups = min(-(-count // size), count // 2)
        base, larger = divmod(count, groups)
        sizes = [base + 1] * larger + [base] * (groups - larger)
        return list(itertools.pairwise([0, *itertools.accumulate(sizes)]))
    steps = -(-(count - size) // interval)
    starts = [i * (count - size) // steps for i in range(steps + 1)]
    return [(start, start + size) for start in starts]


def combine_scores(candidates: list[Candidate], judgments: list[Judgment],
                   params: GroupwiseParams) -> tuple[dict[str, float], list[str]]:
    """Mean group score per doc over the groups that were read (GroupRank's
    interpolation with the first stage is the `fusion` every method ends with); and the
    docs no readable reply scored
    (they get no score here: `rank_keeping_places` keeps them where they were)."""
    totals: dict[str, list[float]] = {}
    for item in judgments:
        if item.status != ParseStatus.FALLBACK:
            for doc_id, score in item.parsed.items():
                totals.setdefault(doc_id, []).append(score)
    llm = {d: sum(v) / len(v) for d, v in totals.items()}
    unscored = [c.doc_id for c in candidates if c.doc_id not in llm]
    return llm, unscored


def rank_keeping_places(candidates: list[Candidate], scores: dict[str, float]
                        ) -> list[ScoredDoc]:
    """The scored docs by score (ties by first-stage order) in the places the scored
    docs held; an unscored doc keeps its first-stage place, with a score between its
    neighbours' so the list stays sorted."""
    ranked = iter(rank_by_score([c for c in candidates if c.doc_id in scores], scores))
    placed = [next(ranked).doc_id if c.doc_id in scores else c.doc_id for c in candidates]
    return [ScoredDoc(doc_id=d, score=v)
            for d, v in zip(placed, _filled([scores.get(d) for d in placed]), strict=True)]


def _filled(values: list[float | None]) -> list[float]:
    """Each missing value interpolated between the known ones around it (one apart
    beyond the ends), so a descending list stays descending."""
    known = {i: v for i, v in enumerate(values) if v is not None}
    if not known:
        return [float(len(values) - i) for i in range(len(values))]
    out = []
    for i in range(len(values)):
        above = max((j for j in known if j <= i), default=None)
        below = min((j for j in known if j >= i), default=None)
        if above is None and below is not None:
            out.append(known[below] + (below - i))
        elif below is None and above is not None:
            out.append(known[above] - (i - above))
        elif above is not None and below is not None:
            share = (i - above) / (below - above) if below > above else 0.0
            out.append(known[above] - (known[above] - known[below]) * share)
    return out


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
        scores, unscored = combine_scores(state["candidates"], state["judgments"],
                                          runtime.context.params)
        return {"ranking": rank_keeping_places(state["candidates"], scores),
                "unscored": unscored}

    graph = StateGraph(GroupwiseState, context_schema=RerankContext)
    graph.add_node("judge_group", judge_group)
    graph.add_node("aggregate", aggregate)
    graph.add_conditional_edges(START, fan_out, ["judge_group"])
    graph.add_edge("judge_group", "aggregate")
    end_with_fusion(graph, "aggregate")
    return graph.compile(name=agent.name)


METHOD = MethodSpec(
    name="groupwise", build_graph=build_graph, params=GroupwiseParams,
    description="GroupRank: seeded shuffled groups scored 0-10 jointly, mean over rounds",
    aliases=("grouprank",))
