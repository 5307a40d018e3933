"""Pointwise and rubric graphs on the real in-process engine with real DL19 data."""

import operator
from typing import Annotated, TypedDict

import pytest
from langgraph.graph import END, START, StateGraph

from rerankgraph.context import RerankContext
from rerankgraph.registry import get_method
from rerankgraph.sdk import Reranker
from rerankgraph.types import Candidate, Judgment, Query, ScoredDoc


@pytest.mark.parametrize("method", ["pointwise", "rubric"])
def test_method_ranks_exactly_the_input_ids(method, local_engine, dl19_request):
    result = Reranker(method, engine=local_engine).rerank_batch([dl19_request])[0]
    input_ids = [c.doc_id for c in dl19_request.candidates]
    assert result.ok and sorted(result.doc_ids) == sorted(input_ids)
    scores = [d.score for d in result.ranking]
    assert scores == sorted(scores, reverse=True) and all(0 <= s <= 1 for s in scores)
    provenance = result.provenance
    assert provenance.method == method and provenance.llm_calls == 10
    assert provenance.prompt_tokens > 10 * 100
    assert provenance.completion_tokens >= 10 * (1 if method == "pointwise" else 5)
    assert provenance.repaired + provenance.fallbacks <= 10
    assert provenance.model.endswith("smollm2-135m-instruct")
    assert {j.doc_ids[0] for j in provenance.judgments} == set(input_ids)


class PipelineState(TypedDict, total=False):
    query: Query
    candidates: list[Candidate]
    judgments: Annotated[list[Judgment], operator.add]
    ranking: list[ScoredDoc]
    answer_context: list[str]


async def test_compiled_graph_embeds_as_a_subgraph(local_engine, dl19_request):
    """A user's RAG graph: rerank (our compiled graph as a node), then keep the top 3."""
    spec = get_method("pointwise")

    def keep_top(state: PipelineState) -> dict:
        texts = {c.doc_id: c.text for c in state["candidates"]}
        return {"answer_context": [texts[d.doc_id] for d in state["ranking"][:3]]}

    parent = StateGraph(PipelineState, context_schema=RerankContext)
    parent.add_node("rerank", spec.build_graph())
    parent.add_node("keep_top", keep_top)
    parent.add_edge(START, "rerank")
    parent.add_edge("rerank", "keep_top")
    parent.add_edge("keep_top", END)
    graph = parent.compile()

    state = await graph.ainvoke(
        {"query": dl19_request.query, "candidates": list(dl19_request.candidates)},
        context=RerankContext(engine=local_engine, params=spec.make_params({"batch_size": 4})))
    assert len(state["ranking"]) == 10 and len(state["judgments"]) == 10
    assert len(state["answer_context"]) == 3
    top_id = state["ranking"][0].doc_id
    assert state["answer_context"][0] == next(
        c.text for c in dl19_request.candidates if c.doc_id == top_id)
