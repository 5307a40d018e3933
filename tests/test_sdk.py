"""The SDK on the real in-process engine."""

import asyncio

from rerankgraph.sdk import Reranker

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
