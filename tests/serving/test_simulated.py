"""The simulated judge: exact without noise, noisy as configured, always labelled."""

import statistics

import pytest

from rerankgraph.sdk import Reranker, make_request
from rerankgraph.serving.simulated import SimulatedJudge, SimulationSettings

QUERIES = {"q1": "how do fleas live"}
CORPUS = {f"d{i}": ("", f"passage number {i} about topic {i} with some words") for i in range(8)}
QRELS = {"q1": {"d5": 3, "d2": 2, "d7": 1}}
IDEAL = ["d5", "d2", "d7"]


def judge(**settings):
    return SimulatedJudge(QRELS, QUERIES, CORPUS, SimulationSettings(**settings), seed=3)


def request():
    return make_request(QUERIES["q1"], [{"doc_id": d, "text": t} for d, (_, t) in CORPUS.items()],
                        query_id="q1")


@pytest.mark.parametrize("method", ["pointwise", "rubric", "listwise", "first", "groupwise",
                                    "setwise", "pairwise"])
def test_noise_free_simulation_is_exact_for_every_method(method):
    params = {"groupwise": {"group_size": 8, "interval": 8, "rounds": 1},
              "setwise": {"k": 3}, "pairwise": {"k": 3}}.get(method, {})
    result = Reranker(method, engine=judge(), params=params).rerank_batch([request()])[0]
    assert result.doc_ids[:3] == IDEAL, result.provenance.judgments[0].raw_reply
    assert result.provenance.simulated and result.provenance.model.startswith("SIMULATED(")
    assert result.provenance.fallbacks == 0


def test_flip_probability_flips_about_that_share_of_comparisons():
    engine = judge(flip_prob=0.3)
    reranker = Reranker("setwise", engine=engine, params={"num_child": 1, "k": 1})
    wrong = 0
    trials = 400
    for _ in range(trials):
        result = reranker.rerank_batch([make_request(QUERIES["q1"], [
            {"doc_id": "d5", "text": CORPUS["d5"][1]}, {"doc_id": "d0", "text": CORPUS["d0"][1]}],
            query_id="q1")])[0]
        wrong += result.doc_ids[0] != "d5"
    assert 0.22 < wrong / trials < 0.38


def test_score_noise_has_the_configured_spread():
    engine = judge(score_noise=0.2)
    reranker = Reranker("rubric", engine=engine)
    scores = [reranker.rerank_batch([make_request(QUERIES["q1"], [
        {"doc_id": "d2", "text": CORPUS["d2"][1]}], query_id="q1")])[0].ranking[0].score
        for _ in range(300)]
    assert abs(statistics.mean(scores) - 2 / 3) < 0.04
    assert 0.15 < statistics.pstdev(scores) < 0.25


def test_position_bias_favours_the_first_passage():
    engine = judge(position_bias=0.5)
    # Two unjudged passages: only the bias separates them.
    result = Reranker("setwise", engine=engine, params={"num_child": 1, "k": 1}).rerank_batch([
        make_request(QUERIES["q1"], [{"doc_id": "d0", "text": CORPUS["d0"][1]},
                                     {"doc_id": "d1", "text": CORPUS["d1"][1]}], query_id="q1")])[0]
    assert result.doc_ids[0] == "d0"
    flipped = Reranker("setwise", engine=engine, params={"num_child": 1, "k": 1}).rerank_batch([
        make_request(QUERIES["q1"], [{"doc_id": "d1", "text": CORPUS["d1"][1]},
                                     {"doc_id": "d0", "text": CORPUS["d0"][1]}], query_id="q1")])[0]
    assert flipped.doc_ids[0] == "d1"
