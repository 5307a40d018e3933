"""Groupwise planning and aggregation rules (no engine needed)."""

from rerankgraph.agents.groupwise import GroupwiseParams
from rerankgraph.graphs.groupwise import combine_scores, plan_groups
from rerankgraph.types import Candidate, Judgment, ParseStatus


def _docs(n):
    return [Candidate(doc_id=f"d{i}", text="t", score=float(n - i), rank=i + 1) for i in range(n)]


def test_rounds_shuffle_with_a_seed_and_cover_every_doc():
    docs = _docs(30)
    params = GroupwiseParams(group_size=10, interval=10, rounds=3)
    groups = plan_groups(docs, params, seed=1, query_id="q")
    assert len(groups) == 9 and all(len(g) == 10 for g, _ in groups)
    for round_groups in (groups[0:3], groups[3:6], groups[6:9]):
        assert sorted(d.doc_id for g, _ in round_groups for d in g) == sorted(d.doc_id for d in docs)
    assert plan_groups(docs, params, 1, "q") == groups
    assert plan_groups(docs, params, 2, "q") != groups


def test_overlapping_groups_when_interval_is_smaller():
    groups = plan_groups(_docs(20), GroupwiseParams(group_size=10, interval=5, rounds=1), 0, "q")
    assert [len(g) for g, _ in groups] == [10, 10, 10]


def test_failed_groups_are_left_out_never_zeroed():
    docs = _docs(3)
    judgments = [
        Judgment(agent="groupwise", doc_ids=("d0", "d1", "d2"), raw_reply="x",
                 parsed={"d0": 0.2, "d1": 0.8, "d2": 0.5}, status=ParseStatus.OK),
        Judgment(agent="groupwise", doc_ids=("d0", "d1", "d2"), raw_reply="junk",
                 parsed={}, status=ParseStatus.FALLBACK),
        Judgment(agent="groupwise", doc_ids=("d0", "d1"), raw_reply="x",
                 parsed={"d0": 0.4}, status=ParseStatus.REPAIRED),
    ]
    scores = combine_scores(docs, judgments, GroupwiseParams())
    assert scores == {"d0": 0.30000000000000004, "d1": 0.8, "d2": 0.5}


def test_unscored_docs_get_the_mean_and_interpolation_uses_min_max():
    docs = _docs(3)
    judgments = [Judgment(agent="groupwise", doc_ids=("d0", "d1"), raw_reply="x",
                          parsed={"d0": 0.0, "d1": 1.0}, status=ParseStatus.OK)]
    assert combine_scores(docs, judgments, GroupwiseParams())["d2"] == 0.5
    mixed = combine_scores(docs, judgments, GroupwiseParams(interpolate=True, llm_weight=0.6))
    # d0: llm 0, first stage best (1.0) -> 0.4; d1: llm 1, first stage 0.5 -> 0.8
    assert mixed["d0"] == 0.4 and round(mixed["d1"], 6) == 0.8
