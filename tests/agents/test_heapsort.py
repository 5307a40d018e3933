import asyncio

import pytest

from rerankgraph.agents.heapsort import heap_top_k


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
