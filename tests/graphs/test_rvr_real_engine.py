"""rvr and vic on the real in-process engine with the embedded judge, over a real
index (BM25 and MiniLM on a Cranfield slice)."""

from __future__ import annotations

import re

import pytest

from rerankgraph.data import load_beir
from rerankgraph.sdk import Reranker
from rerankgraph.types import ParseStatus


@pytest.fixture
def recorded(local_engine, monkeypatch):
    """The real engine, with the requests it answers kept for inspection."""
    requests = []
    chat = local_engine.chat

    async def recording(batch):
        requests.extend(batch)
        return await chat(batch)

    monkeypatch.setattr(local_engine, "chat", recording)
    return local_engine, requests


@pytest.fixture(scope="module")
def first_query(cranfield_slice):
    return next(iter(load_beir(cranfield_slice).queries.items()))


def test_one_forced_refine_round_then_the_round_limit(recorded, first_query,
                                                      cranfield_slice_index):
    engine, requests = recorded
    qid, text = first_query
    reranker = Reranker("rvr", engine=engine, index=cranfield_slice_index,
                        params={"min_rounds": 2, "rounds": 2, "verify_depth": 3, "depth": 30,
                                "max_doc_tokens": 64})
    result = reranker.search(text, k=15, query_id=qid)
    trace = result.provenance.trace
    assert [s["phase"] for s in trace] == ["expand", "retrieve", "verify", "refine",
                                           "retrieve", "verify", "stop"]
    assert [j.agent for j in result.provenance.judgments] == [
        "rvr_expand", "rvr_verify", "rvr_refine", "rvr_verify"]
    assert [r.purpose for r in requests] == [j.agent for j in result.provenance.judgments]
    assert trace[-1]["rounds"] == 2
    assert re.match(r"round limit 2 reached \(\d+ of \d+ paths below 70|confident \(every path",
                    trace[-1]["reason"])
    # each path's top 3 verified, each document once over both rounds
    paths = len(trace[0]["variants"])
    verifies = [s for s in trace if s["phase"] == "verify"]
    assert [len(v["confidence"]) for v in verifies] == [paths, paths]  # a refined path replaces
    assert 3 <= len(verifies[0]["judged"]) <= 3 * paths
    judged = [d for v in verifies for d in v["judged"]]
    assert len(judged) == len(set(judged))
    refine = trace[3]
    assert refine["variants"] and refine["status"] in {s.value for s in ParseStatus}
    # the second round searched the refined paths through both retrievers; their old
    # lists left the fusion
    assert trace[4]["lists"] == trace[1]["lists"] == 2 * paths
    assert len(result.doc_ids) == 15 == len(set(result.doc_ids))
    assert result.provenance.prompt_tokens > 4 * 100
    assert result.provenance.fallbacks <= 4
    assert result.provenance.model.endswith("smollm2-135m-instruct")


def test_vic_over_two_retrievers_ranks_the_round_robin_pool(recorded, first_query,
                                                           cranfield_slice_index):
    """The paper's pool: rank r of each list in turn, repeats kept, in one call; the
    ranking holds each document once, at its first place."""
    engine, requests = recorded
    qid, text = first_query
    reranker = Reranker("vic", engine=engine, index=cranfield_slice_index,
                        retriever="bm25,dense", depth=6)
    result = reranker.search(text, k=6, query_id=qid)
    [judgment] = result.provenance.judgments
    pooled = list(dict.fromkeys(judgment.doc_ids))
    assert len(judgment.doc_ids) > len(pooled)  # a document both lists found comes twice
    assert sorted(result.doc_ids) == sorted(pooled) and len(result.doc_ids) == 6
    assert judgment.status in (ParseStatus.OK, ParseStatus.REPAIRED)
    prompt = requests[0].messages[-1]["content"]
    sources = re.findall(r"^\[(\d+)\] ranks: (.*)$", prompt, re.MULTILINE)
    assert [int(i) for i, _ in sources] == list(range(1, len(judgment.doc_ids) + 1))
    assert all(re.search(r"(bm25|dense) #\d+ \(\d of 2 lists\)", line) for _, line in sources)
    assert any("bm25 #" in line and "dense #" in line for _, line in sources)


def test_rvr_fuses_with_vic_under_the_embedded_judges_default_fusion(
        recorded, first_query, cranfield_slice_index):
    """The embedded judge fuses every rerank method with its first stage by default;
    the vic step inside rvr must take that method's full parameters, fusion included."""
    engine, _ = recorded
    qid, text = first_query
    result = Reranker("rvr", engine=engine, index=cranfield_slice_index,
                      params={"fusion": "vic", "variants": 1, "rounds": 1, "depth": 10,
                              "fuse_depth": 4, "verify_depth": 2, "max_doc_tokens": 32}
                      ).search(text, k=10, query_id=qid)
    # WISER's order: each path's top verified, then the paths fused (here by vic)
    assert [j.agent for j in result.provenance.judgments] == ["rvr_expand", "rvr_verify",
                                                              "vic"]
    assert len(result.provenance.judgments[2].doc_ids) == 4
    assert "fuse with vic" in [s["phase"] for s in result.provenance.trace]
    assert len(result.doc_ids) == 10
