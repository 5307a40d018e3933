"""Small report inputs built in tmp_path: a BEIR folder, graded qrels, a first-stage run
that buries the relevant documents, and two runs reranked by the simulated judge, with
the provenance `rerankgraph batch` would write."""

import json
from dataclasses import dataclass
from pathlib import Path

import pytest

from rerankgraph.data import read_trec_run, run_lines, write_trec_run
from rerankgraph.sdk import Reranker, make_request
from rerankgraph.simulation import SimulatedJudge, SimulationSettings

QUERIES = {f"q{i}": f"question number {i} about fleas" for i in range(1, 7)}
DOCS = [f"d{i}" for i in range(12)]
# Each query's first stage ranks d0..d11 in order; its relevant documents sit low, at a
# place that shifts with the query, so the judge has something to lift.
GRADES = {qid: {DOCS[(6 + i) % 12]: 3, DOCS[(8 + i) % 12]: 2, DOCS[(10 + i) % 12]: 1,
                DOCS[i % 12]: 0, DOCS[(i + 1) % 12]: 0}
          for i, qid in enumerate(QUERIES)}


@dataclass(frozen=True)
class Case:
    data: Path
    qrels: Path
    bm25: Path
    pointwise: Path
    listwise: Path

    def provenance(self, run: Path) -> Path:
        return run.with_name(run.name + ".provenance.jsonl")


def write_beir(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "corpus.jsonl").write_text("".join(
        json.dumps({"_id": d, "title": "", "text": f"passage {d} on fleas and dogs"}) + "\n"
        for d in DOCS))
    (folder / "queries.jsonl").write_text("".join(
        json.dumps({"_id": q, "text": t}) + "\n" for q, t in QUERIES.items()))


def write_qrels(path: Path, grades: dict[str, dict[str, int]]) -> None:
    path.write_text("query-id\tcorpus-id\tscore\n" + "".join(
        f"{q}\t{d}\t{g}\n" for q, docs in grades.items() for d, g in docs.items()))


def write_first_stage(path: Path, queries) -> None:
    path.write_text("".join(f"{q} Q0 {d} {r} {20 - r} bm25\n"
                            for q in queries for r, d in enumerate(DOCS, start=1)))


def rerank(case_dir: Path, bm25: Path, method: str, noise: float) -> Path:
    """A simulated run of `method` and its provenance, named as `batch` names them."""
    judge = SimulatedJudge(GRADES, QUERIES, {d: ("", f"passage {d} on fleas and dogs")
                                             for d in DOCS},
                           SimulationSettings(score_noise=noise), seed=7)
    first = read_trec_run(bm25)
    requests = [make_request(text, [{"doc_id": e.doc_id, "text": f"passage {e.doc_id}"}
                                    for e in first[q]], query_id=q)
                for q, text in QUERIES.items()]
    results = Reranker(method, engine=judge).rerank_batch(requests)
    run = case_dir / f"{method}.trec"
    write_trec_run(run, {r.query_id: run_lines(r, first[r.query_id],
                                               f"rerankgraph-{method}-SIMULATED")
                         for r in results})
    run.with_name(run.name + ".provenance.jsonl").write_text(
        "".join(r.model_dump_json() + "\n" for r in results))
    return run


@pytest.fixture(scope="session")
def case(tmp_path_factory) -> Case:
    root = tmp_path_factory.mktemp("report-case")
    write_beir(root / "data")
    write_qrels(root / "qrels.tsv", GRADES)
    bm25 = root / "bm25.trec"
    write_first_stage(bm25, QUERIES)
    # A noisy pointwise judge wins some queries and loses others; listwise is exact.
    return Case(data=root / "data", qrels=root / "qrels.tsv", bm25=bm25,
                pointwise=rerank(root, bm25, "pointwise", noise=0.6),
                listwise=rerank(root, bm25, "listwise", noise=0.0))

