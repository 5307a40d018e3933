"""The search graphs (lattice, rvr) stop and resume through a checkpointer: each stop
resumes in a new graph with a new judge, from state read back through
`checkpoint_serializer()`, and reaches the uninterrupted run's ranking having asked the
judge exactly the same calls, none twice."""

from __future__ import annotations

import asyncio
import contextlib

import pytest
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.checkpoint.serde.event_hooks import register_serde_event_listener
from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer

from rerankgraph.data import build_job, load_beir, read_qrels
from rerankgraph.graphs.checkpoints import checkpoint_serializer, state_types
from rerankgraph.registry import get_method, list_methods
from rerankgraph.sdk import Reranker
from rerankgraph.simulation import SimulatedJudge
from rerankgraph.types import Query
from tests.conftest import CRANFIELD, DL19


class RecordingJudge(SimulatedJudge):
    """The simulated judge, writing every call's messages into a shared list."""

    def __init__(self, calls: list[str], *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.calls = calls

    async def _chat(self, requests):
        self.calls += [repr(r.messages) for r in requests]
        return await super()._chat(requests)


def _run(make_reranker, graph_input, stop_at: str | None, serde, events=None):
    """Runs a method to its end; with `stop_at`, stopping before every step of that
    node and resuming in a new graph with a new judge. Returns the final state, the
    judge's calls, the stops and the serializer's events."""
    calls: list[str] = []
    config = {"configurable": {"thread_id": "t"}, "recursion_limit": 1000}
    saver = InMemorySaver(serde=serde)

    def fresh(saved=None):
        reranker = make_reranker(calls, saved or {})
        graph = reranker.graph if stop_at is None else reranker.graph.copy(update={
            "checkpointer": saver, "interrupt_before_nodes": [stop_at]})
        return graph, reranker.context()

    async def run():
        graph, context = fresh()
        state = await graph.ainvoke(graph_input, config=config, context=context)
        stops = 0
        while stop_at is not None and graph.get_state(config).next:
            stops += 1
            # nothing carries over but the checkpoint, read back through `serde`
            graph, context = fresh(graph.get_state(config).values)
            state = await graph.ainvoke(None, config=config, context=context)
        return state, stops

    events = [] if events is None else events
    unregister = register_serde_event_listener(events.append)
    try:
        state, stops = asyncio.run(run())
    finally:
        unregister()
    return state, calls, stops, events


def _without(name: str) -> JsonPlusSerializer:
    return JsonPlusSerializer(allowed_msgpack_modules=[
        t for t in state_types() if t[1] != name])


def _check(make_reranker, graph_input, stop_at, least_stops, needed):
    straight, straight_calls, _, _ = _run(make_reranker, graph_input, None, None)
    state, calls, stops, events = _run(make_reranker, graph_input, stop_at,
                                       checkpoint_serializer())
    assert stops >= least_stops
    assert not events  # every type read back was registered
    assert [(d.doc_id, d.score) for d in state["ranking"]] == [
        (d.doc_id, d.score) for d in straight["ranking"]]
    assert len(state["ranking"]) > 0
    assert calls == straight_calls  # the same calls, in order: none asked twice
    assert len(set(calls)) == len(calls) > 0
    assert len(state["judgments"]) == len(straight["judgments"])
    # Each type the state needs, left out, is blocked: the checks above can fail.
    for name in needed:
        left_out: list[dict] = []
        # A state read back as plain dicts may break the run, or only its ranking.
        with contextlib.suppress(Exception):
            _run(make_reranker, graph_input, stop_at, _without(name), left_out)
        assert {(e["kind"], e["name"]) for e in left_out} >= {("msgpack_blocked", name)}


def test_a_lattice_rerank_stopped_before_every_slate_resumes_to_the_same_ranking(dl19,
                                                                               dl19_run):
    """Rerank mode puts the candidates' tree and the calibration's observations in
    the state."""
    qrels = read_qrels(DL19 / "qrels.tsv")
    request = build_job(dl19, dl19_run, depth=30, queries=1).requests[0]

    def make(calls, saved):
        judge = RecordingJudge(calls, qrels, dl19.queries, dl19.corpus)
        if saved.get("tree") is not None:
            # The simulated judge scores a summary by the documents it wrote it for: a
            # new one learns them from the tree read back, as a model reads the text.
            judge.learn_tree(saved["tree"])
        return Reranker("lattice", engine=judge, params={"iterations": 4, "beam": 2})

    _check(make, {"query": request.query, "candidates": list(request.candidates)},
           "score_slates", 4, ["Tree", "TreeNode", "Observation", "Judgment"])


def test_an_rvr_search_stopped_before_every_verify_resumes_to_the_same_ranking(
        cranfield_slice, cranfield_slice_index):
    dataset = load_beir(cranfield_slice)
    qrels = read_qrels(CRANFIELD / "qrels.tsv")
    qid = next(q for q in dataset.queries if q in qrels)

    def make(calls, saved):
        judge = RecordingJudge(calls, qrels, dataset.queries, dataset.corpus)
        return Reranker("rvr", engine=judge, index=cranfield_slice_index,
                        params={"rounds": 3, "min_rounds": 2})

    _check(make, {"query": Query(id=qid, text=dataset.queries[qid]), "candidates": []},
           "verify", 2, ["Judgment", "Query", "ParseStatus"])


@pytest.mark.parametrize("spec", list_methods(), ids=lambda s: s.name)
def test_every_registered_methods_state_types_are_registered(spec):
    """A state schema the serializer does not walk (a method outside
    rerankgraph.graphs) would leave its records unregistered."""
    from rerankgraph.graphs.checkpoints import _records

    graph = spec.graph(None, get_method)
    found: set[type] = set()
    _records(graph.builder.state_schema, found)
    assert {(t.__module__, t.__qualname__) for t in found} <= set(state_types())
