"""Readers of comparative replies, on the malformed shapes models produce."""

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rerankgraph.agents.first import order_from_first_token
from rerankgraph.agents.groupwise import read_group_scores
from rerankgraph.agents.parsing import read_label, read_permutation
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
    logprobs = {"C": math.log(0.5), "A": math.log(0.3), "x": math.log(0.2)}
    order, status, note = order_from_first_token(logprobs, "C", ["A", "B", "C", "D"])
    assert order == [2, 0, 1, 3] and status == ParseStatus.OK and "2 labels" in note
    order, status, _ = order_from_first_token({}, "B", ["A", "B", "C"])
    assert order == [1, 0, 2] and status == ParseStatus.REPAIRED
    assert order_from_first_token({}, "", ["A", "B"])[1] == ParseStatus.FALLBACK
