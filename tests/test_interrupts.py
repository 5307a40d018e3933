"""Signals and dead servers, for real: Ctrl-C or SIGTERM mid-batch keeps finished work
and resumes to an identical run; SIGTERM to `serve` leaves no vLLM server behind; a
server that dies mid-job trips the circuit breaker and the job ends at once."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time

import pytest

from tests.conftest import DL19, TEST_API_KEY, finished_queries, resume_to_reference

ENV = {**os.environ, "RERANKGRAPH_API_KEY": TEST_API_KEY}


def _batch(out, base_url, queries="8", *extra):
    return [sys.executable, "-m", "rerankgraph.cli", "batch", "--method", "pointwise",
            "--data", str(DL19), "--run", str(DL19 / "bm25.trec"), "--out", str(out),
            "--queries", queries, "--depth", "5", "--base-url", base_url, *extra]


def _wait_for(state, count, job, seconds=240):
    deadline = time.monotonic() + seconds
    while finished_queries(state) < count and job.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)


@pytest.fixture(scope="module")
def reference_run(tmp_path_factory, engine_pool):
    """One uninterrupted job, the run every interrupted one must resume to."""
    reference = tmp_path_factory.mktemp("reference") / "reference.trec"
    done = subprocess.run(_batch(reference, engine_pool.get_served().base_url), env=ENV,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return reference


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_mid_batch_keeps_work_and_resumes_identically(tmp_path, served_engine, signum,
                                                               reference_run):
    reference = reference_run

    out, state = tmp_path / "run.trec", tmp_path / "run.trec.state.sqlite"
    job = subprocess.Popen(_batch(out, served_engine.base_url, "8", "--max-concurrency", "1"),
                           env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _wait_for(state, 2, job)
    job.send_signal(signum)
    _, stderr = job.communicate(timeout=120)
    stored = finished_queries(state)
    assert job.returncode == 130, stderr
    assert 2 <= stored < 8, "the job was not interrupted mid-way"
    last = stderr.strip().splitlines()[-2:]
    assert any("interrupted: finished queries and engine replies are kept in" in line
               and "rerun the same command to resume" in line for line in last), stderr
    assert "Traceback" not in stderr
    assert not out.exists()

    resume_to_reference(_batch(out, served_engine.base_url), ENV, out, reference, stored, 8)


def test_server_death_trips_the_breaker_and_the_job_ends_at_once(tmp_path, engine_pool,
                                                                  served_engine):
    out, state = tmp_path / "run.trec", tmp_path / "run.trec.state.sqlite"
    job = subprocess.Popen(_batch(out, served_engine.base_url, "43", "--max-concurrency", "1"),
                           env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _wait_for(state, 1, job)
    engine_pool.kill_server()
    killed_at = time.monotonic()
    try:
        _, stderr = job.communicate(timeout=300)
        ended_after = time.monotonic() - killed_at
        finished = finished_queries(state)
    finally:
        engine_pool.restart_server()
    assert job.returncode == 1, stderr
    # Without the breaker each of the ~40 remaining queries spends its own retries
    # (about 4 s each here); with it, 8 failures in a row stop everything.
    assert ended_after < 45, f"the job took {ended_after:.0f} s to end after the kill"
    failed_lines = [line for line in stderr.splitlines() if line.startswith("failed:")]
    breaker = [line for line in failed_lines if "stopped sending requests" in line]
    assert len(breaker) == 1 and "queries" in breaker[0], stderr
    assert len(failed_lines) <= 4, stderr  # one line per distinct error, not one per query
    assert f"{43 - finished} of 43 queries failed" in stderr


def _port_is_free(port: int) -> bool:
    with socket.socket() as probe:
        # As a server binds: connections of ours left in TIME_WAIT do not count.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def test_sigterm_to_serve_stops_its_vllm_server(engine_pool):
    engine_pool.close()  # never two engines at once on this machine
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    serve = subprocess.Popen([sys.executable, "-m", "rerankgraph.cli", "serve", "--port",
                              str(port)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True, start_new_session=True)
    try:
        url = serve.stdout.readline().strip()  # printed once the server is healthy
        assert url == f"http://127.0.0.1:{port}", serve.stderr.read()
        assert not _port_is_free(port)
        serve.send_signal(signal.SIGTERM)
        serve.wait(timeout=60)
        deadline = time.monotonic() + 30
        while not _port_is_free(port) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert _port_is_free(port)
        left = subprocess.run(["pgrep", "-f", f"--port {port}"], capture_output=True,
                              text=True).stdout.split()
        assert left == [], f"vLLM processes left behind: {left}"
    finally:
        if serve.poll() is None:
            os.killpg(serve.pid, signal.SIGKILL)
