"""Engine faults against a real `vllm serve`: a wrong key, and a server killed mid-job
and restarted. The API key must never appear in any output."""

import os
import subprocess
import sys
import time

import pytest

from rerankgraph.errors import EngineError
from rerankgraph.serving.openai_http import OpenAIEngine
from tests.conftest import DL19, TEST_API_KEY, finished_queries


def test_wrong_api_key_on_a_real_server(served_engine):
    with pytest.raises(EngineError) as info:
        OpenAIEngine(served_engine.base_url, api_key="wrong-key")
    assert "refused the API key (HTTP 401)" in str(info.value)
    assert "wrong-key" not in str(info.value)


def test_server_argv_and_engine_repr_hold_no_key(engine_pool, served_engine):
    assert TEST_API_KEY not in " ".join(engine_pool.server.argv)
    assert TEST_API_KEY not in repr(served_engine)


def _job(out, base_url):
    return [sys.executable, "-m", "rerankgraph.cli", "batch", "--method", "pointwise",
            "--data", str(DL19), "--run", str(DL19 / "bm25.trec"), "--out", str(out),
            "--queries", "6", "--depth", "5", "--base-url", base_url, "--max-concurrency", "1"]


def test_server_killed_mid_job_then_rerun_completes_only_what_is_missing(
        tmp_path, engine_pool, served_engine):
    env = {**os.environ, "RERANKGRAPH_API_KEY": TEST_API_KEY}
    out = tmp_path / "run.trec"
    state = tmp_path / "run.trec.state.sqlite"
    job = subprocess.Popen(_job(out, served_engine.base_url), env=env, text=True,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 240
    while finished_queries(state) < 1 and job.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    engine_pool.kill_server()
    _, stderr = job.communicate(timeout=300)
    finished = finished_queries(state)
    try:
        assert job.returncode == 1, stderr
        assert 1 <= finished < 6
        assert f"{6 - finished} of 6 queries failed" in stderr
        assert "gave up after 4 attempts" in stderr and "Rerun the same command" in stderr
        # Failed queries are reported, never written as scores.
        written = {line.split()[0] for line in out.read_text().splitlines()}
        assert len(written) == finished
    finally:
        engine_pool.restart_server()

    resumed = subprocess.run(_job(out, served_engine.base_url), env=env, text=True,
                             capture_output=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    assert f"6 queries reranked ({finished} resumed), 0 failed" in resumed.stderr
    assert len({line.split()[0] for line in out.read_text().splitlines()}) == 6

    outputs = [out.read_text(), out.with_name(out.name + ".provenance.jsonl").read_text(),
               stderr, resumed.stderr, state.read_bytes().decode("latin-1")]
    assert not any(TEST_API_KEY in text for text in outputs)
