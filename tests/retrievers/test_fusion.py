"""RRF, CombSUM and sightings on hand-computed cases."""

from __future__ import annotations

import pytest

from rerankgraph.errors import InputError
from rerankgraph.retrievers.fusion import (
    Sighting,
    comb_sum,
    found_by_metadata,
    fuse,
    fuse_with_sightings,
    reciprocal_rank_fusion,
    sightings,
)


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
