"""`rerankgraph report` as a user runs it: the summary on stdout, and bad input as one
line naming the file, exit 2."""

import os
import subprocess
import sys

from tests.report.conftest import QUERIES, write_first_stage, write_qrels

CLI = [sys.executable, "-m", "rerankgraph.cli", "report"]


def report(*args):
    return subprocess.run([*CLI, *map(str, args)], capture_output=True, text=True,
                          timeout=120, env=os.environ.copy())


def one_error_line(done):
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2 and len(lines) == 1, done.stderr
    return lines[0]


def test_summary_on_stdout_with_each_runs_provenance_found_beside_it(case, tmp_path):
    out = tmp_path / "r.html"
    done = report("--qrels", case.qrels, "--rel", "2", case.bm25, case.pointwise,
                  case.listwise, "--out", out)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].split()[:5] == ["run", "nDCG@10", "nDCG@20", "R@100", "MRR@10"]
    # bm25 has no provenance file: its cost columns stay blank; the others' are found.
    assert len(lines[1].split()) == 6 and len(lines[2].split()) == 11
    assert any(line.startswith("  pointwise: Δ +") for line in lines)
    assert f"report written to {out}" in done.stderr and out.stat().st_size > 10_000


def test_runs_over_different_queries_say_how_many_are_shared(case, tmp_path):
    short = tmp_path / "short.trec"
    write_first_stage(short, list(QUERIES)[:4])
    line = one_error_line(report("--qrels", case.qrels, case.bm25, short,
                                 "--out", tmp_path / "r.html"))
    assert line == (f"error: the runs cover different queries ({case.bm25} 6, {short} 4); "
                    "4 are in every run: pass --shared to report on those only")


def test_shared_reports_on_the_shared_queries_only(case, tmp_path):
    short = tmp_path / "short.trec"
    write_first_stage(short, list(QUERIES)[:4])
    done = report("--qrels", case.qrels, "--shared", case.bm25, short,
                  "--out", tmp_path / "r.html")
    assert done.returncode == 0, done.stderr
    assert "over 4 queries" in done.stdout
    assert "bm25: 2 of its queries are in some run only, left out (--shared)" in done.stderr


def test_provenance_of_another_run_is_refused(case, tmp_path):
    other = case.provenance(case.listwise)
    line = one_error_line(report("--qrels", case.qrels, case.bm25, case.pointwise,
                                 "--provenance", "-", "--provenance", other,
                                 "--out", tmp_path / "r.html"))
    assert line.startswith(f"error: --provenance {other} is not the provenance of run "
                           f"{case.pointwise}: the run's tag 'rerankgraph-pointwise-SIMULATED' "
                           "names method 'pointwise', the provenance listwise")


def test_qrels_without_the_runs_queries_are_refused(case, tmp_path):
    qrels = tmp_path / "few.tsv"
    write_qrels(qrels, {"q1": {"d1": 1}})
    line = one_error_line(report("--qrels", qrels, case.bm25, "--out", tmp_path / "r.html"))
    assert line == (f"error: {qrels}: no judgments for 5 of the 6 queries of the runs "
                    "(first: 'q2'); give the qrels of these queries")


def test_an_agreement_file_that_is_not_json_is_refused(case, tmp_path):
    bad = tmp_path / "agreement.json"
    bad.write_text("{not json")
    line = one_error_line(report("--qrels", case.qrels, case.bm25, "--agreement", bad,
                                 "--out", tmp_path / "r.html"))
    assert line.startswith(f"error: --agreement {bad}: not valid JSON")


def test_a_baseline_that_is_not_among_the_runs_is_refused(case, tmp_path):
    line = one_error_line(report("--qrels", case.qrels, case.bm25, case.pointwise,
                                 "--baseline", case.listwise, "--out", tmp_path / "r.html"))
    assert line == (f"error: --baseline {case.listwise} is not one of the runs; list it "
                    "among RUN too")


def test_an_out_that_is_one_of_the_inputs_is_refused(case, tmp_path):
    line = one_error_line(report("--qrels", case.qrels, case.bm25, "--out", case.bm25))
    assert line == f"error: --out {case.bm25} is one of the inputs; write the report elsewhere"
