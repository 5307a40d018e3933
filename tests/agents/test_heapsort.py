import asyncio

import pytest

from rerankgraph.agents.heapsort import bubble_top_k, heap_top_k
from rerankgraph.agents.pairwise import verdict


def run_heap(items, k, arity, truth):
    calls = []

    async def best_of(group):
        calls.append(tuple(group))
        return max(range(len(group)), key=lambda i: truth[group[i]])

    return asyncio.run(heap_top_k(items, k, arity, best_of)), calls


@pytest.mark.parametrize("arity", [1, 2, 3, 5])
@pytest.mark.parametrize("size", [1, 2, 7, 20, 33])
def test_top_k_is_exact_with_a_perfect_judge(arity, size):
    items = [f"d{i}" for i in range(size)]
    truth = {d: (i * 7919) % 101 for i, d in enumerate(items)}
    k = min(10, size)
    order, calls = run_heap(items, k, arity, truth)
    assert order[:k] == sorted(items, key=lambda d: -truth[d])[:k]
    assert sorted(order) == sorted(items)
    rest = [d for d in items if d not in order[:k]]
    assert order[k:] == rest  # unselected docs keep their input order
    assert all(2 <= len(c) <= arity + 1 for c in calls)


def test_call_count_is_bounded_and_repeats_are_cached():
    items = [f"d{i}" for i in range(100)]
    truth = {d: -i for i, d in enumerate(items)}  # already sorted: the cheapest case
    _, calls = run_heap(items, 10, 3, truth)
    assert len(calls) == len(set(calls)) and len(calls) < 100


@pytest.mark.parametrize(("shown_first", "shown_second", "rule", "expected"), [
    (0.9, 0.8, "prp", "first"), (0.2, 0.1, "prp", "second"),
    (0.9, 0.4, "prp", "tie"),  # the orders disagree: PRP calls it a tie
    (0.9, 0.4, "mean", "first"),  # the mean (0.65) decides
    (0.5, 0.5, "prp", "tie"), (0.5, 0.5, "mean", "tie"), (0.3, 0.6, "mean", "second")])
def test_a_pair_is_won_only_when_both_orders_agree(shown_first, shown_second, rule, expected):
    assert verdict(shown_first, shown_second, rule) == expected


def test_the_heap_is_not_repaired_after_the_last_pick():
    items = [f"d{i}" for i in range(7)]
    truth = {d: i for i, d in enumerate(items)}  # the last is best: every sift moves
    _, calls = run_heap(items, 1, 2, truth)
    # Heapify: nodes 2 and 1 once each, node 0 twice (it sinks one level). Then one
    # pick and no repair (a repair would ask two sets more).
    assert len(calls) == 4


@pytest.mark.parametrize("window", [2, 4])
def test_bubble_passes_give_the_exact_top_k(window):
    items = [f"d{i}" for i in range(23)]
    truth = {d: (i * 7919) % 101 for i, d in enumerate(items)}
    calls = []

    async def best_of(group):
        calls.append(tuple(group))
        return max(range(len(group)), key=lambda i: truth[group[i]])

    order = asyncio.run(bubble_top_k(items, 5, window, best_of))
    assert order[:5] == sorted(items, key=lambda d: -truth[d])[:5]
    assert sorted(order) == sorted(items) and all(len(c) <= window for c in calls)
