"""Each method's algorithm on the simulated judge at noise 0 (exact): the number of LLM
calls its paper's algorithm makes with the default parameters, the top 10 in qrels
order, and the order of the calls where the algorithm fixes one."""

from __future__ import annotations

import pytest

from rerankgraph.data import build_job, read_qrels
from rerankgraph.sdk import Reranker
from rerankgraph.simulation import SimulatedJudge
from tests.conftest import DL19

QRELS = read_qrels(DL19 / "qrels.tsv")


@pytest.fixture(scope="module", params=[30, 100], ids=["N30", "N100"])
def setting(request, dl19, dl19_run):
    """Two DL19 queries with their BM25 top-N, and a noise-free simulated judge."""
    job = build_job(dl19, dl19_run, depth=request.param, queries=2)
    return request.param, job.requests, SimulatedJudge(QRELS, dl19.queries, dl19.corpus)


def _grade(query_id: str, doc_id: str) -> int:
    return QRELS.get(query_id, {}).get(doc_id, 0)


def _ideal(request) -> list[str]:
    """The candidates by qrels grade, ties in first-stage order."""
    return [c.doc_id for c in sorted(request.candidates,
                                     key=lambda c: (-_grade(request.query.id, c.doc_id),
                                                    c.rank))]


def _windows(count: int, window: int = 20, stride: int = 10) -> int:
    return 1 if count <= window else -(-(count - window) // stride) + 1


def _groups(count: int, size: int = 20) -> int:
    return -(-count // size)


# -- reference algorithms, written from the papers, to count their calls ---------------
def _best(shown: list[int], strength: list) -> int:
    """The index in `shown` of the strongest item, the first shown among equals (the
    simulated judge at noise 0)."""
    top = max(strength[i] for i in shown)
    return next(j for j, i in enumerate(shown) if strength[i] == top)


def _reference_heap_sets(strength: list, k: int, arity: int
                         ) -> tuple[list[tuple[int, ...]], list[tuple[int, ...]]]:
    """The sets a textbook k-ary heapsort judges for the top k: heapify from the last
    parent up, then k extractions, repairing the heap after each one but the last.
    Returned as the heapify sets and the extraction sets."""
    heap = list(range(len(strength)))
    asked: list[tuple[int, ...]] = []

    def sift(node: int, end: int) -> None:
        while True:
            children = [c for c in range(arity * node + 1, arity * node + arity + 1) if c < end]
            if not children:
                return
            positions = [node, *children]
            shown = [heap[p] for p in positions]
            asked.append(tuple(shown))
            best = positions[_best(shown, strength)]
            if best == node:
                return
            heap[node], heap[best] = heap[best], heap[node]
            node = best

    for parent in range((len(heap) - 2) // arity, -1, -1):
        sift(parent, len(heap))
    heapified = len(asked)
    end = len(heap)
    for picked in range(1, min(k, len(heap)) + 1):
        end -= 1
        if picked < k and end > 0:
            heap[0], heap[end] = heap[end], heap[0]
            sift(0, end)
    return asked[:heapified], asked[heapified:]


def _reference_bubble_sets(strength: list, k: int, window: int) -> list[tuple[int, ...]]:
    """The windows of k bubble passes from the bottom up, each window's best moved to
    its top and the next window ending on it; a window already asked in the same order
    is not asked again."""
    order = list(range(len(strength)))
    asked: list[tuple[int, ...]] = []
    for done in range(min(k, len(order) - 1)):
        start = max(len(order) - window, done)
        while True:
            shown = order[start:start + window]
            if tuple(shown) not in asked:
                asked.append(tuple(shown))
            best = start + _best(shown, strength)
            order[start], order[best] = order[best], order[start]
            if start == done:
                break
            start = max(start - (window - 1), done)
    return asked


def _prp_strength(grades: list[int]) -> list[tuple[int, int]]:
    """PRP at noise 0: the higher grade wins in both orders; equal grades split the
    orders (a tie), which goes to the better first-stage rank."""
    return [(g, -i) for i, g in enumerate(grades)]


def _pair_calls(sets: list[tuple[int, ...]]) -> int:
    return 2 * sum(len(s) - 1 for s in sets)  # a knockout, each pair in both orders


@pytest.mark.parametrize("method", ["pointwise", "rubric"])
def test_pointwise_judges_make_one_call_per_candidate(setting, method):
    count, requests, judge = setting
    for request, result in zip(requests, Reranker(method, engine=judge).rerank_batch(requests),
                               strict=True):
        assert result.provenance.llm_calls == count
        assert result.doc_ids[:10] == _ideal(request)[:10]


@pytest.mark.parametrize("method", ["listwise", "first"])
def test_window_judges_make_one_call_per_window_from_the_bottom_up(setting, method):
    count, requests, judge = setting
    for request, result in zip(requests, Reranker(method, engine=judge).rerank_batch(requests),
                               strict=True):
        windows = [j.doc_ids for j in result.provenance.judgments]
        assert len(windows) == _windows(count)  # 9 at N=100 (window 20, stride 10)
        ids = [c.doc_id for c in request.candidates]
        assert set(windows[0]) == set(ids[-20:])  # the first window is the bottom one
        assert result.doc_ids[:10] == _ideal(request)[:10]


def test_the_best_document_at_the_bottom_reaches_rank_1_in_one_pass(setting):
    count, requests, judge = setting
    request = requests[0]
    qid = request.query.id
    best = _ideal(request)[0]
    top = _grade(qid, best)
    # The best document alone at its grade (others of that grade dropped), put last.
    others = [c for c in request.candidates if _grade(qid, c.doc_id) < top]
    moved = [*others, next(c for c in request.candidates if c.doc_id == best)]
    bottom_up = request.model_copy(update={"candidates": tuple(moved)})
    result = Reranker("listwise", engine=judge).rerank_batch([bottom_up])[0]
    assert result.doc_ids[0] == best
    assert result.provenance.llm_calls == _windows(len(moved))


def test_groupwise_scores_balanced_groups_in_every_round(setting):
    count, requests, judge = setting
    for request, result in zip(requests,
                               Reranker("groupwise", engine=judge).rerank_batch(requests),
                               strict=True):
        sizes = [len(j.doc_ids) for j in result.provenance.judgments]
        assert len(sizes) == 6 * _groups(count)  # 6 rounds: 30 calls at N=100, 12 at N=30
        assert max(sizes) - min(sizes) <= 1 and sum(sizes) == 6 * count
        assert result.doc_ids[:10] == _ideal(request)[:10]


def test_setwise_asks_exactly_the_sets_of_a_textbook_heapsort(setting):
    _, requests, judge = setting
    for request, result in zip(requests, Reranker("setwise", engine=judge).rerank_batch(requests),
                               strict=True):
        ids = [c.doc_id for c in request.candidates]
        grades = [_grade(request.query.id, d) for d in ids]
        heapify, extraction = ([tuple(ids[i] for i in s) for s in sets]
                               for sets in _reference_heap_sets(grades, 10, 3))
        asked = [j.doc_ids for j in result.provenance.judgments]
        # Heapify sifts a level's nodes concurrently, so only its calls' order may
        # differ; the extractions are sequential and in the textbook's order.
        assert sorted(asked[:len(heapify)]) == sorted(heapify)
        assert asked[len(heapify):] == extraction
        # The top 10 has the ideal grades (equal grades go to the first shown: the
        # judge sees no first-stage rank).
        assert [_grade(request.query.id, d) for d in result.doc_ids[:10]] == sorted(
            grades, reverse=True)[:10]


def test_pairwise_makes_the_calls_of_prps_heapsort(setting):
    _, requests, judge = setting
    for request, result in zip(requests,
                               Reranker("pairwise", engine=judge).rerank_batch(requests),
                               strict=True):
        grades = [_grade(request.query.id, c.doc_id) for c in request.candidates]
        heapify, extraction = _reference_heap_sets(_prp_strength(grades), 10, 2)
        assert result.provenance.llm_calls == _pair_calls(heapify) + _pair_calls(extraction)
        assert result.doc_ids[:10] == _ideal(request)[:10]


@pytest.mark.parametrize("method", ["setwise", "pairwise"])
def test_bubble_passes_ask_the_windows_of_a_textbook_bubblesort(setting, method):
    _, requests, judge = setting
    request = requests[0]
    result = Reranker(method, engine=judge, params={"sort": "bubblesort"}).rerank_batch(
        [request])[0]
    grades = [_grade(request.query.id, c.doc_id) for c in request.candidates]
    if method == "setwise":
        expected = _reference_bubble_sets(grades, 10, 4)
        assert result.provenance.llm_calls == len(expected)
        assert [_grade(request.query.id, d) for d in result.doc_ids[:10]] == sorted(
            grades, reverse=True)[:10]
    else:
        expected = _reference_bubble_sets(_prp_strength(grades), 10, 2)
        assert result.provenance.llm_calls == _pair_calls(expected)
        assert result.doc_ids[:10] == _ideal(request)[:10]
