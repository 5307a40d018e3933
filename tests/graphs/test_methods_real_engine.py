"""Every method on the real in-process engine with real DL19 data."""

import operator
from typing import Annotated, TypedDict

import pytest
from langgraph.graph import END, START, StateGraph

from rerankgraph.context import RerankContext
from rerankgraph.registry import get_method, list_methods
from rerankgraph.sdk import Reranker
from rerankgraph.types import Candidate, Judgment, Query, ScoredDoc

METHODS = [m.name for m in list_methods() if m.kind == "rerank"]
# Calls each method must make on 10 candidates with default parameters.
EXPECTED_CALLS = {"pointwise": lambda n: n == 10, "rubric": lambda n: n == 10,
                  "listwise": lambda n: n == 1, "first": lambda n: n == 1, "vic": lambda n: n == 1,
                  "groupwise": lambda n: 6 <= n <= 12, "setwise": lambda n: 3 <= n <= 40,
                  "pairwise": lambda n: n % 2 == 0 and 18 <= n <= 120,
                  "cascade": lambda n: n == 10 + 5 + 1, "dear": lambda n: n == 10 + 1,
                  "grade": lambda n: n == 10}
# Stages kept small for the suite's time; the default cascade is benchmarked instead.
PARAMS = {"cascade": {"stages": "10@pointwise -> 5@rubric:reasoning_tokens=24 -> 5@listwise"}}


def _request_for(method, request):
    """vic fuses lists: each candidate says where two runs (BM25, and BM25 reversed) had it."""
    if not get_method(method).fuses:
        return request
    n = len(request.candidates)
    return request.model_copy(update={"candidates": tuple(
        c.model_copy(update={"metadata": {"found_by": [
            {"source": "bm25", "rank": i + 1}, {"source": "reversed", "rank": n - i}]}})
        for i, c in enumerate(request.candidates))})


@pytest.mark.parametrize("method", METHODS)
def test_method_ranks_exactly_the_input_ids(method, local_engine, dl19_request):
    dl19_request = _request_for(method, dl19_request)
    result = Reranker(method, engine=local_engine,
                      params=PARAMS.get(method)).rerank_batch([dl19_request])[0]
    input_ids = [c.doc_id for c in dl19_request.candidates]
    assert result.ok, result.error
    assert sorted(result.doc_ids) == sorted(input_ids) and len(result.doc_ids) == 10
    scores = [d.score for d in result.ranking]
    assert scores == sorted(scores, reverse=True)
    provenance = result.provenance
    assert provenance.method == method and EXPECTED_CALLS[method](provenance.llm_calls)
    assert provenance.llm_calls == len(provenance.judgments)
    assert provenance.prompt_tokens == sum(j.prompt_tokens for j in provenance.judgments) > 300
    assert provenance.completion_tokens >= provenance.llm_calls
    assert 0 <= provenance.repaired + provenance.fallbacks <= provenance.llm_calls
    assert provenance.model.endswith("smollm2-135m-instruct")
    assert {d for j in provenance.judgments for d in j.doc_ids} == set(input_ids)


class PipelineState(TypedDict, total=False):
    query: Query
    candidates: list[Candidate]
    judgments: Annotated[list[Judgment], operator.add]
    ranking: list[ScoredDoc]
    answer_context: list[str]


@pytest.mark.parametrize("method", METHODS)
async def test_compiled_graph_embeds_as_a_subgraph(method, local_engine, dl19_request):
    """A user's RAG graph: rerank (our compiled graph as a node), then keep the top 3."""
    spec = get_method(method)
    candidates = list(_request_for(method, dl19_request).candidates[:5])

    def keep_top(state: PipelineState) -> dict:
        texts = {c.doc_id: c.text for c in state["candidates"]}
        return {"answer_context": [texts[d.doc_id] for d in state["ranking"][:3]]}

    parent = StateGraph(PipelineState, context_schema=RerankContext)
    small = {"groupwise": {"rounds": 2}, "pointwise": {"batch_size": 2},
             **PARAMS}.get(method, {})
    parent.add_node("rerank", spec.graph(small, get_method))
    parent.add_node("keep_top", keep_top)
    parent.add_edge(START, "rerank")
    parent.add_edge("rerank", "keep_top")
    parent.add_edge("keep_top", END)
    graph = parent.compile()

    state = await graph.ainvoke(
        {"query": dl19_request.query, "candidates": candidates},
        context=RerankContext(engine=local_engine, params=spec.make_params(small)))
    assert sorted(d.doc_id for d in state["ranking"]) == sorted(c.doc_id for c in candidates)
    assert len(state["judgments"]) >= 1 and len(state["answer_context"]) == 3
    top_id = state["ranking"][0].doc_id
    assert state["answer_context"][0] == next(c.text for c in candidates if c.doc_id == top_id)


def test_a_reply_opened_by_the_method_is_continued_not_restarted(local_engine):
    from rerankgraph.serving.base import ChatRequest

    opened = ChatRequest(messages=({"role": "user", "content": "Rank [A] and [B]."},
                                   {"role": "assistant", "content": "["}))
    prompt = local_engine.tokenizer.decode(local_engine.render_prompt_ids(opened))
    assert prompt.endswith("<|im_start|>assistant\n[")  # no end of turn, no new header
