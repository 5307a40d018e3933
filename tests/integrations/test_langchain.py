"""The LangChain adapters inside real LangChain objects: an in-memory vector store over
DL19 passages embedded by MiniLM, LangChain's ContextualCompressionRetriever, and our
retriever bridge feeding a rerank method and rvr. The simulated judge (noise 0) makes
the expected orders exact; one test runs the real engine."""

from __future__ import annotations

import asyncio

import pytest
from langchain_classic.retrievers import ContextualCompressionRetriever
from langchain_core.documents import Document
from langchain_core.embeddings import Embeddings
from langchain_core.retrievers import BaseRetriever
from langchain_core.vectorstores import InMemoryVectorStore

from rerankgraph.data import read_qrels
from rerankgraph.integrations.langchain import LangChainRetriever, RerankgraphCompressor
from rerankgraph.retrievers.dense import shared_encoder
from rerankgraph.sdk import Reranker
from rerankgraph.simulation import SimulatedJudge
from tests.conftest import DL19


class MiniLM(Embeddings):
    def embed_documents(self, texts):
        return shared_encoder().encode(texts).tolist()

    def embed_query(self, text):
        return shared_encoder().encode([text])[0].tolist()


@pytest.fixture(scope="module")
def setting(dl19, dl19_run):
    """A vector store over the BM25 top-30 of DL19's first query (ids kept)."""
    qid = next(iter(dl19_run))
    ids = [e.doc_id for e in dl19_run[qid][:30]]
    store = InMemoryVectorStore(MiniLM())
    store.add_texts([dl19.corpus[d][1] for d in ids],
                    metadatas=[{"source": "msmarco", "pid": d} for d in ids], ids=ids)
    qrels = read_qrels(DL19 / "qrels.tsv")
    judge = SimulatedJudge(qrels, dl19.queries, dl19.corpus)
    return qid, dl19.queries[qid], store, qrels[qid], judge


def test_compressor_in_a_contextual_compression_retriever(setting):
    qid, query, store, grades, judge = setting
    base = store.as_retriever(search_kwargs={"k": 10})
    retrieved = base.invoke(query)
    pipeline = ContextualCompressionRetriever(
        base_compressor=RerankgraphCompressor("pointwise", engine=judge, top_n=4),
        base_retriever=base)
    kept = pipeline.invoke(query)
    assert len(kept) == 4
    ids = [d.metadata["pid"] for d in kept]
    expected = sorted((grades.get(d.metadata["pid"], 0) for d in retrieved), reverse=True)[:4]
    assert [grades.get(d, 0) for d in ids] == expected  # noise 0: the best grades first
    assert all(d.metadata["source"] == "msmarco" for d in kept)  # metadata kept
    scores = [d.metadata["relevance_score"] for d in kept]
    assert scores == sorted(scores, reverse=True)
    details = kept[0].metadata["rerankgraph"]
    assert details["method"] == "pointwise" and details["rank"] == 1
    assert details["llm_calls"] == 10 and details["fallbacks"] == 0


async def test_async_compression_matches_sync(setting):
    _, query, store, _, judge = setting
    documents = store.as_retriever(search_kwargs={"k": 6}).invoke(query)
    compressor = RerankgraphCompressor("setwise", engine=judge)
    sync = compressor.compress_documents(documents, query)
    asynchronous = await compressor.acompress_documents(documents, query)
    assert [d.id for d in sync] == [d.id for d in asynchronous]
    assert sorted(d.id for d in sync) == sorted(d.id for d in documents)


def test_a_langchain_retriever_as_a_first_stage(setting):
    qid, query, store, grades, judge = setting
    bridge = LangChainRetriever(store.as_retriever(search_kwargs={"k": 10}), name="minilm")
    result = Reranker("pointwise", engine=judge, retriever=bridge, depth=10).search(
        query, query_id=qid)
    assert len(result.doc_ids) == 10 and result.provenance.llm_calls == 10
    assert result.provenance.candidates_from == "retriever:minilm"
    assert [grades.get(d, 0) for d in result.doc_ids] == sorted(
        (grades.get(d, 0) for d in result.doc_ids), reverse=True)
    assert bridge.document(result.doc_ids[0])[1]  # the texts it returned are kept


async def test_the_bridge_sends_a_batch_of_queries_concurrently():
    class Slow(BaseRetriever):
        """Holds each query 0.2 s and records how many it holds at once."""

        held: int = 0
        most: int = 0

        def _get_relevant_documents(self, query, *, run_manager):
            raise AssertionError("the bridge's async search must not fall back to sync")

        async def _aget_relevant_documents(self, query, *, run_manager):
            self.held += 1
            self.most = max(self.most, self.held)
            await asyncio.sleep(0.2)
            self.held -= 1
            return [Document(page_content=f"about {query}", id=f"doc-{query}")]

    slow = Slow()
    found = await LangChainRetriever(slow, name="slow").asearch(
        {f"q{i}": f"topic {i}" for i in range(5)}, k=3)
    assert slow.most == 5
    assert found == {f"q{i}": [(f"doc-topic {i}", 1.0)] for i in range(5)}


def test_rvr_over_a_langchain_retriever(setting):
    qid, query, store, _, judge = setting
    bridge = LangChainRetriever(store.as_retriever(search_kwargs={"k": 10}), name="minilm")
    result = Reranker("rvr", engine=judge, retriever=bridge, params={"rounds": 1}).search(
        query, k=10, query_id=qid)
    retrieve = next(s for s in result.provenance.trace if s["phase"] == "retrieve")
    assert retrieve["lists"] == len(result.provenance.trace[0]["variants"])  # one retriever
    assert result.provenance.trace[-1]["reason"].startswith(("confident", "round limit 1"))
    assert 1 <= len(result.doc_ids) <= 10


def test_compressor_on_the_real_engine(setting, local_engine):
    _, query, store, _, _ = setting
    documents = store.as_retriever(search_kwargs={"k": 5}).invoke(query)
    kept = RerankgraphCompressor("pointwise", engine=local_engine, top_n=3).compress_documents(
        documents, query)
    assert len(kept) == 3 and {d.id for d in kept} <= {d.id for d in documents}
    assert kept[0].metadata["rerankgraph"]["model"].endswith("smollm2-135m-instruct")
    scores = [d.metadata["relevance_score"] for d in kept]
    assert scores == sorted(scores, reverse=True) and all(0 <= s <= 1 for s in scores)
