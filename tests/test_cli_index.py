"""`rerankgraph index build`, `retrieve`, and rerank/batch with --index, end to end in
subprocesses."""

from __future__ import annotations

import json

import pytest

from rerankgraph.data import read_trec_run
from tests.conftest import CRANFIELD, TEST_API_KEY
from tests.test_cli import run_cli


@pytest.fixture(scope="module")
def bm25_index(cranfield_slice, tmp_path_factory):
    folder = tmp_path_factory.mktemp("cli-index") / "idx"
    done = run_cli("index", "build", "--data", cranfield_slice, "--out", folder, "--no-dense")
    assert done.returncode == 0, done.stderr
    assert "300 documents; bm25" in done.stderr and "docs/s" in done.stderr
    return folder


def _one_error_line(done) -> str:
    assert done.returncode == 2, done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, done.stderr
    return errors[0]


def test_build_again_reuses_and_another_corpus_is_refused(bm25_index, tmp_path):
    again = run_cli("index", "build", "--data", CRANFIELD.parent / "cranfield", "--out",
                    bm25_index, "--no-dense")
    assert "built on another corpus" in _one_error_line(again) and "--rebuild" in again.stderr


def test_build_reports_reuse(cranfield_slice, bm25_index):
    done = run_cli("index", "build", "--data", cranfield_slice, "--out", bm25_index,
                   "--no-dense")
    assert done.returncode == 0 and "bm25 reused" in done.stderr


def test_retrieve_writes_the_index_top_k(cranfield_slice, bm25_index, tmp_path,
                                         cranfield_slice_index):
    out = tmp_path / "run.trec"
    done = run_cli("retrieve", "--index", bm25_index, "--data", cranfield_slice, "--out", out,
                   "--k", "10", "--queries", "5")
    assert done.returncode == 0, done.stderr
    run = read_trec_run(out)
    queries = [json.loads(line) for line in (cranfield_slice / "queries.jsonl").open()][:5]
    expected = cranfield_slice_index.bm25.search({q["_id"]: q["text"] for q in queries}, 10)
    assert {q: [e.doc_id for e in entries] for q, entries in run.items()} == {
        q: [d for d, _ in hits] for q, hits in expected.items()}


def test_retrieve_dense_from_the_cli(cranfield_slice, cranfield_slice_index, tmp_path):
    out = tmp_path / "dense.trec"
    done = run_cli("retrieve", "--index", cranfield_slice_index.path, "--data", cranfield_slice,
                   "--out", out, "--k", "5", "--queries", "3", "--retriever", "dense")
    assert done.returncode == 0, done.stderr
    queries = [json.loads(line) for line in (cranfield_slice / "queries.jsonl").open()][:3]
    expected = cranfield_slice_index.dense.search({q["_id"]: q["text"] for q in queries}, 5)
    assert {q: [e.doc_id for e in v] for q, v in read_trec_run(out).items()} == {
        q: [d for d, _ in hits] for q, hits in expected.items()}


@pytest.mark.parametrize(("args", "message"), [
    (["--k", "0"], "--k must be a positive number"),
    (["--retriever", "sparse"], "--retriever 'sparse': use one of bm25, dense, hybrid"),
    (["--retriever", "dense"], "has no embeddings; build it with --dense"),
])
def test_retrieve_bad_input_is_one_line(cranfield_slice, bm25_index, tmp_path, args, message):
    out = tmp_path / "o.trec"
    done = run_cli("retrieve", "--index", bm25_index, "--data", cranfield_slice, "--out", out,
                   *args)
    assert message in _one_error_line(done)
    assert not out.exists()


def test_a_search_method_writes_its_top_k_without_a_run(cranfield_slice, bm25_index, tmp_path,
                                                        cranfield_slice_index):
    out = tmp_path / "search.trec"
    done = run_cli("batch", "--method", "retrieve", "--index", bm25_index, "--data",
                   cranfield_slice, "--out", out, "--k", "7", "--queries", "4")
    assert done.returncode == 0, done.stderr
    assert "loading engine" not in done.stderr  # no model for a method without LLM calls
    run = read_trec_run(out)
    assert len(run) == 4 and all(len(v) == 7 for v in run.values())
    provenance = [json.loads(line) for line in
                  (tmp_path / "search.trec.provenance.jsonl").open()]
    assert {p["provenance"]["candidates_from"] for p in provenance} == {
        "method:retrieve(bm25)"}


@pytest.mark.parametrize(("args", "message"), [
    (["--method", "retrieve", "--run", "RUN"], "searches a corpus: give --index"),
    (["--method", "pointwise"], "reranks candidates: give --run"),
    (["--method", "pointwise", "--run", "RUN", "--index", "INDEX"],
     "give --run or --index, not both"),
    (["--method", "retrieve", "--run", "RUN", "--index", "INDEX"],
     "searches the index itself: drop --run"),
    (["--method", "pointwise", "--index", "INDEX", "--depth", "0"],
     "--depth must be a positive"),
    (["--method", "rvr"], "method 'rvr' searches a corpus: give --index"),
    (["--method", "rvr", "--index", "INDEX", "--param", "rounds=0"],
     "rounds must be 1 or more, got 0"),
    (["--method", "rvr", "--index", "INDEX", "--param", "threshold=150"],
     "threshold is a confidence from 0 to 100, got 150"),
])
def test_index_and_run_combinations_are_checked(cranfield_slice, bm25_index, tmp_path, args,
                                                message):
    files = {"RUN": CRANFIELD / "bm25.trec", "INDEX": bm25_index}
    done = run_cli("rerank", "--data", cranfield_slice, "--out", tmp_path / "o.trec",
                   *[files.get(a, a) for a in args])
    assert message in _one_error_line(done)
    assert not (tmp_path / "o.trec").exists()


def test_simulated_rerank_after_retrieval_makes_exact_calls(cranfield_slice, bm25_index,
                                                            tmp_path):
    """Pointwise over 3 queries x top 10 retrieved: exactly 30 calls, and the simulated
    judge (noise 0) puts every judged document above the unjudged ones."""
    out = tmp_path / "sim.trec"
    done = run_cli("batch", "--method", "pointwise", "--index", bm25_index, "--data",
                   cranfield_slice, "--out", out, "--depth", "10", "--queries", "3",
                   "--simulate", CRANFIELD / "qrels.tsv")
    assert done.returncode == 0, done.stderr
    assert "3 queries reranked (0 resumed), 0 failed, 30 LLM calls" in done.stderr
    from rerankgraph.data import read_qrels

    qrels = read_qrels(CRANFIELD / "qrels.tsv")
    for qid, entries in read_trec_run(out).items():
        ids = [e.doc_id for e in entries]
        assert len(ids) == 10
        grades = [qrels.get(qid, {}).get(d, 0) for d in ids]
        assert grades == sorted(grades, reverse=True), (qid, grades)
    records = [json.loads(line) for line in (tmp_path / "sim.trec.provenance.jsonl").open()]
    assert {r["provenance"]["candidates_from"] for r in records} == {"retriever:bm25"}


def test_rerank_with_index_on_the_real_engine(cranfield_slice, bm25_index, tmp_path,
                                              served_engine, cranfield_slice_index):
    out = tmp_path / "real.trec"
    done = run_cli("rerank", "--method", "pointwise", "--index", bm25_index, "--data",
                   cranfield_slice, "--out", out, "--depth", "5", "--queries", "2",
                   "--base-url", served_engine.base_url,
                   env={"RERANKGRAPH_API_KEY": TEST_API_KEY})
    assert done.returncode == 0, done.stderr
    assert "2 queries reranked (0 resumed), 0 failed, 10 LLM calls" in done.stderr
    queries = [json.loads(line) for line in (cranfield_slice / "queries.jsonl").open()][:2]
    retrieved = cranfield_slice_index.bm25.search({q["_id"]: q["text"] for q in queries}, 5)
    for qid, entries in read_trec_run(out).items():
        assert sorted(e.doc_id for e in entries) == sorted(d for d, _ in retrieved[qid])


def test_simulated_rvr_and_vic_from_the_cli(cranfield_slice, cranfield_slice_index, tmp_path):
    """rvr searches the index; vic fuses the index's bm25 and dense runs. The simulated
    judge makes rvr's exact first-round calls (one expansion, one verdict per round)."""
    out = tmp_path / "rvr.trec"
    done = run_cli("batch", "--method", "rvr", "--index", cranfield_slice_index.path,
                   "--data", cranfield_slice, "--out", out, "--k", "12", "--queries", "3",
                   "--simulate", CRANFIELD / "qrels.tsv")
    assert done.returncode == 0, done.stderr
    assert all(len(v) == 12 for v in read_trec_run(out).values())
    records = [json.loads(line) for line in (tmp_path / "rvr.trec.provenance.jsonl").open()]
    for record in records:
        trace = record["provenance"]["trace"]
        rounds = trace[-1]["rounds"]
        refines = sum(step["phase"] == "refine" for step in trace)
        assert record["provenance"]["llm_calls"] == 1 + rounds + refines
        assert trace[-1]["phase"] == "stop" and trace[-1]["reason"]
    out = tmp_path / "vic.trec"
    done = run_cli("batch", "--method", "vic", "--index", cranfield_slice_index.path,
                   "--retriever", "bm25,dense", "--depth", "10", "--data", cranfield_slice,
                   "--out", out, "--queries", "2", "--simulate", CRANFIELD / "qrels.tsv")
    assert done.returncode == 0, done.stderr
    assert "2 queries reranked (0 resumed), 0 failed, 2 LLM calls" in done.stderr
    records = [json.loads(line) for line in (tmp_path / "vic.trec.provenance.jsonl").open()]
    assert {r["provenance"]["candidates_from"] for r in records} == {
        "retriever:hybrid(bm25+dense)"}
