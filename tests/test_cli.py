"""The CLI end to end, in subprocesses, as a user runs it."""

import json
import os
import subprocess
import sys

import pytest

from rerankgraph.data import read_trec_run
from tests.conftest import DL19, TEST_API_KEY

CLI = [sys.executable, "-m", "rerankgraph.cli"]


def run_cli(*args, env=None, timeout=300):
    return subprocess.run([*CLI, *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, **(env or {})})


def test_methods_lists_the_registered_methods():
    done = run_cli("methods")
    assert done.returncode == 0 and "pointwise" in done.stdout and "rubric" in done.stdout


@pytest.mark.parametrize(("args", "message"), [
    (["--data", "/no/such/folder"], "data folder '/no/such/folder' does not exist"),
    (["--method", "nope"], "unknown method 'nope'"),
    (["--model", "/no/such/model"], "model path '/no/such/model' does not exist"),
    (["--param", "window=3"], "parameter 'window'"),
    (["--depth", "0"], "--depth must be a positive"),
    (["--method", "cascade", "--param", "stages=10@rubric:samples=4,temperature=0"],
     "samples=4 needs a temperature above 0"),
    (["--method", "cascade", "--param", "stages=10@listwise -> 20@pointwise"],
     "stage depths must not grow"),
])
def test_bad_input_is_one_line(tmp_path, args, message):
    base = {"--data": DL19, "--run": DL19 / "bm25.trec", "--out": tmp_path / "o.trec"}
    for flag, value in zip(args[::2], args[1::2], strict=True):
        base[flag] = value
    done = run_cli("rerank", *[x for pair in base.items() for x in pair])
    assert done.returncode == 2, done.stderr
    error_lines = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert len(error_lines) == 1 and message in error_lines[0]
    assert not (tmp_path / "o.trec").exists()


def test_run_with_bad_line_is_named(tmp_path):
    run = tmp_path / "bad.trec"
    run.write_text("264014 Q0 5611210 1 15.78 bm25\n264014 Q0 6641238 2\n")
    done = run_cli("rerank", "--data", DL19, "--run", run, "--out", tmp_path / "o.trec")
    assert done.returncode == 2 and "bad.trec:2: expected 6 fields" in done.stderr


def test_unreachable_base_url_is_reported_not_scored(tmp_path):
    done = run_cli("rerank", "--data", DL19, "--run", DL19 / "bm25.trec", "--out",
                   tmp_path / "o.trec", "--queries", "1", "--depth", "3",
                   "--base-url", "http://127.0.0.1:9")
    assert done.returncode == 1  # an engine error, not bad input
    assert "unreachable" in done.stderr and "gave up after" in done.stderr
    assert not (tmp_path / "o.trec").exists()


def test_rerank_then_eval_end_to_end(tmp_path, served_engine):
    out = tmp_path / "reranked.trec"
    done = run_cli("rerank", "--method", "pointwise", "--data", DL19, "--run",
                   DL19 / "bm25.trec", "--out", out, "--queries", "2", "--depth", "5",
                   "--base-url", served_engine.base_url, "--provenance", tmp_path / "p.jsonl",
                   env={"RERANKGRAPH_API_KEY": TEST_API_KEY})
    assert done.returncode == 0, done.stderr
    assert "2 queries reranked (0 resumed), 0 failed, 10 LLM calls (0 from cache)" in done.stderr
    reranked, first_stage = read_trec_run(out), read_trec_run(DL19 / "bm25.trec")
    assert list(reranked) == sorted(list(first_stage)[:2])
    for qid, entries in reranked.items():
        ids, bm25 = [e.doc_id for e in entries], [e.doc_id for e in first_stage[qid]]
        assert len(ids) == 100 and sorted(ids[:5]) == sorted(bm25[:5]) and ids[5:] == bm25[5:]
    assert TEST_API_KEY not in out.read_text() + (tmp_path / "p.jsonl").read_text() + done.stderr

    evaluated = run_cli("eval", "--qrels", DL19 / "qrels.tsv", out, DL19 / "bm25.trec")
    assert evaluated.returncode == 0, evaluated.stderr
    rows = [line for line in evaluated.stdout.splitlines() if "trec" in line]
    assert len(rows) == 2 and all("0." in row for row in rows)


def test_simulated_batch_is_labelled_everywhere(tmp_path):
    out = tmp_path / "sim.trec"
    done = run_cli("batch", "--method", "listwise", "--data", DL19, "--run", DL19 / "bm25.trec",
                   "--out", out, "--queries", "3", "--depth", "20", "--simulate", DL19 / "qrels.tsv",
                   "--sim-noise", "0.1")
    assert done.returncode == 0, done.stderr
    assert "SIMULATED JUDGE" in done.stderr
    assert all(line.endswith("rerankgraph-listwise-SIMULATED") for line in out.read_text().splitlines())
    provenance = out.with_name(out.name + ".provenance.jsonl").read_text().splitlines()
    assert len(provenance) == 3 and all('"simulated":true' in line for line in provenance)
    assert all('"model":"SIMULATED(noise=0.1' in line for line in provenance)
    evaluated = run_cli("eval", "--qrels", DL19 / "qrels.tsv", out, "--measure", "nDCG@10")
    # Answers come from the qrels, so the simulated ranking beats BM25 on these queries.
    assert float(evaluated.stdout.split("│")[-2]) > 0.7


def test_a_cascade_from_one_cli_string(tmp_path):
    out = tmp_path / "cascade.trec"
    done = run_cli("batch", "--method", "cascade", "--data", DL19, "--run", DL19 / "bm25.trec",
                   "--out", out, "--queries", "2", "--depth", "20", "--simulate",
                   DL19 / "qrels.tsv", "--param", "stages=20@pointwise -> 5@listwise",
                   "--param", "fusion=rrf")
    assert done.returncode == 0, done.stderr
    records = [json.loads(line) for line in
               out.with_name(out.name + ".provenance.jsonl").read_text().splitlines()]
    assert len(records) == 2
    for record in records:
        provenance = record.get("provenance", record)
        assert [(s["method"], s["reranked"], s["llm_calls"]) for s in provenance["trace"]] == [
            ("pointwise", 20, 20), ("listwise", 5, 1)]
        assert provenance["llm_calls"] == 21 and provenance["fusion"].startswith("rrf(k=60")
    drawn = run_cli("graph", "cascade", "--param", "stages=20@pointwise -> 5@listwise")
    assert drawn.returncode == 0
    assert "stage_1_pointwise" in drawn.stdout and "stage_2_listwise" in drawn.stdout


@pytest.mark.parametrize(("args", "message"), [
    (["--backend", "spark"], "--backend 'spark': use vllm or ray"),
    (["--backend", "ray", "--method", "listwise"], "'listwise' needs replies between its calls"),
    (["--backend", "ray", "--base-url", "http://127.0.0.1:9"], "drop --base-url"),
])
def test_batch_backend_errors(tmp_path, args, message):
    done = run_cli("batch", "--data", DL19, "--run", DL19 / "bm25.trec", "--out", tmp_path / "o.trec",
                   "--queries", "1", "--depth", "3", *args)
    assert done.returncode == 2 and message in done.stderr, done.stderr


def test_judge_options_that_cannot_work_are_one_line_errors(tmp_path):
    checks = [
        (["batch", "--data", DL19, "--run", DL19 / "bm25.trec", "--out", tmp_path / "o.trec",
          "--judge-profile", tmp_path / "p.json"],
         "--judge-profile fits the simulated judge: give --simulate QRELS too"),
        (["judge", "profile", "--data", DL19, "--run", DL19 / "bm25.trec", "--out",
          tmp_path / "p.json"], "give --qrels FILE"),
        (["models", "pull", "qwen-9b"], "unknown model 'qwen-9b'"),
        (["rerank", "--data", DL19, "--run", DL19 / "bm25.trec", "--out", tmp_path / "o.trec",
          "--model", "qwen-9b"], "unknown model 'qwen-9b'; known judges: smollm2-135m"),
    ]
    for args, message in checks:
        done = run_cli(*args)
        errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
        assert done.returncode == 2 and len(errors) == 1 and message in errors[0], done.stderr
    assert not list(tmp_path.iterdir())


def test_a_batch_answers_as_a_profiled_judge(tmp_path):
    from rerankgraph.data import load_beir
    from rerankgraph.jobs.profile import ProfileSettings, profile_judge
    from rerankgraph.simulation import SimulationSettings, simulated_judge

    profile = tmp_path / "noisy.json"
    noisy = simulated_judge(DL19 / "qrels.tsv", load_beir(DL19), SimulationSettings(score_noise=0.3))
    profile_judge(ProfileSettings(data=DL19, run=DL19 / "bm25.trec", qrels=DL19 / "qrels.tsv",
                                  out=profile, queries=3, skip=3, methods=("pointwise",)),
                  engine=noisy)
    out = tmp_path / "fitted.trec"
    done = run_cli("batch", "--method", "pointwise", "--data", DL19, "--run", DL19 / "bm25.trec",
                   "--out", out, "--queries", "3", "--depth", "20", "--simulate",
                   DL19 / "qrels.tsv", "--judge-profile", profile, "--param", "fusion=none")
    assert done.returncode == 0, done.stderr
    assert "SIMULATED JUDGE" in done.stderr and "profile=SIMULATED(noise=0.3" in done.stderr
    records = out.with_name(out.name + ".provenance.jsonl").read_text().splitlines()
    assert len(records) == 3
    assert all('"model":"SIMULATED(profile=SIMULATED(noise=0.3' in line for line in records)
    evaluated = run_cli("eval", "--qrels", DL19 / "qrels.tsv", out, "--measure", "nDCG@10")
    # Fitted to a noisy judge on three other queries, it ranks between BM25 (0.6465 on
    # these queries) and the exact judge at the same depth (0.8541).
    assert 0.6465 < float(evaluated.stdout.split("│")[-2]) < 0.8541
