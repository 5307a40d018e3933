"""The retrieve-verify-refine loop over a real index (BM25 and MiniLM on a Cranfield
slice): exact call counts and stop reasons with the simulated judge at noise 0, every
malformed reply counted with a scripted engine, the graph embedded in a user's graph,
and bad input."""

from __future__ import annotations

import json
import operator
from typing import Annotated, TypedDict

import pytest
from langgraph.graph import END, START, StateGraph

from rerankgraph.agents.rvr import RvrParams
from rerankgraph.context import RerankContext
from rerankgraph.data import load_beir, read_qrels
from rerankgraph.errors import InputError
from rerankgraph.graphs import rvr
from rerankgraph.registry import get_method
from rerankgraph.sdk import Reranker
from rerankgraph.simulation import SimulatedJudge
from rerankgraph.types import Judgment, ParseStatus, Query, ScoredDoc
from tests.conftest import CRANFIELD
from tests.fakes import ScriptedEngine


@pytest.fixture(scope="module")
def setting(cranfield_slice, cranfield_slice_index):
    dataset = load_beir(cranfield_slice)
    qrels = read_qrels(CRANFIELD / "qrels.tsv")
    in_slice = set(cranfield_slice_index.doc_ids)
    relevant = {q: {d for d, g in docs.items() if g > 0} for q, docs in qrels.items()}
    found = [q for q in dataset.queries if relevant.get(q, set()) & in_slice]
    none = [q for q in dataset.queries if q in relevant and not relevant[q] & in_slice]
    return cranfield_slice_index, dataset, qrels, relevant, found, none


def _judge(dataset, qrels) -> SimulatedJudge:
    return SimulatedJudge(qrels, dataset.queries, dataset.corpus)


def _phases(result) -> list[str]:
    return [step["phase"] for step in result.provenance.trace]


def test_a_confident_first_round_stops_after_two_calls(setting):
    """The noise-free verifier calls a document relevant at half the top grade or more,
    and is as confident as the best grade it read. When that clears the threshold, the
    loop stops after one expansion and one verdict, with the relevant documents first."""
    index, dataset, qrels, _, found, _ = setting
    top_grade = max(g for docs in qrels.values() for g in docs.values())
    reranker = Reranker("rvr", engine=_judge(dataset, qrels), index=index)
    stopped_confident = 0
    for qid in found[:8]:
        result = reranker.search(dataset.queries[qid], k=20, query_id=qid)
        verify = next(s for s in result.provenance.trace if s["phase"] == "verify")
        grade = {d: qrels[qid].get(d, 0) / top_grade for d in verify["judged"]}
        assert verify["relevant"] == [d for d in verify["judged"] if grade[d] >= 0.5]
        assert verify["confidence"] == round(100 * max(grade.values()))
        if verify["confidence"] < 70:
            assert "refine" in _phases(result)
            continue
        stopped_confident += 1
        assert _phases(result) == ["expand", "retrieve", "verify", "stop"]
        assert result.provenance.llm_calls == 2
        assert result.provenance.trace[-1]["reason"] == (
            f"confident ({verify['confidence']:g} >= 70)")
        assert result.doc_ids[:len(verify["relevant"])] == verify["relevant"]
        assert len(result.doc_ids) == 20
    assert stopped_confident >= 3


def test_an_unanswerable_query_takes_every_round_and_says_why(setting):
    """A query with no relevant document in the corpus is never confident: with
    rounds=3 it takes every round, judging new documents each time, then says why."""
    index, dataset, qrels, _, _, none = setting
    reranker = Reranker("rvr", engine=_judge(dataset, qrels), index=index,
                        params={"rounds": 3, "variants": 2})
    qid = none[0]
    result = reranker.search(dataset.queries[qid], k=30, query_id=qid)
    trace = result.provenance.trace
    refines = [s for s in trace if s["phase"] == "refine"]
    verifies = [s for s in trace if s["phase"] == "verify"]
    rounds = trace[-1]["rounds"]
    # expand, then per round a verdict, and a refinement between rounds
    assert result.provenance.llm_calls == 1 + len(verifies) + len(refines)
    assert len(verifies) == rounds and all(v["confidence"] == 0 for v in verifies)
    judged = [d for v in verifies for d in v["judged"]]
    assert len(judged) == len(set(judged)) == 5 * rounds  # nothing judged twice
    if rounds == 3:
        assert trace[-1]["reason"] == "round limit 3 reached (confidence 0 < 70)"
        assert len(refines) == 2 and all(r["variants"] for r in refines)
    else:  # the simulated reflection can only repeat itself when the top is unchanged
        assert trace[-1]["reason"] == "the refined variants repeat earlier ones"
    assert [s["round"] for s in verifies] == list(range(1, rounds + 1))
    new_lists = [s["lists"] for s in trace if s["phase"] == "retrieve"]
    assert new_lists[0] == 2 * len(trace[0]["variants"])  # every variant, both retrievers
    assert new_lists == sorted(new_lists)  # lists accumulate over the rounds


def test_vic_fusion_makes_one_listwise_call_per_round(setting):
    index, dataset, qrels, _, found, _ = setting
    reranker = Reranker("rvr", engine=_judge(dataset, qrels), index=index,
                        params={"fusion": "vic", "fuse_depth": 12})
    qid = found[0]
    result = reranker.search(dataset.queries[qid], k=10, query_id=qid)
    rounds = result.provenance.trace[-1]["rounds"]
    vic_calls = [j for j in result.provenance.judgments if j.agent == "vic"]
    assert len(vic_calls) == rounds and all(len(j.doc_ids) == 12 for j in vic_calls)
    # the vic judge sees which lists found each candidate, at which rank
    prompt = _vic_prompt(reranker, dataset, qid)
    assert "bm25 · query #" in prompt and "dense · keywords 1 #" in prompt


def _vic_prompt(reranker, dataset, qid) -> str:
    engine = ScriptedEngine([_expansion(), "[1] > [2]", _verdict(90)])
    Reranker("rvr", engine=engine, index=reranker.index,
             params={"fusion": "vic", "fuse_depth": 2, "variants": 1}
             ).search(dataset.queries[qid], k=5, query_id=qid)
    return engine.requests[1].messages[-1]["content"]


def _expansion(keywords: str = "laminar flow heat transfer") -> str:
    return json.dumps({"keywords": [keywords]})


def _verdict(confidence: int, relevant: list[int] | None = None) -> str:
    return json.dumps({"relevant": relevant or [], "missing": "", "confidence": confidence})


def test_malformed_verdicts_and_reflections_end_the_loop_cleanly(setting):
    index, dataset, _, _, found, _ = setting
    engine = ScriptedEngine(["not json at all", "I think these are fine", "{broken"])
    result = Reranker("rvr", engine=engine, index=index, params={"rounds": 3}).search(
        dataset.queries[found[0]], k=10, query_id=found[0])
    statuses = [(j.agent, j.status) for j in result.provenance.judgments]
    assert statuses == [("rvr_expand", ParseStatus.FALLBACK), ("rvr_verify", ParseStatus.FALLBACK),
                        ("rvr_refine", ParseStatus.FALLBACK)]
    assert result.provenance.fallbacks == 3
    verify = next(s for s in result.provenance.trace if s["phase"] == "verify")
    assert verify["confidence"] == 0 and verify["relevant"] == []  # unreadable: not confident
    assert result.provenance.trace[-1]["reason"] == "the reflection could not be read"
    assert len(result.doc_ids) == 10  # the fused lists still rank


def test_refined_variants_that_repeat_end_the_loop(setting):
    index, dataset, _, _, found, _ = setting
    query = dataset.queries[found[0]]
    repeat = json.dumps({"reflection": "try again", "queries": [query.upper()]})
    engine = ScriptedEngine([_expansion(), _verdict(10), repeat])
    result = Reranker("rvr", engine=engine, index=index, params={"variants": 1}).search(
        query, k=10, query_id=found[0])
    assert result.provenance.llm_calls == 3 and result.provenance.fallbacks == 0
    assert result.provenance.trace[-1]["reason"] == "the refined variants repeat earlier ones"
    refine = next(s for s in result.provenance.trace if s["phase"] == "refine")
    assert refine["repeated"] == 1 and refine["variants"] == []


def test_empty_and_repeated_variants_are_dropped_and_counted(setting):
    index, dataset, _, _, found, _ = setting
    query = dataset.queries[found[0]]
    expansion = json.dumps({"keywords": ["   "], "passage": f"  {query.upper()} "})
    engine = ScriptedEngine([expansion, _verdict(95)])
    result = Reranker("rvr", engine=engine, index=index, params={"variants": 2}).search(
        query, k=10, query_id=found[0])
    expand = result.provenance.judgments[0]
    assert expand.status == ParseStatus.REPAIRED and "dropped 1 empty variant" in expand.note
    assert expand.parsed == [query.upper()] and result.provenance.repaired == 1
    # The passage repeats the query (case and spacing aside): searched once, counted.
    assert result.provenance.trace[0]["variants"] == [query]
    assert result.provenance.trace[0]["repeated"] == 1


def test_verdict_ids_out_of_range_are_repaired_and_counted(setting):
    index, dataset, _, _, found, _ = setting
    engine = ScriptedEngine([_expansion(), _verdict(95, [2, 2, 17])])
    result = Reranker("rvr", engine=engine, index=index, params={"variants": 1}).search(
        dataset.queries[found[0]], k=10, query_id=found[0])
    verify = next(s for s in result.provenance.trace if s["phase"] == "verify")
    assert verify["relevant"] == [verify["judged"][1]]
    assert result.provenance.repaired == 1 and result.doc_ids[0] == verify["judged"][1]


class UserState(TypedDict, total=False):
    query: Query
    judgments: Annotated[list[Judgment], operator.add]
    ranking: list[ScoredDoc]
    context_ids: list[str]


async def test_rvr_embeds_in_a_users_graph(setting):
    index, dataset, qrels, _, found, _ = setting

    def keep_top(state: UserState) -> dict:
        return {"context_ids": [d.doc_id for d in state["ranking"][:3]]}

    parent = StateGraph(UserState, context_schema=RerankContext)
    parent.add_node("search", rvr.build_graph())
    parent.add_node("keep_top", keep_top)
    parent.add_edge(START, "search")
    parent.add_edge("search", "keep_top")
    parent.add_edge("keep_top", END)
    qid = found[0]
    state = await parent.compile().ainvoke(
        {"query": Query(id=qid, text=dataset.queries[qid])},
        context=RerankContext(engine=_judge(dataset, qrels), params=RvrParams(k=10),
                              index=index))
    assert len(state["ranking"]) == 10
    assert state["context_ids"] == [d.doc_id for d in state["ranking"][:3]]
    assert [j.agent for j in state["judgments"]][:2] == ["rvr_expand", "rvr_verify"]


@pytest.mark.parametrize(("params", "message"), [
    ({"rounds": 0}, "rounds must be 1 or more, got 0"),
    ({"threshold": 101}, "threshold is a confidence from 0 to 100, got 101"),
    ({"threshold": -5}, "threshold is a confidence from 0 to 100"),
    ({"fusion": "combmnz"}, "fusion 'combmnz': use rrf or vic"),
    ({"min_rounds": 3, "rounds": 2}, "min_rounds 3 is more than rounds 2"),
])
def test_bad_parameters_are_one_line_errors(params, message):
    with pytest.raises(InputError, match=message) as caught:
        get_method("rvr").make_params(params)
    assert "\n" not in str(caught.value)


def test_rvr_without_an_index_says_what_to_give():
    with pytest.raises(InputError, match="searches a corpus"):
        Reranker("rvr", engine=ScriptedEngine(["{}"]))
