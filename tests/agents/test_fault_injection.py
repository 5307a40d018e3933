"""Malformed replies and engine faults, injected with a scripted engine."""

import math

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
    # The measured P(yes)=0.88 first; then the replies without logprobs, below it in
    # their own order: "Yes", the fallback, "no".
    assert result.doc_ids == ["d0", "d2", "d1", "d3"]
    fallback = next(j for j in provenance.judgments if j.status == "fallback")
    assert fallback.doc_ids == ("d1",) and fallback.parsed == 0.5 and fallback.raw_reply == "???"


def test_rubric_malformed_replies_never_crash_the_batch():
    # d1's reply is empty, and so is its one retry: a fallback, ranked below the rest.
    engine = ScriptedEngine(["Query: q\nDocument: d\nRelevance: r\nScore: 90", "",
                             '{"score": 30, "reas', "<think>x</think>Score: 10", ""])
    result = Reranker("rubric", engine=engine).rerank("q", DOCS)
    assert result.doc_ids == ["d0", "d2", "d3", "d1"]
    assert [j.status for j in result.provenance.judgments] == [
        "ok", "fallback", "repaired", "repaired"]
    assert result.provenance.llm_calls == 5 and result.provenance.dropped_samples == 2


def test_strict_mode_turns_fallbacks_into_errors():
    engine = ScriptedEngine(["nonsense"])
    with pytest.raises(StrictModeError, match="4 fallback replies under --strict"):
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


def test_listwise_garbage_keeps_prior_order_and_is_counted():
    engine = ScriptedEngine(["", "[2] > [2] > [9]"])
    docs = [f"passage {i}" for i in range(15)]
    result = Reranker("listwise", engine=engine, params={"window": 10, "stride": 5}).rerank("q", docs)
    assert sorted(result.doc_ids) == sorted(f"d{i}" for i in range(15))
    assert result.provenance.llm_calls == 2
    assert (result.provenance.fallbacks, result.provenance.repaired) == (1, 1)
    # Window 1 covers d5..d14 and falls back; window 2 (d0..d9) moves d1 first, then d8.
    assert result.doc_ids[:2] == ["d1", "d8"]


def test_groupwise_unreadable_group_is_retried_once_then_left_out():
    replies = ['{"1": 9, "2": 1, "3": 5}', "junk", "still junk"]
    engine = ScriptedEngine(replies)
    params = {"group_size": 3, "interval": 3, "rounds": 2}
    result = Reranker("groupwise", engine=engine, params=params).rerank("q", ["a", "b", "c"])
    statuses = [j.status for j in result.provenance.judgments]
    assert sorted(statuses) == ["fallback", "fallback", "ok"]
    retry = engine.requests[2]
    assert retry.temperature > 0 and retry.seed is not None
    assert all(d.score > 0 for d in result.ranking)  # never zeroed


def test_setwise_and_pairwise_fall_back_without_crashing():
    for method in ("setwise", "pairwise"):
        engine = ScriptedEngine(["?"])
        result = Reranker(method, engine=engine, params={"k": 3}).rerank("q", DOCS)
        assert result.doc_ids == ["d0", "d1", "d2", "d3"]  # prior order kept
        assert result.provenance.fallbacks == result.provenance.llm_calls > 0


def test_strict_mode_fails_only_the_offending_query_in_a_batch():
    yes = Completion(texts=("yes",), logprobs=(({"yes": -0.1, "no": -2.0},),))
    engine = ScriptedEngine([lambda r: "garbage" if "bad query" in r.messages[1]["content"] else yes])
    results = Reranker("pointwise", engine=engine, strict=True).rerank_batch(
        [("good query", ["a", "b"]), ("bad query", ["a", "b"])])
    assert results[0].ok and not results[1].ok
    assert results[1].error_kind == "strict" and "2 fallback replies under --strict" in results[1].error
    assert results[1].provenance.fallbacks == 2  # what was judged is kept


def test_a_repaired_yes_never_outranks_a_measured_probability():
    def reply(request):
        if "Bananas" in request.prompt:  # no logprobs: the reply word alone is read
            return Completion(texts=("yes",))
        if "Eiffel" in request.prompt:
            return Completion(texts=("no",), logprobs=(({"yes": -2.0, "no": -0.2},),))
        return Completion(texts=("yes",), logprobs=(({"yes": -0.4, "no": -1.2},),))

    docs = ["Bananas are yellow.", "The Eiffel Tower is in Paris.", "Paris is in France."]
    result = Reranker("pointwise", engine=ScriptedEngine([reply])).rerank("France", docs)
    assert result.provenance.repaired == 1
    assert result.doc_ids == ["d2", "d1", "d0"]  # the repaired yes comes last
    scores = [d.score for d in result.ranking]
    assert scores == sorted(scores, reverse=True) and 0 < scores[-1] < scores[-2]


def test_a_repaired_yes_stays_below_a_measured_probability_of_zero():
    def reply(request):
        if "Bananas" in request.prompt:  # no logprobs: the reply word alone is read
            return Completion(texts=("yes",))
        # "yes" is absent from the alternatives: a measured P(yes) of exactly 0.
        return Completion(texts=("no",), logprobs=(({"no": 0.0},),))

    docs = ["Bananas are yellow.", "The Eiffel Tower is in Paris."]
    result = Reranker("pointwise", engine=ScriptedEngine([reply]),
                      params={"fusion": "none"}).rerank("France", docs)
    assert result.provenance.repaired == 1
    assert result.doc_ids == ["d1", "d0"]  # below the measured 0, not tied with it
    assert result.ranking[1].score < result.ranking[0].score == 0.0


@pytest.mark.parametrize(("rule", "order"), [("prp", ["d0", "d1"]), ("mean", ["d1", "d0"])])
def test_pairwise_calls_disagreeing_orders_a_tie_unless_asked_for_the_mean(rule, order):
    # Shown first, "Alpha" wins 0.6; shown first, "Beta" wins 0.9. The orders disagree:
    # PRP calls it a tie, which the first stage breaks (d0); the mean gives Alpha
    # (0.6 + 0.1) / 2 = 0.35, so Beta wins.
    def reply(request):
        first = 0.6 if request.prompt.index("Alpha") < request.prompt.index("Beta") else 0.9
        return Completion(texts=("A",), logprobs=(({"A": math.log(first),
                                                    "B": math.log(1 - first)},),))

    engine = ScriptedEngine([reply])
    result = Reranker("pairwise", engine=engine, params={
        "k": 1, "rule": rule, "fusion": "none"}).rerank("q", ["Alpha", "Beta"])
    assert result.doc_ids == order
    assert result.provenance.llm_calls == 2 and result.provenance.repaired == 0
    shown_first = [r.prompt.index("Alpha") < r.prompt.index("Beta") for r in engine.requests]
    assert sorted(shown_first) == [False, True]  # both orders were asked
