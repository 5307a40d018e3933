"""Cascades and dear on the simulated judge: stage sizes, the untouched tails, the
per-stage provenance, and what later stages see; stage strings and their errors."""

from __future__ import annotations

import operator
from typing import Annotated, Any, TypedDict

import pytest
from langgraph.graph import END, START, StateGraph
from pydantic import BaseModel

from rerankgraph.agents.pointwise import PointwiseAgent
from rerankgraph.agents.rubric import RubricAgent
from rerankgraph.context import RerankContext
from rerankgraph.data import build_job, read_qrels
from rerankgraph.errors import InputError
from rerankgraph.graphs.cascade import (
    STAGE_SCORES,
    CascadeParams,
    Stage,
    build_cascade_graph,
    parse_stages,
)
from rerankgraph.graphs.scoring import rank_judged
from rerankgraph.registry import get_method
from rerankgraph.sdk import Reranker
from rerankgraph.simulation import SimulatedJudge, SimulationSettings
from rerankgraph.spec import MethodSpec
from rerankgraph.types import Candidate, Judgment, Query, ScoredDoc
from tests.conftest import DL19

QRELS = read_qrels(DL19 / "qrels.tsv")
STAGES = "20@pointwise -> 10@rubric:samples=2,reasoning_tokens=0 -> 5@listwise"


@pytest.fixture(scope="module")
def one_query(dl19, dl19_run):
    """The first DL19 query at BM25 top-20, and a noisy (seeded) simulated judge whose
    stages disagree, so each stage's order can be told apart."""
    request = build_job(dl19, dl19_run, depth=20, queries=1).requests[0]
    judge = SimulatedJudge(QRELS, dl19.queries, dl19.corpus,
                           SimulationSettings(score_noise=0.3), seed=5)
    return request, judge


def test_three_stages_rerank_shrinking_heads_and_leave_the_tails(one_query):
    request, judge = one_query
    result = Reranker("cascade", engine=judge, params={"stages": STAGES}).rerank_batch([request])[0]
    assert result.ok, result.error
    provenance = result.provenance
    stages = [step for step in provenance.trace if "stage" in step]
    assert [(s["method"], s["reranked"], s["llm_calls"]) for s in stages] == [
        ("pointwise", 20, 20), ("rubric", 10, 10), ("listwise", 5, 1)]
    assert stages[1]["params"] == {"fusion": "none", "samples": 2, "reasoning_tokens": 0}
    assert provenance.llm_calls == 31 == sum(s["llm_calls"] for s in stages)
    assert provenance.prompt_tokens == sum(s["prompt_tokens"] for s in stages)

    # Each stage's own order, rebuilt from its judgments.
    by_id = {c.doc_id: c for c in request.candidates}
    first = [j for j in provenance.judgments if j.agent == "pointwise"]
    second = [j for j in provenance.judgments if j.agent == "rubric"]
    [third] = [j for j in provenance.judgments if j.agent == "listwise"]
    order1 = [d.doc_id for d in rank_judged(PointwiseAgent(), request.candidates, first)]
    order2 = [d.doc_id for d in rank_judged(RubricAgent(), [by_id[d] for d in order1[:10]],
                                            second)]
    assert sorted(j.doc_ids[0] for j in second) == sorted(order1[:10])
    assert list(third.doc_ids) == order2[:5]  # the window is stage 2's top 5
    assert result.doc_ids == list(third.parsed) + order2[5:10] + order1[10:]
    # The noisy judge's stages disagree, so each stage's order is seen in the result.
    assert order2 != order1[:10] and list(third.parsed) != order2[:5]
    scores = [d.score for d in result.ranking]
    assert scores == sorted(scores, reverse=True)


def test_one_cli_string_and_python_stages_are_the_same_cascade():
    parsed = CascadeParams(stages="100@rubric:samples=1 -> 30@rubric:samples=4 -> 10@listwise")
    assert parsed.stages == (Stage(depth=100, method="rubric", params={"samples": 1}),
                             Stage(depth=30, method="rubric", params={"samples": 4}),
                             Stage(depth=10, method="listwise"))
    assert str(parsed.stages[1]) == "30@rubric:samples=4"
    assert parse_stages("5@rubric:definition=about cats,samples=2")[0].params == {
        "definition": "about cats", "samples": 2}


@pytest.mark.parametrize(("params", "message"), [
    ({"stages": "10@listwise -> 20@pointwise"}, "stage depths must not grow, got 10 -> 20"),
    ({"stages": "rubric"}, "stage 1 'rubric' must look like DEPTH@METHOD"),
    ({"stages": "10@rubric:samples"}, "stage 1: 'samples' must look like name=value"),
    ({"stages": "10@nope"}, "unknown method 'nope'"),
    ({"stages": "10@retrieve"}, "stage 1: 'retrieve' cannot be a stage"),
    ({"stages": "10@rubric:samples=4,temperature=0"}, "samples=4 needs a temperature"),
    ({"stages": "10@cascade"}, "'cascade' cannot be a stage"),
])
def test_bad_stages_are_one_line_errors(params, message):
    with pytest.raises(Exception, match=message) as caught:
        Reranker("cascade", engine=SimulatedJudge({}, {}, {}), params=params)
    assert "\n" not in str(caught.value)


class _PeekState(TypedDict, total=False):
    query: Query
    candidates: list[Candidate]
    judgments: Annotated[list[Judgment], operator.add]
    ranking: list[ScoredDoc]


async def test_later_stages_see_earlier_scores(one_query):
    request, judge = one_query
    seen: list[dict[str, Any]] = []

    def peek(state: _PeekState) -> dict:
        seen.extend(c.metadata.get(STAGE_SCORES, {}) for c in state["candidates"])
        return {"ranking": [ScoredDoc(doc_id=c.doc_id, score=0.0) for c in state["candidates"]]}

    def build_peek() -> Any:
        graph = StateGraph(_PeekState)
        graph.add_node("peek", peek)
        graph.add_edge(START, "peek")
        graph.add_edge("peek", END)
        return graph.compile()

    peek_spec = MethodSpec(name="peek", build_graph=build_peek, params=BaseModel,
                           description="records what it is shown")

    def resolve(name: str) -> MethodSpec:
        return peek_spec if name == "peek" else get_method(name)

    graph = build_cascade_graph(parse_stages("20@pointwise -> 4@peek"), resolve)
    state = await graph.ainvoke({"query": request.query, "candidates": list(request.candidates)},
                         context=RerankContext(engine=judge,
                                               params=get_method("cascade").make_params({})))
    pointwise = {j.doc_ids[0]: j.parsed for j in state["judgments"]}
    assert len(seen) == 4
    assert all(set(s) == {"stage_1_pointwise"} for s in seen)
    assert all(s["stage_1_pointwise"] == pytest.approx(pointwise[d.doc_id])
               for s, d in zip(seen, state["ranking"][:4], strict=True))


def test_dear_scores_pointwise_then_reasons_over_one_listwise_window(one_query):
    request, judge = one_query
    result = Reranker("dear", engine=judge, params={"listwise_depth": 8}).rerank_batch([request])[0]
    provenance = result.provenance
    assert [(s["method"], s["reranked"], s["llm_calls"]) for s in provenance.trace] == [
        ("pointwise", 20, 20), ("listwise", 8, 1)]
    [listwise] = [j for j in provenance.judgments if j.agent == "listwise"]
    assert listwise.raw_reply.startswith("Reasoning: ") and "\nRanking: [" in listwise.raw_reply
    assert len(listwise.parsed) == 8 and provenance.repaired == provenance.fallbacks == 0
    with pytest.raises(InputError, match="listwise_depth 30 is larger than pointwise_depth 20"):
        Reranker("dear", engine=judge, params={"pointwise_depth": 20, "listwise_depth": 30})
