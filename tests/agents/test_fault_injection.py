"""Malformed replies and engine faults, injected with a scripted engine."""

import pytest

from rerankgraph.errors import EngineError, StrictModeError
from rerankgraph.sdk import Reranker
from rerankgraph.serving.base import Completion
from tests.fakes import ScriptedEngine

DOCS = ["alpha passage", "beta passage", "gamma passage", "delta passage"]


def test_pointwise_unreadable_replies_fall_back_and_are_counted():
    yes = Completion(texts=("yes",), logprobs=(({"yes": -0.1, "no": -2.0},),))
    engine = ScriptedEngine([yes, "???", "Yes", "no"])
    result = Reranker("pointwise", engine=engine).rerank("q", DOCS)
    provenance = result.provenance
    assert sorted(result.doc_ids) == ["d0", "d1", "d2", "d3"]
    assert (provenance.llm_calls, provenance.fallbacks, provenance.repaired) == (4, 1, 2)
    assert result.doc_ids[0] == "d2"  # "Yes" read as 1.0 beats P(yes)=0.85
    assert result.doc_ids[-1] == "d3"
    fallback = next(j for j in provenance.judgments if j.status == "fallback")
    assert fallback.doc_ids == ("d1",) and fallback.parsed == 0.5 and fallback.raw_reply == "???"


def test_rubric_malformed_replies_never_crash_the_batch():
    engine = ScriptedEngine(['{"reasoning": "ok", "score": 90}', "", '{"score": 30, "reas',
                             "<think>x</think>{\"reasoning\": \"r\", \"score\": 10}"])
    result = Reranker("rubric", engine=engine).rerank("q", DOCS)
    assert result.doc_ids == ["d0", "d1", "d2", "d3"]
    assert [j.status for j in result.provenance.judgments] == [
        "ok", "fallback", "repaired", "repaired"]


def test_strict_mode_turns_fallbacks_into_errors():
    engine = ScriptedEngine(["nonsense"])
    with pytest.raises(StrictModeError, match="4 fallback replies under strict mode"):
        Reranker("pointwise", engine=engine, strict=True).rerank("q", DOCS)


def test_engine_failure_is_a_failed_query_not_a_score():
    engine = ScriptedEngine([EngineError("http://127.0.0.1:9 is unreachable (gave up after 4 attempts)")])
    reranker = Reranker("pointwise", engine=engine)
    with pytest.raises(EngineError, match="unreachable"):
        reranker.rerank("q", DOCS)
    results = reranker.rerank_batch([("q1", DOCS)])
    assert results[0].error and not results[0].ranking and results[0].provenance is None


def test_documents_are_truncated_to_the_budget_and_counted():
    seen = []

    def capture(request):
        seen.append(request.messages[1]["content"])
        return Completion(texts=("no",), logprobs=(({"no": -0.1, "yes": -3.0},),))

    engine = ScriptedEngine([capture])
    long_doc = "word " * 5000
    result = Reranker("pointwise", engine=engine, params={"max_doc_tokens": 100}).rerank(
        "q", [long_doc, "short"])
    assert result.provenance.truncated_docs == 1
    assert max(len(s) for s in seen) < 100 + len(seen[1]) + 10


def test_candidates_fan_out_in_batches():
    engine = ScriptedEngine(["no"])
    result = Reranker("pointwise", engine=engine, params={"batch_size": 3}).rerank(
        "q", [f"doc {i}" for i in range(10)])
    assert result.provenance.llm_calls == 10 and len(result.ranking) == 10
    assert engine.stats.requests == 10
