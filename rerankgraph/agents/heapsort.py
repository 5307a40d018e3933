"""Top-k selection with a k-ary max-heap over an async "which is best" judge.

Used by setwise (one call picks the best of a parent and its children) and pairwise.
Heapify sifts every node of one tree level concurrently: their subtrees are disjoint,
so those judge calls go to the engine together.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence

BestOf = Callable[[Sequence[str]], Awaitable[int]]


async def heap_top_k(items: Sequence[str], k: int, arity: int, best_of: BestOf) -> list[str]:
    """Returns all items: the top k in judged order, then the rest in input order."""
    heap = list(items)
    size = len(heap)
    k = min(k, size)
    cache: dict[tuple[str, ...], int] = {}

    async def judged_best(group: list[str]) -> int:
        key = tuple(group)
        if key not in cache:
            cache[key] = await best_of(group)
        return cache[key]

    async def sift_down(node: int, end: int) -> None:
        while True:
            children = [c for c in range(arity * node + 1, arity * node + arity + 1) if c < end]
            if not children:
                return
            positions = [node, *children]
            best = positions[await judged_best([heap[p] for p in positions])]
            if best == node:
                return
            heap[node], heap[best] = heap[best], heap[node]
            node = best

    parents = list(range((size - 2) // arity, -1, -1)) if size > 1 else []
    for level in _by_depth(parents, arity):
        await asyncio.gather(*(sift_down(node, size) for node in level))
    top: list[str] = []
    end = size
    while len(top) < k:
        top.append(heap[0])
        end -= 1
        if end == 0:
            break
        heap[0] = heap[end]
        await sift_down(0, end)
    chosen = set(top)
    return top + [item for item in items if item not in chosen]


def _by_depth(nodes: list[int], arity: int) -> list[list[int]]:
    """Groups heap nodes by depth, deepest first."""
    levels: dict[int, list[int]] = {}
    for node in nodes:
        depth, index = 0, node
        while index > 0:
            index = (index - 1) // arity
            depth += 1
        levels.setdefault(depth, []).append(node)
    return [levels[d] for d in sorted(levels, reverse=True)]
