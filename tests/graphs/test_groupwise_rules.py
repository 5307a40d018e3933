"""Groupwise planning and aggregation rules (no engine needed)."""

import itertools

import pytest

from rerankgraph.agents.groupwise import GroupwiseParams
from rerankgraph.errors import InputError
from rerankgraph.graphs.groupwise import (
    combine_scores,
    group_bounds,
    plan_groups,
    rank_keeping_places,
)
from rerankgraph.sdk import Reranker
from rerankgraph.types import Candidate, Judgment, ParseStatus
from tests.fakes import ScriptedEngine


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
    scores, unscored = combine_scores(docs, judgments, GroupwiseParams())
    assert scores == {"d0": 0.30000000000000004, "d1": 0.8, "d2": 0.5} and unscored == []


def test_unscored_docs_are_counted_and_keep_their_first_stage_place():
    docs = _docs(4)
    judgments = [Judgment(agent="groupwise", doc_ids=("d0", "d1", "d3"), raw_reply="x",
                          parsed={"d0": 0.1, "d1": 0.9, "d3": 0.5}, status=ParseStatus.OK)]
    scores, unscored = combine_scores(docs, judgments, GroupwiseParams())
    assert unscored == ["d2"] and "d2" not in scores
    ranking = rank_keeping_places(docs, scores)
    assert [d.doc_id for d in ranking] == ["d1", "d3", "d2", "d0"]  # d2 stays third
    assert [d.score for d in ranking] == [0.9, 0.5, 0.3, 0.1]  # between its neighbours


@pytest.mark.parametrize(("count", "size", "interval", "sizes"), [
    (21, 20, 20, [11, 10]), (25, 20, 20, [13, 12]), (100, 20, 20, [20] * 5),
    (20, 20, 20, [20]), (40, 20, 20, [20, 20]), (41, 20, 20, [14, 14, 13]),
    (1, 20, 20, [1]), (5, 2, 2, [3, 2]), (20, 10, 5, [10, 10, 10]), (23, 10, 5, [10, 10, 10, 10])])
def test_groups_of_a_round_are_balanced(count, size, interval, sizes):
    bounds = group_bounds(count, size, interval)
    assert [stop - start for start, stop in bounds] == sizes
    covered = {i for start, stop in bounds for i in range(start, stop)}
    assert covered == set(range(count))  # every document of the round is judged
    starts = [start for start, _ in bounds]
    assert all(b - a <= max(sizes) for a, b in itertools.pairwise(starts))  # no gaps


def test_an_interval_over_the_group_size_is_refused_in_one_line():
    with pytest.raises(InputError, match=r"^method 'groupwise': .*interval 12 is over "
                                         r"group_size 10: the documents between groups "
                                         r"would never be judged$"):
        Reranker("groupwise", engine=ScriptedEngine([]), params={"group_size": 10,
                                                                 "interval": 12})


def test_the_papers_setting_reasons_first_and_samples_with_a_seed():
    reply = ('The query asks about X. Passage [1] answers it; 2 and 3 do not.\n'
             '{"1": 9, "2": 1, "3": 4}')
    engine = ScriptedEngine([reply])
    result = Reranker("groupwise", engine=engine, params={
        "reasoning": 256, "temperature": 0.3, "rounds": 1}).rerank("q", ["a", "b", "c"])
    [call] = engine.requests
    assert call.temperature == 0.3 and call.seed is not None and call.max_tokens == 256 + 32
    assert call.regex.startswith("[^{}]*") and "First reason briefly" in call.messages[-1][
        "content"]
    assert result.provenance.repaired == 0 and result.provenance.fallbacks == 0
    shown = result.provenance.judgments[0].doc_ids  # the round's shuffled order
    assert result.doc_ids == [shown[0], shown[2], shown[1]]  # 9 > 4 > 1


def test_documents_no_reply_scored_are_named_in_provenance_and_keep_their_place():
    # Both attempts name only ids 1 and 2: the third passage shown is never scored.
    engine = ScriptedEngine(['{"1": 2, "2": 9}'])
    result = Reranker("groupwise", engine=engine, params={"rounds": 1}).rerank(
        "q", ["a", "b", "c"])
    shown = result.provenance.judgments[0].doc_ids
    assert result.provenance.unscored_docs == (shown[2],)
    place = ["d0", "d1", "d2"].index(shown[2])
    assert result.doc_ids[place] == shown[2]  # its first-stage place
    assert result.provenance.repaired == 1  # the reply with an id missing
