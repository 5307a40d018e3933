"""Batch jobs: resume from the store, retry failed queries, resume after kill -9."""

import os
import signal
import subprocess
import sys
import time

from rerankgraph.jobs.runner import run_job
from rerankgraph.jobs.store import JobStore
from rerankgraph.sdk import Reranker, make_request
from rerankgraph.serving.base import Completion
from tests.conftest import DL19, TEST_API_KEY, finished_queries, resume_to_reference
from tests.fakes import ScriptedEngine

YES = Completion(texts=("yes",), logprobs=(({"yes": -0.2, "no": -1.7},),), prompt_tokens=50,
                 completion_tokens=1)


def test_job_resumes_finished_queries_and_retries_failed_ones(tmp_path):
    store = JobStore(tmp_path / "state.sqlite")
    requests = [make_request(f"query {i}", ["a", "b"], query_id=f"q{i}") for i in range(3)]
    flaky = ScriptedEngine([YES, YES, YES, YES, RuntimeError("boom")])
    from rerankgraph.errors import EngineError

    flaky.script[4] = EngineError("server went away")
    report = run_job(Reranker("pointwise", engine=flaky), requests, store)
    assert set(report.failures) == {"q2"} and report.resumed == 0
    assert set(store.finished()) == {"q0", "q1"}
    healthy = ScriptedEngine([YES])
    report = run_job(Reranker("pointwise", engine=healthy), requests, store)
    assert report.ok and report.resumed == 2 and len(healthy.requests) == 2
    assert [r.query_id for r in report.results] == ["q0", "q1", "q2"]


def _batch_cmd(out, base_url, *extra):
    return [sys.executable, "-m", "rerankgraph.cli", "batch", "--method", "pointwise",
            "--data", str(DL19), "--run", str(DL19 / "bm25.trec"), "--out", str(out),
            "--queries", "8", "--depth", "5", "--base-url", base_url, *extra]


def test_kill_and_resume_gives_a_byte_identical_run(tmp_path, served_engine):
    env = {**os.environ, "RERANKGRAPH_API_KEY": TEST_API_KEY}
    # The reference: one uninterrupted job.
    reference = tmp_path / "reference.trec"
    done = subprocess.run(_batch_cmd(reference, served_engine.base_url), env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr

    # The same job, killed with SIGKILL once some queries are stored, then rerun.
    out = tmp_path / "killed.trec"
    state = tmp_path / "killed.trec.state.sqlite"
    job = subprocess.Popen(_batch_cmd(out, served_engine.base_url, "--max-concurrency", "1"),
                           env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                           start_new_session=True)
    deadline = time.monotonic() + 240
    while finished_queries(state) < 2 and job.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    os.killpg(job.pid, signal.SIGKILL)
    job.wait()
    stored = finished_queries(state)
    assert 2 <= stored < 8, "the job was not killed mid-way"
    assert not out.exists()

    resume_to_reference(_batch_cmd(out, served_engine.base_url), env, out, reference, stored, 8)
    provenance = out.with_name(out.name + ".provenance.jsonl").read_text().splitlines()
    assert len(provenance) == 8 and len({line.split('"query_id":')[1][:12] for line in provenance}) == 8

    again = subprocess.run(_batch_cmd(out, served_engine.base_url), env=env,
                           capture_output=True, text=True, timeout=300)
    assert "8 queries reranked (8 resumed)" in again.stderr
    assert out.read_bytes() == reference.read_bytes()
