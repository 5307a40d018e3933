"""The SDK on the real in-process engine, and the counts its provenance keeps."""

import asyncio

import pytest

from rerankgraph.sdk import Reranker, left_as_given
from rerankgraph.types import Judgment, ParseStatus
from tests.fakes import ScriptedEngine

DOCS = ["The Eiffel Tower is in Paris, the capital of France.",
        "Bananas are rich in potassium.",
        "Paris is the capital and largest city of France."]


def test_rerank_strings_with_provenance(local_engine):
    result = Reranker("pointwise", engine=local_engine).rerank("What is the capital of France?", DOCS)
    assert sorted(result.doc_ids) == ["d0", "d1", "d2"]
    assert result.provenance.llm_calls == 3 and result.provenance.wall_time_s > 0


def test_async_and_batch_agree_with_sync(local_engine):
    reranker = Reranker("pointwise", engine=local_engine)
    sync = reranker.rerank("capital of France", DOCS)
    from_async = asyncio.run(reranker.arerank("capital of France", DOCS))
    batch = reranker.rerank_batch([("capital of France", DOCS), ("potassium fruit", DOCS)])
    assert sync.doc_ids == from_async.doc_ids == batch[0].doc_ids
    assert [r.query_id for r in batch] == ["q0", "q0"] and sorted(batch[1].doc_ids) == ["d0", "d1", "d2"]
    # A different query gives different scores for the same documents.
    assert [d.score for d in batch[1].ranking] != [d.score for d in batch[0].ranking]
    assert [d.score for d in sync.ranking] == [d.score for d in batch[0].ranking]


def _judged(doc_ids, parsed, status=ParseStatus.OK):
    return Judgment(agent="any", doc_ids=tuple(doc_ids), raw_reply="", parsed=parsed,
                    status=status)


@pytest.mark.parametrize(("judgment", "kept"), [
    (_judged("abc", ["a", "b", "c"]), True),  # an identity permutation
    (_judged("abc", ["b", "a", "c"]), False),
    (_judged("abc", "a"), True),  # the first of a set picked
    (_judged("abc", "c"), False),
    (_judged("abc", {"a": 0.9, "b": 0.5, "c": 0.5}), True),  # scores never rise
    (_judged("abc", {"a": 0.1, "b": 0.5, "c": 0.5}), False),
    (_judged("abc", ["a", "b", "c"], ParseStatus.FALLBACK), False),  # counted as fallback
    # A pair: the probability that the first shown wins.
    (_judged("a", 0.7), False), (_judged("ab", 0.7), True), (_judged("ab", 0.5), False),
    (_judged("ab", 0.2), False)])
def test_orders_left_as_shown_are_recognised(judgment, kept):
    assert left_as_given(judgment) is kept


def test_a_listwise_judge_that_changes_nothing_is_counted():
    identity = ScriptedEngine([lambda request: " > ".join(
        f"[{i + 1}]" for i in range(request.messages[-1]["content"].count("<passage ")))])
    result = Reranker("listwise", engine=identity).rerank(
        "q", [f"passage {i}" for i in range(30)])
    assert result.provenance.llm_calls == 2 and result.provenance.unchanged == 2
    assert result.doc_ids == [f"d{i}" for i in range(30)]
