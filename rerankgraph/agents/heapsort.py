"""Top-k selection over an async "which is best" judge, as steps a graph can take one
at a time: a k-ary max-heap (Setwise's and PRP's heapsort) and bubble passes (Setwise's
bubblesort, PRP-Sliding-K).

Heapify sifts every node of one tree level concurrently: their subtrees are disjoint,
so those judge calls go to the engine together. A set judged before, in the same
order, is not asked again: `Judged` remembers each set's answer, and the graphs keep
it in their state so a resumed run does not ask again either.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, MutableMapping, Sequence

BestOf = Callable[[Sequence[str]], Awaitable[int]]


class Judged:
    """`best_of` with memory: the index of the best of each set already judged, keyed by
    the set's ids in the order shown."""

    def __init__(self, best_of: BestOf, answers: MutableMapping[str, int]) -> None:
        self._best_of = best_of
        self.answers = answers

    async def best(self, group: Sequence[str]) -> int:
        key = "\x1f".join(group)
        if key not in self.answers:
            self.answers[key] = await self._best_of(group)
        return self.answers[key]


# -- heapsort ----------------------------------------------------------------------------
def heapify_levels(size: int, arity: int) -> list[list[int]]:
    """The heap's parent nodes grouped by depth, deepest first: the order heapify
    sifts them in."""
    levels: dict[int, list[int]] = {}
    for node in range((size - 2) // arity, -1, -1) if size > 1 else []:
        depth, index = 0, node
        while index > 0:
            index = (index - 1) // arity
            depth += 1
        levels.setdefault(depth, []).append(node)
    return [levels[d] for d in sorted(levels, reverse=True)]


async def sift_down(heap: list[str], node: int, end: int, arity: int, judged: Judged) -> None:
    """Moves heap[node] down (in place) until it beats its children among heap[:end]."""
    while True:
        children = [c for c in range(arity * node + 1, arity * node + arity + 1) if c < end]
        if not children:
            return
        positions = [node, *children]
        best = positions[await judged.best([heap[p] for p in positions])]
        if best == node:
            return
        heap[node], heap[best] = heap[best], heap[node]
        node = best


async def heapify_level(heap: list[str], level: Sequence[int], arity: int,
                        judged: Judged) -> None:
    await asyncio.gather(*(sift_down(heap, node, len(heap), arity, judged) for node in level))


async def extract(heap: list[str], end: int, top: list[str], k: int, arity: int,
                  judged: Judged) -> int:
    """Moves the root to `top` and returns the heap's new end. The heap is repaired only
    while more picks are wanted: after the k-th, a sift would be calls for nothing."""
    top.append(heap[0])
    end -= 1
    if len(top) < k and end > 0:
        heap[0], heap[end] = heap[end], heap[0]
        await sift_down(heap, 0, end, arity, judged)
    return end


async def heap_top_k(items: Sequence[str], k: int, arity: int, best_of: BestOf) -> list[str]:
    """All items: the top k in judged order, then the rest in input order."""
    heap, judged = list(items), Judged(best_of, {})
    k = min(k, len(heap))
    for level in heapify_levels(len(heap), arity):
        await heapify_level(heap, level, arity, judged)
    top: list[str] = []
    end = len(heap)
    while len(top) < k:
        end = await extract(heap, end, top, k, arity, judged)
    return with_rest(top, items)


# -- bubble passes -----------------------------------------------------------------------
async def bubble_pass(order: list[str], done: int, window: int, judged: Judged) -> None:
    """One pass from the bottom up (in place): each window of `window` items puts its
    best first, and the next window ends on that best, so the best item met rises to
    position `done` (the positions above are settled by earlier passes)."""
    start = max(len(order) - window, done)
    while True:
        group = order[start:start + window]
        best = await judged.best(group)
        order[start], order[start + best] = order[start + best], order[start]
        if start == done:
            return
        start = max(start - (window - 1), done)


async def bubble_top_k(items: Sequence[str], k: int, window: int, best_of: BestOf
                       ) -> list[str]:
    """All items after k bubble passes: the top k in judged order, then the rest in the
    order the passes left them."""
    order, judged = list(items), Judged(best_of, {})
    for done in range(min(k, len(order) - 1)):
        await bubble_pass(order, done, window, judged)
    return order


def with_rest(top: Sequence[str], items: Sequence[str]) -> list[str]:
    """`top`, then the other items in input order."""
    chosen = set(top)
    return [*top, *(item for item in items if item not in chosen)]
