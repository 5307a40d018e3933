"""bench/load.py against a real API process (the simulated judge answers after a delay):
every request sent ends as one status, a refusal or a loss, and the tally agrees with the
server's own /metrics."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest

from tests.simulated_api import start_simulated_api

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
import load  # noqa: E402

BODIES = [{"query": "what is a physician's assistant", "documents": ["a", "b", "c"]}]


@pytest.fixture
def server(tmp_path):
    # Two in flight at most and 0.2 s a call: six clients are sure to meet the bound.
    process, url = start_simulated_api(tmp_path, latency_s=0.2, grace_s=5.0, max_in_flight=2)
    yield load.Server(process, url)
    if process.poll() is None:
        process.kill()
    process.communicate()


def test_every_request_is_counted_once_and_the_server_agrees(server):
    tally, wall_s, shutdown = asyncio.run(load.drive(
        server.url, BODIES, clients=6, duration_s=3.0, drain_s=10.0, server=server,
        sigterm_at=None, timeout_s=10.0))
    assert tally.lost == 0 and tally.refused == 0 and "exit_code" not in shutdown
    assert shutdown["rss_samples"][0][1] > 10  # sampled from the start
    assert tally.sent == tally.answered
    # Two in flight at most, six clients: some are turned away, and all that are are 429s.
    assert set(tally.statuses) == {200, 429} and tally.statuses[429] > 0
    assert len(tally.ok_latencies) == tally.statuses[200]
    counted = load.server_status_counts(server.url)
    assert counted == {"200": tally.statuses[200], "429": tally.statuses[429]}
    assert load.rss_mib(server.process.pid) > 10


def test_after_sigterm_every_request_is_answered_or_refused(server):
    tally, _, shutdown = asyncio.run(load.drive(
        server.url, BODIES, clients=6, duration_s=30.0, drain_s=10.0, server=server,
        sigterm_at=1.5, timeout_s=10.0))
    assert shutdown["exit_code"] == 0 and shutdown["exit_after_s"] < 10
    assert tally.lost == 0
    assert tally.sent == tally.answered + tally.refused
    assert tally.refused >= 6  # each client ends on a refused connection once it has gone
    assert tally.statuses[200] > 0


def test_percentiles_and_report_lines():
    assert load.percentile([1.0, 2.0, 3.0, 4.0, 5.0], 0.5) == 3.0
    assert load.percentile([], 0.5) != load.percentile([], 0.5)  # nan: nothing to rank
