"""Readers of comparative replies, on the malformed shapes models produce."""

import json
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rerankgraph.agents.first import order_from_first_token
from rerankgraph.agents.groupwise import read_group_scores
from rerankgraph.agents.parsing import read_id_scores, read_label, read_permutation
from rerankgraph.agents.setwise import read_choice
from rerankgraph.types import ParseStatus


@pytest.mark.parametrize(("text", "order", "status"), [
    ("[2] > [3] > [1]", [1, 2, 0], ParseStatus.OK),
    ("", [0, 1, 2], ParseStatus.FALLBACK),
    ("I cannot rank these.", [0, 1, 2], ParseStatus.FALLBACK),
    ("[2] > [2] > [1] > [3]", [1, 0, 2], ParseStatus.REPAIRED),
    ("[7] > [3] > [0] > [1]", [2, 0, 1], ParseStatus.REPAIRED),
    ("Sure! The ranking is [3] > [1] > [2]. Hope this helps.", [2, 0, 1], ParseStatus.OK),
    ("<think>maybe [1] > [2]</think>\n[3] > [2] > [1]", [2, 1, 0], ParseStatus.OK),
    ("[3] > [1]", [2, 0, 1], ParseStatus.REPAIRED),
    ("3, 1, 2", [2, 0, 1], ParseStatus.REPAIRED),
])
def test_read_permutation(text, order, status):
    got, got_status, note = read_permutation(text, 3)
    assert (got, got_status) == (order, status)
    assert bool(note) == (status != ParseStatus.OK)


@given(st.text(max_size=200), st.integers(min_value=1, max_value=30))
def test_read_permutation_always_returns_a_permutation(text, size):
    order, _, _ = read_permutation(text, size)
    assert sorted(order) == list(range(size))


@pytest.mark.parametrize(("text", "scores", "status"), [
    ('{"1": 7, "2": 3, "3": 0}', {0: 0.7, 1: 0.3, 2: 0.0}, ParseStatus.OK),
    ('Here: {"1": 7, "2": 3, "3": 0} done', {0: 0.7, 1: 0.3, 2: 0.0}, ParseStatus.REPAIRED),
    ('{"1": 7, "3": 12}', {0: 0.7, 2: 1.0}, ParseStatus.REPAIRED),
    ('{"1": 7, "2": 3, "9": 5, "x": 1}', {0: 0.7, 1: 0.3}, ParseStatus.REPAIRED),
    ('{"1": 7, "2": 3, "3": 4', {0: 0.7, 1: 0.3, 2: 0.4}, ParseStatus.REPAIRED),
    ("<think>{</think>[1]: 5, [2]: 6", {0: 0.5, 1: 0.6}, ParseStatus.REPAIRED),
    # An unclosed <think>: the scores after it are read, not wiped with it.
    ('<think>doc 1 looks best, so {"1": 9, "2": 2, "3": 5}', {0: 0.9, 1: 0.2, 2: 0.5},
     ParseStatus.REPAIRED),
    ("<think>doc 1 looks best", {}, ParseStatus.FALLBACK),
    ("", {}, ParseStatus.FALLBACK),
    ("all of them are good", {}, ParseStatus.FALLBACK),
])
def test_read_group_scores(text, scores, status):
    got, got_status, _ = read_group_scores(text, 3)
    assert got_status == status and got == pytest.approx(scores)


@given(st.text(max_size=200))
def test_read_group_scores_never_raises_and_stays_in_range(text):
    scores, status, _ = read_group_scores(text, 5)
    assert all(0 <= s <= 1 and 0 <= i < 5 for i, s in scores.items())
    assert (status == ParseStatus.FALLBACK) == (not scores)


def test_labels_and_choices():
    labels = ["A", "B", "C"]
    assert read_label("B", labels) == 1
    assert read_label("Passage [C] is best", labels) == 2
    assert read_label("none", labels) is None
    assert read_choice("?", {"C": -0.1, "A": -3.0}, labels)[:2] == (2, ParseStatus.REPAIRED)
    assert read_choice("", {}, labels)[:2] == (0, ParseStatus.FALLBACK)


def test_first_orders_by_label_probability_then_prior_order():
    every = {"C": math.log(0.5), "A": math.log(0.3), "D": math.log(0.15), "B": math.log(0.05)}
    assert order_from_first_token(every, "C", ["A", "B", "C", "D"]) == (
        [2, 0, 3, 1], ParseStatus.OK, "")
    # Fewer labels than the window (a server other than vLLM under the constraint):
    # the missing ones keep their prior order below, and it counts as a repair.
    logprobs = {"C": math.log(0.5), "A": math.log(0.3), "x": math.log(0.2)}
    order, status, note = order_from_first_token(logprobs, "C", ["A", "B", "C", "D"])
    assert order == [2, 0, 1, 3] and status == ParseStatus.REPAIRED and "2 labels" in note
    order, status, _ = order_from_first_token({}, "B", ["A", "B", "C"])
    assert order == [1, 0, 2] and status == ParseStatus.REPAIRED
    assert order_from_first_token({}, "", ["A", "B"])[1] == ParseStatus.FALLBACK


@pytest.mark.parametrize(("text", "expected"), [
    ("I pick [C]", 2),              # the pronoun "I" is not a label; the bracketed one is
    ("I pick C", 2),
    ("I think passage B is best", 1),
    ("a passage about cats; the best is B", 1),  # the article "a" is not label A
    ("A passage about cats", None),
    ("a passage...", None),
    ("A is the most relevant", 0),  # "A is" names the label
    ("The answer is A.", 0),
    ("[b]", 1),
    ("Passage: C", 2),
    ("E.g. none of them", None),
])
def test_read_label_skips_pronoun_and_article(text, expected):
    assert read_label(text, ["A", "B", "C"]) == expected


@given(st.sampled_from(["I pick", "I think", "In my view, a passage like", "A passage:",
                        "I would say a", "Here I choose"]),
       st.integers(min_value=0, max_value=9))
def test_a_bracketed_label_wins_over_prose(prose, chosen):
    labels = list("ABCDEFGHIJ")  # includes A and I, so the prose words could be misread
    assert read_label(f"{prose} [{labels[chosen]}] as the best.", labels) == chosen


def test_setwise_reads_the_bracketed_choice_in_prose():
    assert read_choice("I pick [C]", {}, ["A", "B", "C"])[:2] == (2, ParseStatus.OK)


@pytest.mark.parametrize(("text", "order"), [
    ("Top 3: 5 > 2", [4, 1, 0, 2, 3]),
    ("Top 3 passages: 5, 2, 1", [4, 1, 0, 2, 3]),
    ("The 2 most relevant: 4 > 1", [3, 0, 1, 2, 4]),
    ("Top 2: 4", [3, 0, 1, 2, 4]),
])
def test_read_permutation_skips_a_count_before_the_ranking(text, order):
    got, status, note = read_permutation(text, 5)
    assert got == order and status == ParseStatus.REPAIRED and "without brackets" in note


@given(st.permutations(range(1, 9)), st.integers(min_value=1, max_value=8),
       st.sampled_from(["Top {k}: ", "Top {k} passages: ", "The {k} most relevant: "]),
       st.sampled_from([" > ", ", ", ">"]))
def test_a_count_heading_never_changes_the_ranking(ids, k, heading, separator):
    text = heading.format(k=k) + separator.join(str(i) for i in ids)
    order, status, _ = read_permutation(text, 8)
    assert order == [i - 1 for i in ids] and status == ParseStatus.REPAIRED


def test_read_permutation_reads_inside_an_unclosed_think():
    order, status, note = read_permutation("<think>so: [3] > [1] > [2]", 3)
    assert order == [2, 0, 1] and status == ParseStatus.REPAIRED and "unclosed <think>" in note
    # A lone closing tag ends the reasoning; the ranking after it is read as is.
    assert read_permutation("[1] > [2]</think>[3] > [2] > [1]", 3) == ([2, 1, 0],
                                                                       ParseStatus.OK, "")


@pytest.mark.parametrize(("text", "scores", "shape"), [
    ('{"scores": {"1": 7, "2": 3, "3": 0}}', {0: 0.7, 1: 0.3, 2: 0.0}, "under 'scores'"),
    ('{"reasoning": "x", "scores": [7, 3, 0]}', {0: 0.7, 1: 0.3, 2: 0.0}, "passage order"),
    ('[{"id": 1, "score": 7}, {"id": "2", "score": 3}, {"id": 3, "score": 0}]',
     {0: 0.7, 1: 0.3, 2: 0.0}, "id/score objects"),
    ("[7, 3, 0]", {0: 0.7, 1: 0.3, 2: 0.0}, "passage order"),
    ('Sure: [{"passage": 2, "relevance": 9}] done', {1: 0.9}, "id/score objects"),
])
def test_read_group_scores_accepts_other_json_shapes_as_repairs(text, scores, shape):
    got, status, note = read_group_scores(text, 3)
    assert got == pytest.approx(scores) and status == ParseStatus.REPAIRED and shape in note


def test_a_list_in_prose_is_not_read_as_scores():
    # "[2]" in prose names a passage; it is not a list of scores.
    assert read_group_scores("Passage [2] is the best", 3)[:2] == ({}, ParseStatus.FALLBACK)


@pytest.mark.parametrize(("text", "scores"), [
    ("We met at 10:30 and rated them.", {}),
    ("A 3:1 ratio. Scores: [1]: 4, [2]: 8", {0: 0.4, 1: 0.8}),
    ('"1": 10:30, "2": 5', {1: 0.5}),   # a score that is part of a time is not a score
    ("1: 7\n2: 3", {0: 0.7, 1: 0.3}),   # bare ids with a space after the colon still count
])
def test_times_and_ratios_are_not_id_score_pairs(text, scores):
    got, status, _ = read_id_scores(text, 30, 10)
    assert got == pytest.approx(scores)
    assert status == (ParseStatus.FALLBACK if not scores else ParseStatus.REPAIRED)


@given(st.integers(min_value=0, max_value=23), st.integers(min_value=0, max_value=59))
def test_a_time_in_prose_never_reads_as_a_score(hour, minute):
    text = f"Checked at {hour}:{minute:02d}. Scores: [1]: 6, [2]: 2"
    scores, _, _ = read_id_scores(text, 30, 100)
    assert scores == pytest.approx({0: 0.06, 1: 0.02})


@pytest.mark.parametrize(("text", "scores", "note"), [
    ('{"1": 85, "2": 0, "3": 5}', {0: 0.85, 1: 0.0, 2: 0.05}, "scores on 0-100"),
    ('{"1": 15, "2": 12, "3": 40}', {0: 0.15, 1: 0.12, 2: 0.4}, "scores on 0-100"),
    ('{"1": 7, "3": 12}', {0: 0.7, 2: 1.0}, "clamped 1"),  # one overshoot among 0-10 scores
    ('{"1": 150, "2": 50}', {0: 1.0, 1: 1.0}, "clamped 2"),  # above 100: not a percentage
])
def test_scores_on_a_wider_scale_are_rescaled_not_clamped(text, scores, note):
    got, status, got_note = read_group_scores(text, 3)
    assert got == pytest.approx(scores) and status == ParseStatus.REPAIRED and note in got_note


def test_scores_asked_on_0_1_are_read_on_0_10_or_0_100():
    assert read_id_scores('{"1": 7, "2": 3}', 2, 1)[0] == pytest.approx({0: 0.7, 1: 0.3})
    assert read_id_scores('{"1": 70, "2": 30}', 2, 1)[0] == pytest.approx({0: 0.7, 1: 0.3})


@given(st.lists(st.integers(min_value=0, max_value=100), min_size=1, max_size=8)
       .filter(lambda values: max(values) > 20))
def test_a_percentage_reply_keeps_its_proportions(values):
    text = json.dumps({str(i + 1): v for i, v in enumerate(values)})
    scores, status, note = read_group_scores(text, len(values))
    assert scores == pytest.approx({i: v / 100 for i, v in enumerate(values)})
    assert status == ParseStatus.REPAIRED and "rescaled" in note


def test_read_group_scores_takes_the_final_json():
    text = ('<think>{"1": 1, "2": 1, "3": 1}</think> Draft: {"1": 2}. '
            'Final: {"1": 7, "2": 3, "3": 0}')
    scores, status, _ = read_group_scores(text, 3)
    assert scores == pytest.approx({0: 0.7, 1: 0.3, 2: 0.0}) and status == ParseStatus.REPAIRED
