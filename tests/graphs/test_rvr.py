"""The retrieve-verify-refine loop over a real index (BM25 and MiniLM on a Cranfield
slice): exact call counts and stop reasons with the simulated judge at noise 0, every
malformed reply counted with a scripted engine, the graph embedded in a user's graph,
and bad input."""

from __future__ import annotations

import json
import math
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
from rerankgraph.retrievers.fusion import reciprocal_rank_fusion
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


def _path_top(index, text: str, depth: int = 5) -> list[str]:
    """A path's top documents, recomputed here: its query through bm25 and dense, RRF."""
    lists = [[d for d, _ in index.retriever(name).search({"q": text}, 100)["q"]]
             for name in ("bm25", "dense")]
    return [d for d, _ in reciprocal_rank_fusion(lists)[:depth]]


def test_the_verifier_scores_each_paths_top_and_a_confident_round_stops(setting):
    """At noise 0 the verifier scores each document grade / top grade * 100, and a path's
    confidence is the best score among its top 5. When every path clears 70, the loop
    stops after one expansion and one verifier call, the documents scored 50 or more
    first, best first."""
    index, dataset, qrels, _, found, _ = setting
    top_grade = max(g for docs in qrels.values() for g in docs.values())
    reranker = Reranker("rvr", engine=_judge(dataset, qrels), index=index)
    stopped_confident = 0
    for qid in found[:8]:
        result = reranker.search(dataset.queries[qid], k=20, query_id=qid)
        trace = result.provenance.trace
        verify = next(s for s in trace if s["phase"] == "verify")
        tops = [_path_top(index, text) for text in trace[0]["variants"]]
        assert verify["judged"] == list(dict.fromkeys(d for top in tops for d in top))
        grade = {d: round(100 * qrels[qid].get(d, 0) / top_grade) for d in verify["judged"]}
        assert verify["scores"] == grade
        assert list(verify["confidence"].values()) == [max(grade[d] for d in top)
                                                       for top in tops]
        if min(verify["confidence"].values()) < 70:
            assert "refine" in _phases(result)
            continue
        stopped_confident += 1
        assert _phases(result) == ["expand", "retrieve", "verify", "stop"]
        assert result.provenance.llm_calls == 2
        assert trace[-1]["reason"] == "confident (every path >= 70)"
        leading = sorted((d for d in grade if grade[d] >= 50), key=lambda d: -grade[d])
        assert result.doc_ids[:len(leading)] == leading
        assert len(result.doc_ids) == 20
    assert stopped_confident >= 3


def test_an_unanswerable_query_refines_every_path_each_round_and_says_why(setting):
    """A query with no relevant document in the corpus is never confident: every round
    each path is refined and replaced (the lists do not pile up), no document is scored
    twice, and the stop says why."""
    index, dataset, qrels, _, _, none = setting
    reranker = Reranker("rvr", engine=_judge(dataset, qrels), index=index,
                        params={"rounds": 3, "variants": 2})
    qid = none[0]
    result = reranker.search(dataset.queries[qid], k=30, query_id=qid)
    trace = result.provenance.trace
    refines = [s for s in trace if s["phase"] == "refine"]
    verifies = [s for s in trace if s["phase"] == "verify"]
    rounds = trace[-1]["rounds"]
    paths = len(trace[0]["variants"])
    assert result.provenance.llm_calls == 1 + len(verifies) + len(refines)
    assert len(verifies) == rounds
    assert all(set(v["confidence"].values()) == {0} for v in verifies)
    judged = [d for v in verifies for d in v["judged"]]
    assert len(judged) == len(set(judged))  # nothing scored twice
    for before, refine, after in zip(verifies, refines, verifies[1:], strict=False):
        # every uncertain path gets a new query, which takes its place (one that
        # repeats an earlier query is dropped, and its path kept)
        assert refine["replaced"] and set(refine["replaced"]) <= set(before["confidence"])
        assert len(refine["replaced"]) + refine["repeated"] == len(before["confidence"])
        assert list(after["confidence"]) == [refine["replaced"].get(p, p)
                                             for p in before["confidence"]]
    if rounds == 3:
        assert trace[-1]["reason"] == (f"round limit 3 reached ({paths} of {paths} paths "
                                       "below 70, lowest 0)")
    else:  # the simulated reflection can only repeat itself when the top is unchanged
        assert trace[-1]["reason"] == "the refined variants repeat earlier ones"
    lists = [s["lists"] for s in trace if s["phase"] == "retrieve"]
    assert lists == [2 * paths] * rounds  # replaced, not accumulated


def _scores(*values: int):
    """A verifier reply scoring the passages shown in order (repeating the last value)."""
    def reply(request) -> str:
        shown = request.prompt.count("<passage id=")
        return json.dumps({str(i + 1): values[min(i, len(values) - 1)]
                           for i in range(shown)})
    return reply


def test_per_candidate_scores_give_the_confidence_and_lead_the_ranking(setting):
    index, dataset, _, _, found, _ = setting
    qid = found[0]
    engine = ScriptedEngine([_scores(10, 80, 30, 0, 50)])
    result = Reranker("rvr", engine=engine, index=index, params={"variants": 0}).search(
        dataset.queries[qid], k=10, query_id=qid)
    verify = next(s for s in result.provenance.trace if s["phase"] == "verify")
    judged = _path_top(index, dataset.queries[qid])
    assert verify["judged"] == judged
    assert verify["scores"] == dict(zip(judged, [10, 80, 30, 0, 50], strict=True))
    assert verify["confidence"] == {"query": 80}
    assert result.provenance.llm_calls == 1  # confident: no refinement
    assert result.doc_ids[:2] == [judged[1], judged[4]]  # 80, then 50
    rest = [d for d in _path_top(index, dataset.queries[qid], 12) if d not in judged[1::3]]
    assert result.doc_ids[2:] == rest[:8]  # then the fused order


def test_a_refined_query_replaces_its_path(setting):
    """One uncertain path: the refined query takes its place, so round 2's fusion holds
    only the new query's two lists."""
    index, dataset, _, _, found, _ = setting
    qid, refined = found[0], "laminar boundary layer separation"
    reflection = json.dumps({"reflection": "too broad", "queries": [refined]})
    engine = ScriptedEngine([_scores(10), reflection, _scores(20)])
    result = Reranker("rvr", engine=engine, index=index,
                      params={"variants": 0, "rounds": 2}).search(
        dataset.queries[qid], k=10, query_id=qid)
    trace = result.provenance.trace
    refine = next(s for s in trace if s["phase"] == "refine")
    assert refine["replaced"] == {"query": "round 2 · 1"}
    assert [s["lists"] for s in trace if s["phase"] == "retrieve"] == [2, 2]
    assert list(trace[-2]["confidence"]) == ["round 2 · 1"]
    assert trace[-1]["reason"] == "round limit 2 reached (1 of 1 paths below 70, lowest 20)"
    assert result.doc_ids == _path_top(index, refined, 10)  # nothing scored 50: RRF order


def test_paths_are_fused_by_their_confidence():
    lists = {"sure": [["x", "y"]], "unsure": [["y", "z"], ["z"]]}
    fused = rvr.weighted_rrf(lists, {"sure": 1.0, "unsure": 0.2}, 60)
    expected = {"x": 1 / 61, "y": 1 / 62 + 0.2 / 61, "z": 0.2 / 62 + 0.2 / 61}
    assert [d for d, _ in fused] == ["y", "x", "z"]
    assert all(math.isclose(s, expected[d]) for d, s in fused)
    # equal weights: plain RRF
    plain = rvr.weighted_rrf(lists, {"sure": 1.0, "unsure": 1.0}, 60)
    assert plain == reciprocal_rank_fusion([["x", "y"], ["y", "z"], ["z"]], 60)


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
    engine = ScriptedEngine([_expansion(), _scores(90), "[1] > [2]"])
    Reranker("rvr", engine=engine, index=reranker.index,
             params={"fusion": "vic", "fuse_depth": 8, "variants": 1}
             ).search(dataset.queries[qid], k=5, query_id=qid)
    return engine.requests[2].messages[-1]["content"]


def _expansion(keywords: str = "laminar flow heat transfer") -> str:
    return json.dumps({"keywords": [keywords]})


def test_malformed_replies_end_the_loop_cleanly_and_are_counted(setting):
    index, dataset, _, _, found, _ = setting
    engine = ScriptedEngine(["not json at all", "I think these are fine", "{broken"])
    result = Reranker("rvr", engine=engine, index=index, params={"rounds": 3}).search(
        dataset.queries[found[0]], k=10, query_id=found[0])
    statuses = [(j.agent, j.status) for j in result.provenance.judgments]
    assert statuses == [("rvr_expand", ParseStatus.FALLBACK), ("rvr_verify", ParseStatus.FALLBACK),
                        ("rvr_refine", ParseStatus.FALLBACK)]
    assert result.provenance.fallbacks == 3
    verify = next(s for s in result.provenance.trace if s["phase"] == "verify")
    assert verify["confidence"] == {"query": 0} and verify["unread"] == 5
    assert result.provenance.trace[-1]["reason"] == "the reflection could not be read"
    assert len(result.doc_ids) == 10  # the fused lists still rank


def test_refined_variants_that_repeat_end_the_loop(setting):
    index, dataset, _, _, found, _ = setting
    query = dataset.queries[found[0]]
    repeat = json.dumps({"reflection": "try again",
                         "queries": [query.upper(), "laminar flow heat transfer"]})
    engine = ScriptedEngine([_expansion(), _scores(10), repeat])
    result = Reranker("rvr", engine=engine, index=index, params={"variants": 1}).search(
        query, k=10, query_id=found[0])
    assert result.provenance.llm_calls == 3 and result.provenance.fallbacks == 0
    assert result.provenance.trace[-1]["reason"] == "the refined variants repeat earlier ones"
    refine = next(s for s in result.provenance.trace if s["phase"] == "refine")
    assert refine["repeated"] == 2 and refine["variants"] == [] and refine["replaced"] == {}


def test_empty_and_repeated_variants_are_dropped_and_counted(setting):
    index, dataset, _, _, found, _ = setting
    query = dataset.queries[found[0]]
    expansion = json.dumps({"keywords": ["   "], "passage": f"  {query.upper()} "})
    engine = ScriptedEngine([expansion, _scores(95)])
    result = Reranker("rvr", engine=engine, index=index, params={"variants": 2}).search(
        query, k=10, query_id=found[0])
    expand = result.provenance.judgments[0]
    assert expand.status == ParseStatus.REPAIRED and "dropped 1 empty variant" in expand.note
    assert expand.parsed == [{"label": "answer", "text": query.upper()}]
    assert result.provenance.repaired == 1
    # The passage repeats the query (case and spacing aside): searched once, counted.
    assert result.provenance.trace[0]["variants"] == [query]
    assert result.provenance.trace[0]["repeated"] == 1


def test_a_keyword_rewrite_keeps_its_label_when_the_passage_is_empty(setting):
    index, dataset, _, _, found, _ = setting
    expansion = json.dumps({"keywords": ["laminar flow"], "passage": "  "})
    engine = ScriptedEngine([expansion, _scores(95)])
    result = Reranker("rvr", engine=engine, index=index, params={"variants": 2}).search(
        dataset.queries[found[0]], k=10, query_id=found[0])
    assert result.provenance.judgments[0].parsed == [{"label": "keywords 1",
                                                      "text": "laminar flow"}]


def test_scores_with_missing_or_unknown_ids_are_repaired_and_counted(setting):
    index, dataset, _, _, found, _ = setting
    engine = ScriptedEngine([json.dumps({"1": 40, "2": 95, "17": 80})])
    result = Reranker("rvr", engine=engine, index=index, params={"variants": 0}).search(
        dataset.queries[found[0]], k=10, query_id=found[0])
    verify = next(s for s in result.provenance.trace if s["phase"] == "verify")
    assert verify["scores"] == {verify["judged"][0]: 40, verify["judged"][1]: 95}
    assert verify["unread"] == 3 and verify["confidence"] == {"query": 95}
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
    ({"fusion": "combmnz"}, "fusion 'combmnz': use weighted, rrf or vic"),
    ({"min_rounds": 3, "rounds": 2}, "min_rounds 3 is more than rounds 2"),
])
def test_bad_parameters_are_one_line_errors(params, message):
    with pytest.raises(InputError, match=message) as caught:
        get_method("rvr").make_params(params)
    assert "\n" not in str(caught.value)


def test_rvr_without_an_index_says_what_to_give():
    with pytest.raises(InputError, match="searches a corpus"):
        Reranker("rvr", engine=ScriptedEngine(["{}"]))
