"""The graph shared by per-document scoring judges (pointwise, rubric).

fan_out --Send(batch)--> judge_batch (parallel) --> rank_by_score
Each branch hands one batch of candidates to the engine at once, and all branches of
all queries are in flight together.
"""

from __future__ import annotations

import operator
from collections.abc import Sequence
from typing import Annotated, Any, Protocol, TypedDict

from langgraph.graph import START, StateGraph
from langgraph.runtime import Runtime
from langgraph.types import Send

from rerankgraph.context import RerankContext
from rerankgraph.graphs.fusion import end_with_fusion
from rerankgraph.serving.base import Engine
from rerankgraph.types import Candidate, Judgment, Query, ScoredDoc


class ScoringAgent(Protocol):
    name: str

    async def judge(self, engine: Engine, query: Query, candidates: Sequence[Candidate],
                    params: Any, seed: int = 0) -> list[Judgment]: ...


class RerankState(TypedDict, total=False):
    """Input: query and candidates. Output: judgments and ranking."""

    query: Query
    candidates: list[Candidate]
    judgments: Annotated[list[Judgment], operator.add]
    ranking: list[ScoredDoc]
    fusion: str  # which fusion with the first stage ended the graph


class BatchState(TypedDict):
    query: Query
    batch: list[Candidate]


def rank_by_score(candidates: Sequence[Candidate], scores: dict[str, float]
                  ) -> list[ScoredDoc]:
    """Sorts every candidate by score, best first; ties keep first-stage order.
    A candidate without a score keeps its place below all scored ones."""
    order = {c.doc_id: i for i, c in enumerate(candidates)}
    scored = sorted((c.doc_id for c in candidates if c.doc_id in scores),
                    key=lambda d: (-scores[d], order[d]))
    unscored = [c.doc_id for c in candidates if c.doc_id not in scores]
    return ([ScoredDoc(doc_id=d, score=scores[d]) for d in scored]
            + [ScoredDoc(doc_id=d, score=float("-inf")) for d in unscored])


def below_measured(scores: dict[str, float], unmeasured: set[str]) -> dict[str, float]:
    """Scores read without a probability (a reply word, a default) placed below every
    measured one, in their own order, so a repaired "yes" never outranks a document the
    judge measurably rated: squeezed into [0, lowest measured), or, when the lowest
    measured is 0 or less, into [lowest - 0.75, lowest - 0.25]."""
    floor = min((s for d, s in scores.items() if d not in unmeasured), default=None)
    if floor is None or not unmeasured:
        return scores

    def squeezed(score: float) -> float:
        return floor * (0.25 + 0.5 * score) if floor > 0 else floor - 0.75 + 0.5 * score

    return {d: (squeezed(s) if d in unmeasured else s) for d, s in scores.items()}


def rank_judged(agent: object, candidates: Sequence[Candidate],
                judgments: Sequence[Judgment]) -> list[ScoredDoc]:
    """The candidates by their one-document judgments' scores; an agent with a
    `measured` test has its unmeasured scores placed below the measured ones. Shared by
    this graph and the Ray backend, so both rank alike."""
    scores = {j.doc_ids[0]: float(j.parsed) for j in judgments}
    measured = getattr(agent, "measured", None)
    if measured is not None:
        scores = below_measured(scores, {j.doc_ids[0] for j in judgments if not measured(j)})
    return rank_by_score(candidates, scores)


def build_scoring_graph(agent: ScoringAgent) -> Any:
    """A fresh compiled graph that scores each candidate with `agent` and sorts."""

    def fan_out(state: RerankState, runtime: Runtime[RerankContext]) -> list[Send]:
        size = getattr(runtime.context.params, "batch_size", 32)
        candidates = state["candidates"]
        return [Send("judge_batch", {"query": state["query"], "batch": candidates[i:i + size]})
                for i in range(0, len(candidates), size)]

    async def judge_batch(state: BatchState, runtime: Runtime[RerankContext]) -> dict:
        context = runtime.context
        judgments = await agent.judge(context.engine, state["query"], state["batch"],
                                      context.params, seed=context.seed)
        return {"judgments": judgments}

    def rank(state: RerankState) -> dict:
        return {"ranking": rank_judged(agent, state["candidates"], state["judgments"])}

    graph = StateGraph(RerankState, context_schema=RerankContext)
    graph.add_node("judge_batch", judge_batch)
    graph.add_node("rank", rank)
    graph.add_conditional_edges(START, fan_out, ["judge_batch"])
    graph.add_edge("judge_batch", "rank")
    end_with_fusion(graph, "rank")
    return graph.compile(name=agent.name)

