"""RRF, CombSUM and sightings on hand-computed cases."""

from __future__ import annotations

import pytest

from rerankgraph.errors import InputError
from rerankgraph.retrievers.fusion import (
    Sighting,
    comb_sum,
    found_by_metadata,
    fuse,
    fuse_with_first_stage,
    fuse_with_sightings,
    normalised,
    reciprocal_rank_fusion,
    sightings,
)
from rerankgraph.types import Candidate, ScoredDoc


def test_rrf_by_hand():
    # k=60: a 1/61, b 1/62 + 1/61, c 1/63, d 1/62
    fused = reciprocal_rank_fusion([["a", "b", "c"], ["b", "d"]], k=60)
    assert [d for d, _ in fused] == ["b", "a", "d", "c"]
    assert fused[0][1] == pytest.approx(1 / 62 + 1 / 61)
    assert dict(fused)["c"] == pytest.approx(1 / 63)


def test_combsum_normalises_each_list_then_sums():
    # A: a 10 -> 1, b 6 -> 0.5, c 2 -> 0. B: b 3 -> 1, d 1 -> 0.
    fused = comb_sum([[("a", 10.0), ("b", 6.0), ("c", 2.0)], [("b", 3.0), ("d", 1.0)]])
    assert fused == [("b", 1.5), ("a", 1.0), ("d", 0.0), ("c", 0.0)]  # d's best rank is 2


def test_combsum_gives_a_flat_list_full_marks_and_skips_empty_ones():
    assert comb_sum([[("x", 5.0), ("y", 5.0)], []]) == [("x", 1.0), ("y", 1.0)]


def test_combsum_and_rrf_disagree_where_scores_matter():
    """One list is sure of its first document, the other is nearly flat: CombSUM
    follows the sure list, RRF sees only ranks and ties them."""
    sure = [("p", 100.0), ("q", 1.0), ("r", 0.0)]
    flat = [("q", 1.0), ("p", 0.99), ("r", 0.98)]
    assert [d for d, _ in comb_sum([sure, flat])][:1] == ["p"]
    rrf = dict(reciprocal_rank_fusion([["p", "q", "r"], ["q", "p", "r"]]))
    assert rrf["p"] == rrf["q"]


def test_sightings_list_each_source_best_rank_first():
    found = sightings({"bm25": [("a", 3.0), ("b", 2.0)], "dense": [("b", 0.9), ("c", 0.8)]})
    assert found == {"a": [Sighting("bm25", 1)], "b": [Sighting("dense", 1), Sighting("bm25", 2)],
                     "c": [Sighting("dense", 2)]}


def test_fuse_by_name_and_bad_names():
    runs = {"A": [("a", 2.0), ("b", 1.0)], "B": [("b", 5.0)]}
    assert [d for d, _ in fuse(runs, "rrf")] == ["b", "a"]
    # A: a -> 1, b -> 0; B is flat: b -> 1. A tie, with equal best ranks: by doc id.
    assert fuse(runs, "combsum") == [("a", 1.0), ("b", 1.0)]
    with pytest.raises(InputError, match="fusion 'borda': use rrf or combsum"):
        fuse(runs, "borda")
    with pytest.raises(InputError, match="RRF constant k must be 0 or more"):
        reciprocal_rank_fusion([["a"]], k=-1)


def test_fuse_with_sightings_gives_the_found_by_metadata():
    runs = {"bm25": [("a", 3.0), ("b", 2.0)], "dense": [("b", 0.9)]}
    fused, found_by = fuse_with_sightings(runs)
    assert [d for d, _ in fused] == ["b", "a"]
    assert found_by == found_by_metadata(runs) == {
        "a": [{"source": "bm25", "rank": 1}],
        "b": [{"source": "dense", "rank": 1}, {"source": "bm25", "rank": 2}]}


# -- a judge's ranking fused with the first stage -------------------------------------
FIRST = [Candidate(doc_id="a", text="t", score=10.0, rank=1),
         Candidate(doc_id="b", text="t", score=8.0, rank=2),
         Candidate(doc_id="c", text="t", score=4.0, rank=3)]
JUDGED = [ScoredDoc(doc_id="c", score=0.9), ScoredDoc(doc_id="a", score=0.5),
          ScoredDoc(doc_id="b", score=0.1)]


def _fused(how, candidates=FIRST, ranking=JUDGED, **options):
    return [(d.doc_id, round(d.score, 4))
            for d in fuse_with_first_stage(candidates, ranking, how, **options)]


def test_interpolation_by_hand():
    # judge min-max: c 1, a 0.5, b 0; first stage (10, 8, 4): a 1, b 0.6667, c 0
    assert _fused("interpolate", weight=0.5) == [("a", 0.75), ("c", 0.5), ("b", 0.3333)]
    assert _fused("interpolate", weight=0.8) == [("c", 0.8), ("a", 0.6), ("b", 0.1333)]
    assert _fused("interpolate", weight=1.0) == [("c", 1.0), ("a", 0.5), ("b", 0.0)]
    assert _fused("interpolate", weight=0.0) == [("a", 1.0), ("b", 0.6667), ("c", 0.0)]


def test_combsum_and_rrf_by_hand():
    assert _fused("combsum") == [("a", 1.5), ("c", 1.0), ("b", 0.6667)]
    # judge ranks c 1, a 2, b 3; first-stage ranks a 1, b 2, c 3; k=60, weight 0.5
    assert _fused("rrf", weight=0.5) == [("a", round(0.5 / 62 + 0.5 / 61, 4)),
                                         ("c", round(0.5 / 61 + 0.5 / 63, 4)),
                                         ("b", round(0.5 / 63 + 0.5 / 62, 4))]
    assert [d for d, _ in _fused("rrf", weight=0.9, rrf_k=0)] == ["c", "a", "b"]


def test_none_returns_the_judge_ranking_unchanged():
    assert fuse_with_first_stage(FIRST, JUDGED, "none") == JUDGED


def test_a_tie_goes_to_the_better_judge_rank_then_first_stage_rank():
    candidates = [Candidate(doc_id="x", text="t", score=0.0, rank=2),
                  Candidate(doc_id="y", text="t", score=1.0, rank=1)]
    ranking = [ScoredDoc(doc_id="x", score=1.0), ScoredDoc(doc_id="y", score=0.0)]
    assert _fused("interpolate", candidates, ranking, weight=0.5) == [("x", 0.5), ("y", 0.5)]
    flat = [ScoredDoc(doc_id="x", score=0.3), ScoredDoc(doc_id="y", score=0.3)]
    # judge ranks x 1, y 2 and first-stage ranks y 1, x 2: equal sums, x has the
    # better judge rank
    assert _fused("rrf", candidates, flat, weight=0.5)[0][0] == "x"


def test_ranks_stand_in_when_a_candidate_has_no_first_stage_score():
    candidates = [Candidate(doc_id="a", text="t", score=12.0, rank=1),
                  Candidate(doc_id="b", text="t", score=None, rank=2),
                  Candidate(doc_id="c", text="t", score=3.0, rank=3)]
    flat = [ScoredDoc(doc_id=d, score=0.0) for d in "abc"]
    # judge flat: 1 each after min-max; ranks 1, 2, 3 -> 1, 0.5, 0 (not 12, ?, 3)
    assert _fused("interpolate", candidates, flat, weight=0.5) == [
        ("a", 1.0), ("b", 0.75), ("c", 0.5)]
    no_ranks = [Candidate(doc_id=d, text="t") for d in "abc"]  # positions stand in
    assert [d for d, _ in _fused("interpolate", no_ranks, flat, weight=0.5)] == ["a", "b", "c"]


def test_unscored_and_unknown_documents():
    ranking = [ScoredDoc(doc_id="a", score=0.4), ScoredDoc(doc_id="b", score=0.2),
               ScoredDoc(doc_id="c", score=float("-inf")), ScoredDoc(doc_id="zz", score=-9.0)]
    # c (-inf) goes below the judge's lowest: 0.2 - (0.4 - 0.2) = 0, so judge a 1, b 0.5,
    # c 0; first stage a 1, b 0.6667, c 0
    assert _fused("interpolate", FIRST, ranking, weight=0.5) == [
        ("a", 1.0), ("b", 0.5833), ("c", 0.0), ("zz", -9.0)]  # zz: not a candidate, kept last
    # One finite judge score: the unscored document still cannot tie it.
    lone = [ScoredDoc(doc_id="b", score=0.7), ScoredDoc(doc_id="a", score=float("-inf"))]
    two = FIRST[:2]
    assert [d for d, _ in _fused("interpolate", two, lone, weight=0.9)] == ["b", "a"]


def test_candidates_the_judge_did_not_rank_keep_their_first_stage_order_below():
    partial = [ScoredDoc(doc_id="c", score=0.9)]
    fused = fuse_with_first_stage(FIRST, partial, "rrf", 0.5)
    assert [d.doc_id for d in fused] == ["c", "a", "b"]
    scores = [d.score for d in fused]
    assert scores == sorted(scores, reverse=True) and len(set(scores)) == 3


def test_a_non_finite_first_stage_score_falls_back_to_ranks():
    candidates = [Candidate(doc_id="a", text="t", score=float("inf"), rank=1),
                  Candidate(doc_id="b", text="t", score=2.0, rank=2)]
    flat = [ScoredDoc(doc_id="b", score=0.5), ScoredDoc(doc_id="a", score=0.5)]
    assert _fused("interpolate", candidates, flat, weight=0.5) == [("a", 1.0), ("b", 0.5)]


def test_zscore_normalisation_and_bad_weights():
    assert [round(v, 4) for v in normalised([1.0, 2.0, 3.0], "zscore")] == [-1.2247, 0.0, 1.2247]
    assert normalised([2.0, 2.0], "zscore") == [0.0, 0.0]
    assert normalised([2.0, 2.0], "minmax") == [1.0, 1.0]
    with pytest.raises(InputError, match="between 0 and 1"):
        fuse_with_first_stage(FIRST, JUDGED, "interpolate", weight=1.5)
