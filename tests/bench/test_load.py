"""bench/load.py against a real API process (the simulated judge answers after a delay):
every request sent ends as one status, a refusal or a loss, and the tally agrees with the
server's own /metrics."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import httpx
import pytest

from rerankgraph.serving.server import free_port
from tests.conftest import DL19

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
import load  # noqa: E402

SERVER = textwrap.dedent("""
    import sys
    from rerankgraph.api import build_app, serve
    from rerankgraph.data import load_beir, read_qrels
    from rerankgraph.sdk import Reranker
    from rerankgraph.simulation import SimulatedJudge

    data, latency, in_flight, port = sys.argv[1], float(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    dataset = load_beir(data)
    judge = SimulatedJudge(read_qrels(f"{data}/qrels.tsv"), dataset.queries, dataset.corpus,
                           latency_s=latency)
    if __name__ == "__main__":
        serve(build_app(Reranker("pointwise", engine=judge), max_in_flight=in_flight),
              "127.0.0.1", port, 5.0)
""")
BODIES = [{"query": "what is a physician's assistant", "documents": ["a", "b", "c"]}]


@pytest.fixture
def server(tmp_path):
    script = tmp_path / "server.py"
    script.write_text(SERVER)
    port = free_port()
    process = subprocess.Popen([sys.executable, str(script), str(DL19), "0.2", "2", str(port)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               env={**os.environ, "PYTHONPATH": os.getcwd()})
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                break
        except httpx.TransportError:
            time.sleep(0.2)
    yield load.Server(process, url)
    if process.poll() is None:
        process.kill()
    process.wait()


def test_every_request_is_counted_once_and_the_server_agrees(server):
    tally, wall_s, shutdown = asyncio.run(load.drive(
        server.url, BODIES, clients=6, duration_s=3.0, drain_s=10.0, server=server,
        sigterm_at=None, timeout_s=10.0))
    assert tally.lost == 0 and tally.refused == 0 and not shutdown
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
