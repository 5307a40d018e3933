"""The heap graphs (setwise, pairwise) stop and resume at any of their steps: each
heapify level and each pick is its own graph step, and the state carries the sets
already judged, so a resumed run asks nothing twice."""

from __future__ import annotations

import asyncio

import pytest
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.checkpoint.serde.event_hooks import register_serde_event_listener

from rerankgraph.data import build_job, read_qrels
from rerankgraph.graphs.checkpoints import checkpoint_serializer
from rerankgraph.sdk import Reranker
from rerankgraph.simulation import SimulatedJudge
from tests.conftest import DL19

QRELS = read_qrels(DL19 / "qrels.tsv")


def stopped_before_every_pick(method, request, judge, serde):
    """Runs `method` stopping before each pick: the graph, its stops and the serializer's
    events (types it read unregistered, or blocked)."""
    reranker = Reranker(method, engine=judge, params={"fusion": "none"})
    graph = reranker.graph.copy(update={
        "checkpointer": InMemorySaver(serde=serde), "interrupt_before_nodes": ["pick"]})
    config = {"configurable": {"thread_id": "t"}, "recursion_limit": 1000}
    context = reranker.context()

    async def run() -> int:
        await graph.ainvoke({"query": request.query, "candidates": list(request.candidates)},
                            config=config, context=context)
        stops = 1
        while graph.get_state(config).next:
            await graph.ainvoke(None, config=config, context=context)
            stops += 1
        return stops

    # LangGraph logs each unregistered type once per process, so a log check would pass
    # after any earlier test's warning; its serde events come every time.
    events: list[dict] = []
    unregister = register_serde_event_listener(events.append)
    try:
        stops = asyncio.run(run())
    finally:
        unregister()
    return graph, config, stops, events


@pytest.mark.parametrize("method", ["setwise", "pairwise"])
def test_a_heap_run_stopped_before_every_pick_resumes_to_the_same_ranking(
        method, dl19, dl19_run):
    request = build_job(dl19, dl19_run, depth=30, queries=1).requests[0]
    straight_judge = SimulatedJudge(QRELS, dl19.queries, dl19.corpus)
    straight = Reranker(method, engine=straight_judge,
                        params={"fusion": "none"}).rerank_batch([request])[0]

    judge = SimulatedJudge(QRELS, dl19.queries, dl19.corpus)
    graph, config, stops, events = stopped_before_every_pick(
        method, request, judge, checkpoint_serializer())
    steps = [snapshot.next for snapshot in graph.get_state_history(config)]
    # 30 documents in a binary or 4-ary heap: heapify takes one step per tree level.
    assert steps.count(("heapify",)) == (4 if method == "pairwise" else 3)
    assert steps.count(("pick",)) == 10 and stops == 11  # stopped before each of 10 picks
    final = graph.get_state(config).values
    assert [d.doc_id for d in final["ranking"]] == straight.doc_ids
    assert judge.stats.requests == straight_judge.stats.requests  # nothing asked twice
    assert not events
    # The same run with LangGraph's own serializer reads unregistered types: the check
    # above can fail.
    *_, default_events = stopped_before_every_pick(
        method, request, SimulatedJudge(QRELS, dl19.queries, dl19.corpus), None)
    assert {e["kind"] for e in default_events} == {"msgpack_unregistered_allowed"}
