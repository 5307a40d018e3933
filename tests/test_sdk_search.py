"""SDK search over a corpus index: search methods, and rerank methods that retrieve
their own candidates first."""

from __future__ import annotations

import sys

import pytest

from rerankgraph import Reranker
from rerankgraph.errors import InputError
from rerankgraph.types import Query, SearchRequest


def test_search_method_returns_the_retrievers_top_k_without_a_model(cranfield_slice_index):
    reranker = Reranker("retrieve", index=cranfield_slice_index)
    result = reranker.search("how can one detect transition phenomena in boundary layers", k=5)
    expected = cranfield_slice_index.bm25.search(
        {"q": "how can one detect transition phenomena in boundary layers"}, 5)["q"]
    assert [(d.doc_id, d.score) for d in result.ranking] == expected
    assert result.provenance.candidates_from == "method:retrieve(bm25)"
    assert result.provenance.llm_calls == 0 and result.provenance.model == "none"
    assert "vllm" not in sys.modules


def test_search_batch_and_async_forms(cranfield_slice_index):
    reranker = Reranker("retrieve", index=cranfield_slice_index, retriever="hybrid")
    results = reranker.search_batch({"34": "wind tunnel interference effects",
                                     "x": "qqqq zzzz"}, k=3)
    by_id = {r.query_id: r for r in results}
    assert len(by_id["34"].ranking) == 3 and by_id["34"].provenance.candidates_from == (
        "method:retrieve(hybrid(bm25+dense))")
    requests = [SearchRequest(query=Query(id="a", text="heat transfer"), k=2)]
    assert [len(r.ranking) for r in reranker.search_batch(requests)] == [2]

    import asyncio

    result = asyncio.run(reranker.asearch("heat transfer", k=4))
    assert len(result.ranking) == 4


def test_a_plugged_in_retriever_works_as_the_protocol_says():
    class Catalogue:
        name = "catalogue"

        def search(self, queries, k):
            return {q: [("doc-b", 2.0), ("doc-a", 1.0)][:k] for q in queries}

    result = Reranker("retrieve", retriever=Catalogue()).search("anything", k=1)
    assert result.doc_ids == ["doc-b"]
    assert result.provenance.candidates_from == "method:retrieve(catalogue)"


def test_search_inputs_are_checked(cranfield_slice_index):
    with pytest.raises(InputError, match="searches a corpus: give index="):
        Reranker("retrieve")
    reranker = Reranker("retrieve", index=cranfield_slice_index)
    with pytest.raises(InputError, match="k must be a positive number"):
        reranker.search("wing", k=0)
    with pytest.raises(InputError, match="depth must be a positive number"):
        Reranker("pointwise", index=cranfield_slice_index, depth=-1)
    with pytest.raises(InputError, match="--retriever 'sparse'"):
        Reranker("retrieve", index=cranfield_slice_index, retriever="sparse")
    with pytest.raises(InputError, match="does not exist"):
        Reranker("retrieve", index="/nonexistent/index")


def test_a_rerank_method_with_a_query_that_matches_nothing_comes_back_empty(
        cranfield_slice_index):
    """One unmatched query in a batch returns an empty ranking with no LLM call; the
    other query is still reranked (a scripted judge answers yes to everything)."""
    from rerankgraph.serving.base import Completion
    from tests.fakes import ScriptedEngine

    yes = Completion(texts=("yes",), logprobs=(({"yes": -0.1, "no": -2.4},),))
    engine = ScriptedEngine([yes])
    reranker = Reranker("pointwise", engine=engine, index=cranfield_slice_index, depth=3)
    results = {r.query_id: r for r in reranker.search_batch(
        {"ok": "boundary layer transition", "none": "qqqq zzzz"}, k=3)}
    assert results["none"].ok and results["none"].ranking == ()
    assert results["none"].provenance.llm_calls == 0
    assert len(results["ok"].ranking) == 3 and results["ok"].provenance.llm_calls == 3
    assert results["ok"].provenance.candidates_from == "retriever:bm25"
    assert len(engine.requests) == 3
