"""`rerankgraph assess` end to end, in subprocesses, with the simulated judge."""

import json

import pytest

from rerankgraph.data import read_qrels
from tests.conftest import DL19
from tests.test_cli import run_cli

QRELS = DL19 / "qrels.tsv"


def _assess(tmp_path, *args, pool=DL19 / "bm25.trec"):
    return run_cli("assess", "--data", DL19, "--pool", pool, "--out", tmp_path / "llm.qrels",
                   "--queries", "3", "--depth", "10", "--simulate", QRELS, *args)


def test_assess_writes_qrels_and_the_agreement_file(tmp_path):
    reversed_run = tmp_path / "reversed.trec"
    lines = [line.split() for line in (DL19 / "bm25.trec").read_text().splitlines()]
    reversed_run.write_text("".join(f"{q} Q0 {d} {r} {-float(s)} rev\n"
                                    for q, _, d, r, s, _ in lines))
    done = _assess(tmp_path, "--method", "rubric", "--qrels", QRELS,
                   "--runs", DL19 / "bm25.trec", "--runs", reversed_run)
    assert done.returncode == 0, done.stderr
    assert "Cohen's kappa, graded 0-3 (unweighted): 1.0000" in done.stdout
    assert "Cohen's kappa, binary (grade >= 2): 1.0000" in done.stdout
    assert "Kendall's tau of 2 runs by nDCG@10, human vs LLM labels: 1.0000" in done.stdout
    assert "3 queries assessed (0 resumed)" in done.stderr and "30 pairs labelled" in done.stderr
    labels = read_qrels(tmp_path / "llm.qrels")
    assert sum(map(len, labels.values())) == 30
    report = json.loads((tmp_path / "llm.agreement.json").read_text())
    assert report["kappa_graded"] == 1.0 and report["binary_threshold"] == 2
    assert report["pairs"] + report["skipped"] == 30
    assert report["tau"]["value"] == 1.0 and report["tau"]["runs"] == [
        str(DL19 / "bm25.trec"), str(reversed_run)]

    again = _assess(tmp_path, "--method", "rubric")  # resumed: nothing is asked again
    assert again.returncode == 0, again.stderr
    assert "3 queries assessed (3 resumed)" in again.stderr


@pytest.mark.parametrize(("args", "message"), [
    (["--method", "listwise"], "unknown assessment method 'listwise': use pointwise or rubric"),
    (["--qrels", "OTHER"], "judges none of the pool's 3 assessed queries"),
    (["--runs", str(DL19 / "bm25.trec")], "--runs needs --qrels"),
    (["--qrels", str(QRELS), "--runs", str(DL19 / "bm25.trec")], "two runs at least"),
])
def test_bad_input_is_one_line(tmp_path, args, message):
    other = tmp_path / "other.qrels"
    other.write_text("999 0 d 1\n")
    done = _assess(tmp_path, *[str(other) if a == "OTHER" else a for a in args])
    assert done.returncode == 2, done.stderr
    errors = [line for line in done.stderr.splitlines() if "error" in line.lower()]
    assert len(errors) == 1 and message in errors[0], done.stderr


def test_pool_documents_missing_from_the_corpus_are_said_on_stdout(tmp_path):
    pool = tmp_path / "pool.trec"
    pool.write_text("264014 Q0 5611210 1 2.0 x\n264014 Q0 nowhere 2 1.0 x\n")
    done = _assess(tmp_path, "--qrels", QRELS, pool=pool)
    assert done.returncode == 0, done.stderr
    assert "skipped 1 pool documents missing from" in done.stdout
    assert json.loads((tmp_path / "llm.agreement.json").read_text())["skipped"] == 1
