"""The fusion node every rerank graph ends with, on the simulated judge: the fused
ranking is the library's fusion of the unfused one, and provenance names it."""

from __future__ import annotations

import math
import statistics

import pytest

from rerankgraph.data import build_job, read_qrels
from rerankgraph.graphs.fusion import GENERAL_WEIGHT, JUDGES, fusion_label, judge_weight
from rerankgraph.registry import get_method, list_methods
from rerankgraph.sdk import Reranker
from rerankgraph.simulation import SimulatedJudge, SimulationSettings
from tests.conftest import DL19

QRELS = read_qrels(DL19 / "qrels.tsv")
METHODS = [m.name for m in list_methods() if m.kind == "rerank" and not m.fuses]


@pytest.fixture(scope="module")
def setting(dl19, dl19_run):
    request = build_job(dl19, dl19_run, depth=20, queries=1).requests[0]
    # A fresh judge per run: the same seed then draws the same noise.
    return request, lambda: SimulatedJudge(QRELS, dl19.queries, dl19.corpus,
                                           SimulationSettings(score_noise=0.3), seed=1)


def by_formula(candidates, ranking, fusion):
    """The fused order written out from the formulas (not by the code under test):
    interpolate w*judge + (1-w)*BM25 and combsum judge + BM25 on normalised scores, rrf
    w/(k + judge rank) + (1-w)/(k + BM25 rank); ties to the better judge rank."""
    weight, k = fusion.get("fusion_weight", GENERAL_WEIGHT), fusion.get("rrf_k", 60)
    bm25 = {c.doc_id: c.score for c in candidates}
    judge = {d.doc_id: d.score for d in ranking}
    assert set(judge) == set(bm25) and all(math.isfinite(v) for v in judge.values())

    def norm(scores):
        values = list(scores.values())
        if fusion.get("fusion_norm", "minmax") == "zscore":
            mean, sd = statistics.fmean(values), statistics.pstdev(values)
            return {d: (v - mean) / sd if sd else 0.0 for d, v in scores.items()}
        low, high = min(values), max(values)
        return {d: (v - low) / (high - low) if high > low else 0.0 for d, v in scores.items()}

    judge_rank = {d.doc_id: i + 1 for i, d in enumerate(ranking)}
    bm25_rank = {c.doc_id: i + 1 for i, c in enumerate(candidates)}
    if fusion["fusion"] == "rrf":
        fused = {d: weight / (k + judge_rank[d]) + (1 - weight) / (k + bm25_rank[d])
                 for d in judge}
    else:
        j, b = norm(judge), norm(bm25)
        share = weight if fusion["fusion"] == "interpolate" else 0.5
        fused = {d: share * j[d] + (1 - share) * b[d] for d in judge}  # combsum: half the sum
    return sorted(fused, key=lambda d: (-fused[d], judge_rank[d], bm25_rank[d]))


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize(("fusion", "label"), [
    ({"fusion": "interpolate", "fusion_weight": 0.3}, "interpolate(minmax, judge weight 0.3)"),
    ({"fusion": "rrf", "rrf_k": 10}, f"rrf(k=10, judge weight {GENERAL_WEIGHT:g})"),
    ({"fusion": "combsum", "fusion_norm": "zscore"}, "combsum(zscore)")])
def test_every_rerank_method_ends_with_the_fusion_it_is_given(method, fusion, label, setting):
    request, judge = setting
    spec = get_method(method)
    fields = spec.params.model_fields
    plain = Reranker(method, engine=judge(), params={"fusion": "none"}).rerank_batch([request])[0]
    fused = Reranker(method, engine=judge(), params=fusion).rerank_batch([request])[0]
    assert plain.provenance.fusion == "none" and fused.provenance.fusion == label
    assert fused.doc_ids == by_formula(request.candidates, plain.ranking, fusion)
    assert fused.doc_ids != plain.doc_ids  # the first stage moved something
    assert {"fusion", "fusion_weight", "fusion_norm", "rrf_k"} <= set(fields)


def test_the_judge_weight_and_default_fusion_are_chosen_per_model():
    embedded = "/root/.cache/rerankgraph/models/smollm2-135m-instruct/"
    assert judge_weight(embedded) == JUDGES["smollm2-135m-instruct"].weight == 0.1
    assert judge_weight("Qwen/Qwen3-8B") == GENERAL_WEIGHT == 0.6
    listwise, pointwise = get_method("listwise"), get_method("pointwise")
    # Unset: the embedded judge fuses every method; another model runs the method's own
    # default (none for the built-in methods).
    assert fusion_label(listwise.make_params({}), embedded) == (
        "interpolate(minmax, judge weight 0.1)", 0.1)
    assert fusion_label(listwise.make_params({}), "Qwen/Qwen3-8B")[0] == "none"
    assert fusion_label(pointwise.make_params({}), "Qwen/Qwen3-8B")[0] == "none"
    # The pulled judges' measured defaults, looked up by their cached folder's name.
    pulled = "/root/.cache/rerankgraph/models/qwen2.5-coder-{}"
    assert fusion_label(pointwise.make_params({}), pulled.format("1.5b")) == (
        "combsum(minmax)", 0.4)
    assert fusion_label(listwise.make_params({}), pulled.format("0.5b")) == (
        "interpolate(minmax, judge weight 0.3)", 0.3)
    # Set: what the caller asked for, whatever the model.
    assert fusion_label(listwise.make_params({"fusion": "none"}), embedded)[0] == "none"
    assert fusion_label(pointwise.make_params({"fusion": "rrf", "fusion_weight": 0.3}),
                        embedded)[0] == "rrf(k=60, judge weight 0.3)"


def test_combsum_takes_no_weight():
    with pytest.raises(Exception, match="combsum sums the two lists unweighted"):
        get_method("pointwise").make_params({"fusion": "combsum", "fusion_weight": 0.5})
