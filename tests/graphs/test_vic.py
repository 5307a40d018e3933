"""Vote-in-Context: listwise fusion of several runs, with the simulated judge (exact
windows and orders), from the job with two --run files, and bad input."""

from __future__ import annotations

import pytest

from rerankgraph.agents.vic import round_robin_pool
from rerankgraph.agents.windows import sliding_windows
from rerankgraph.data import load_beir, read_qrels, read_trec_run
from rerankgraph.jobs.rerank import JobSettings, fused_runs, run_rerank_job
from rerankgraph.retrievers.fusion import FOUND_BY, reciprocal_rank_fusion
from rerankgraph.sdk import Reranker
from rerankgraph.simulation import SimulatedJudge
from rerankgraph.types import Candidate
from tests.conftest import CRANFIELD, DL19
from tests.fakes import ScriptedEngine


def _write_run(path, run, reverse=False) -> None:
    lines = []
    for qid, entries in run.items():
        ordered = list(reversed(entries)) if reverse else entries
        lines += [f"{qid} Q0 {e.doc_id} {i} {len(ordered) - i} rev" for i, e in
                  enumerate(ordered, start=1)]
    path.write_text("\n".join(lines) + "\n")


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory):
    """DL19's BM25 run, and the same run with each query's top 30 reversed: two lists
    that disagree, so fusion has something to do."""
    folder = tmp_path_factory.mktemp("vic-runs")
    bm25 = read_trec_run(DL19 / "bm25.trec")
    first = {q: entries[:30] for q, entries in list(bm25.items())[:3]}
    _write_run(folder / "bm25.trec", first)
    _write_run(folder / "reversed.trec", first, reverse=True)
    return folder / "bm25.trec", folder / "reversed.trec"


def test_fused_runs_hold_rrf_order_and_every_sighting(two_runs):
    fused, found_by = fused_runs(list(two_runs))
    qid = next(iter(fused))
    a, b = (read_trec_run(p)[qid] for p in two_runs)
    expected = reciprocal_rank_fusion([[e.doc_id for e in a], [e.doc_id for e in b]])
    assert [e.doc_id for e in fused[qid]] == [d for d, _ in expected]
    top = a[0].doc_id  # first in bm25, last (30th) in the reversed run
    assert found_by[qid][top] == [{"source": "bm25", "rank": 1},
                                  {"source": "reversed", "rank": 30}]


@pytest.mark.parametrize("pool", ["round-robin", "rrf"])
def test_simulated_vic_job_makes_exact_calls_and_sorts_by_grade(two_runs, tmp_path, pool):
    """The paper's pool: one call over each list's top 10 (window 20, 2 lists); the RRF
    pool: the sliding windows over the fused 25."""
    out = tmp_path / "vic.trec"
    report = run_rerank_job(JobSettings(
        data=DL19, out=out, run=two_runs[0], more_runs=(two_runs[1],), method="vic",
        depth=25, simulate=DL19 / "qrels.tsv", provenance=tmp_path / "p.jsonl",
        params={"pool": pool}))
    windows = 1 if pool == "round-robin" else len(sliding_windows(25, 20, 10))
    assert [r.provenance.llm_calls for r in report.results] == [windows] * 3
    assert {r.provenance.candidates_from for r in report.results} == {
        "run:bm25.trec+reversed.trec"}
    qrels = read_qrels(DL19 / "qrels.tsv")
    fused, _ = fused_runs(list(two_runs))
    for result in report.results:
        qid, [judgment] = result.query_id, result.provenance.judgments[:1]
        grades = [qrels[qid].get(d, 0) for d in result.doc_ids]
        if pool == "rrf":
            # noise 0: every window sorts by grade; the first window's best 10 move up
            # into the last window, which so holds the 10 best of all 25 and sorts them
            assert grades[:10] == sorted(grades, reverse=True)[:10], qid
            continue
        runs = [read_trec_run(p)[qid][:25] for p in two_runs]
        in_depth = {e.doc_id for e in fused[qid][:25]}
        lists = [[e.doc_id for e in run if e.doc_id in in_depth] for run in runs]
        # rank r of each list in turn (bm25, then reversed), 10 ranks: 20 slots
        assert judgment.doc_ids == tuple(lists[i][r] for r in range(10) for i in (0, 1))
        pooled = list(dict.fromkeys(judgment.doc_ids))
        head = [qrels[qid].get(d, 0) for d in result.doc_ids[:len(pooled)]]
        assert head == sorted(head, reverse=True), qid  # the pool, sorted by grade
        rest = [d for d in (e.doc_id for e in fused[qid][:25]) if d not in pooled]
        assert list(result.doc_ids[len(pooled):]) == rest  # below it, in RRF order


def test_the_pool_takes_each_lists_top_in_turn_with_repeats():
    def seen(doc_id: str, **ranks: int) -> Candidate:
        return Candidate(doc_id=doc_id, text=doc_id, metadata={
            FOUND_BY: [{"source": s, "rank": r} for s, r in ranks.items()]})

    # a: bm25 #1 and dense #2; b: bm25 #2; c: dense #1; d: bm25 #3; e: dense #3
    candidates = [seen("a", bm25=1, dense=2), seen("b", bm25=2), seen("c", dense=1),
                  seen("d", bm25=3), seen("e", dense=3)]
    assert [c.doc_id for c in round_robin_pool(candidates, 4)] == ["a", "c", "b", "a"]
    assert [c.doc_id for c in round_robin_pool(candidates, 5)] == ["a", "c", "b", "a", "d"]
    assert [c.doc_id for c in round_robin_pool(candidates, 20)] == [
        "a", "c", "b", "a", "d", "e"]


def test_vic_sees_the_sources_in_its_prompt(two_runs):
    dataset = load_beir(DL19)
    fused, found_by = fused_runs(list(two_runs))
    qid = next(iter(fused))
    candidates = [Candidate(doc_id=e.doc_id, text=dataset.corpus[e.doc_id][1],
                            metadata={FOUND_BY: found_by[qid][e.doc_id]})
                  for e in fused[qid][:3]]
    engine = ScriptedEngine(["[3] > [1] > [2]"])
    result = Reranker("vic", engine=engine, params={"pool": "rrf"}).rerank(
        dataset.queries[qid], candidates)
    assert result.doc_ids == [candidates[2].doc_id, candidates[0].doc_id,
                              candidates[1].doc_id]
    prompt = engine.requests[0].messages[-1]["content"]
    first = found_by[qid][candidates[0].doc_id]
    assert (f"[1] ranks: {first[0]['source']} #{first[0]['rank']}, "
            f"{first[1]['source']} #{first[1]['rank']} (2 of 2 lists)") in prompt


def test_the_list_count_is_the_lists_fused_not_those_in_the_window():
    """Three lists fused; a window of two candidates seen by two of them says "of 3"."""
    candidates = [Candidate(doc_id=d, text=d, metadata={FOUND_BY: sources})
                  for d, sources in (("a", [{"source": "bm25", "rank": 1}]),
                                     ("b", [{"source": "dense", "rank": 1}]),
                                     ("c", [{"source": "splade", "rank": 1}]))]
    engine = ScriptedEngine(["[1] > [2]"])
    Reranker("vic", engine=engine, params={"pool": "rrf", "window": 2, "stride": 1}).rerank(
        "q", candidates)
    first_window = engine.requests[0].messages[-1]["content"]
    assert "ranks: dense #1 (1 of 3 lists)" in first_window
    assert "ranks: splade #1 (1 of 3 lists)" in first_window


def test_vic_takes_one_list(tmp_path, two_runs):
    """ViC's single-list mode: one --run is one list, named by the run; bare candidates
    are the first stage, each at its own rank."""
    report = run_rerank_job(JobSettings(data=DL19, out=tmp_path / "o.trec", run=two_runs[0],
                                        method="vic", depth=12, simulate=DL19 / "qrels.tsv"))
    qrels = read_qrels(DL19 / "qrels.tsv")
    for result in report.results:
        [judgment] = result.provenance.judgments
        assert len(judgment.doc_ids) == 12 == len(set(judgment.doc_ids))  # the run's top 12
        grades = [qrels[result.query_id].get(d, 0) for d in result.doc_ids]
        assert grades == sorted(grades, reverse=True)
    engine = ScriptedEngine(["[2] > [1]"])
    result = Reranker("vic", engine=engine).rerank("q", ["first text", "second text"])
    assert result.doc_ids == ["d1", "d0"]
    prompt = engine.requests[0].messages[-1]["content"]
    assert "[1] ranks: first stage #1 (1 of 1 list)" in prompt


def test_vic_over_two_retrievers_of_an_index(cranfield_slice, cranfield_slice_index):
    dataset = load_beir(cranfield_slice)
    qrels = read_qrels(CRANFIELD / "qrels.tsv")
    judge = SimulatedJudge(qrels, dataset.queries, dataset.corpus)
    reranker = Reranker("vic", engine=judge, index=cranfield_slice_index,
                        retriever="bm25,dense", depth=10)
    qid = next(q for q in dataset.queries if q in qrels)
    result = reranker.search(dataset.queries[qid], k=10, query_id=qid)
    assert result.provenance.llm_calls == 1 and len(result.doc_ids) == 10
    assert result.provenance.candidates_from == "retriever:hybrid(bm25+dense)"
    grades = [qrels[qid].get(d, 0) for d in result.doc_ids]
    assert grades == sorted(grades, reverse=True)
