"""The LlamaIndex postprocessor in a real retriever + postprocessor query engine (no
LLM synthesizer: NoText), over DL19 passages. The simulated judge
(noise 0) makes the order exact; one test runs the real engine."""

from __future__ import annotations

import pytest
from llama_index.core import SummaryIndex
from llama_index.core.llms import MockLLM
from llama_index.core.query_engine import RetrieverQueryEngine
from llama_index.core.response_synthesizers.no_text import NoText
from llama_index.core.schema import NodeWithScore, TextNode

from rerankgraph.data import read_qrels
from rerankgraph.errors import InputError
from rerankgraph.integrations.llamaindex import RerankgraphPostprocessor
from rerankgraph.simulation import SimulatedJudge
from tests.conftest import DL19


@pytest.fixture(scope="module")
def setting(dl19, dl19_run):
    qid = next(iter(dl19_run))
    ids = [e.doc_id for e in dl19_run[qid][:12]]
    nodes = [TextNode(text=dl19.corpus[d][1], id_=d, metadata={"pid": d}) for d in ids]
    qrels = read_qrels(DL19 / "qrels.tsv")
    return dl19.queries[qid], nodes, qrels[qid], SimulatedJudge(qrels, dl19.queries,
                                                                 dl19.corpus)


def _engine(nodes, postprocessor):
    retriever = SummaryIndex(nodes).as_retriever()  # every node, no embeddings needed
    return RetrieverQueryEngine(retriever, response_synthesizer=NoText(llm=MockLLM()),
                                node_postprocessors=[postprocessor])


def test_postprocessor_in_a_query_engine(setting):
    query, nodes, grades, judge = setting
    postprocessor = RerankgraphPostprocessor("listwise", engine=judge, top_n=5,
                                             params={"window": 6, "stride": 3})
    response = _engine(nodes, postprocessor).query(query)
    ids = [n.node.node_id for n in response.source_nodes]
    assert len(ids) == 5
    assert [grades.get(d, 0) for d in ids] == sorted(
        (grades.get(n.node_id, 0) for n in nodes), reverse=True)[:5]
    scores = [n.score for n in response.source_nodes]
    assert scores == sorted(scores, reverse=True)
    assert response.source_nodes[0].node.metadata["pid"] == ids[0]
    provenance = postprocessor.last_provenance
    assert provenance.method == "listwise" and provenance.llm_calls == 3  # windows at N=12


async def test_async_postprocessing_and_missing_query(setting):
    query, nodes, _, judge = setting
    postprocessor = RerankgraphPostprocessor("pointwise", engine=judge)
    scored = [NodeWithScore(node=n, score=0.0) for n in nodes[:4]]
    reranked = await postprocessor.apostprocess_nodes(scored, query_str=query)
    assert sorted(n.node.node_id for n in reranked) == sorted(n.node_id for n in nodes[:4])
    assert postprocessor.postprocess_nodes([], query_str=query) == []
    with pytest.raises(InputError, match="needs the query"):
        postprocessor.postprocess_nodes(scored)


def test_postprocessor_on_the_real_engine(setting, local_engine):
    query, nodes, _, _ = setting
    postprocessor = RerankgraphPostprocessor("pointwise", engine=local_engine, top_n=2)
    response = _engine(nodes[:4], postprocessor).query(query)
    assert len(response.source_nodes) == 2
    assert postprocessor.last_provenance.llm_calls == 4
    assert postprocessor.last_provenance.model.endswith("smollm2-135m-instruct")
