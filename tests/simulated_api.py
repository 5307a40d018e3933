"""A real `rerankgraph.api` process over the simulated judge, for tests that need signals
or a separate process (SIGTERM drains, load)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import httpx

from rerankgraph.serving.server import free_port
from tests.conftest import DL19

SERVER = textwrap.dedent("""
    import sys
    from rerankgraph.api import build_app, serve
    from rerankgraph.data import load_beir, read_qrels
    from rerankgraph.sdk import Reranker
    from rerankgraph.simulation import SimulatedJudge

    data, latency, grace, in_flight, port = (sys.argv[1], float(sys.argv[2]),
                                             float(sys.argv[3]), int(sys.argv[4]),
                                             int(sys.argv[5]))
    dataset = load_beir(data)
    judge = SimulatedJudge(read_qrels(f"{data}/qrels.tsv"), dataset.queries, dataset.corpus,
                           latency_s=latency)
    if __name__ == "__main__":
        serve(build_app(Reranker("pointwise", engine=judge), max_in_flight=in_flight),
              "127.0.0.1", port, grace)
        print("exited cleanly", flush=True)
""")


def start_simulated_api(folder: Path, latency_s: float, grace_s: float,
                        max_in_flight: int = 32) -> tuple[subprocess.Popen[str], str]:
    """The process (its output piped) and its URL, once /health answers."""
    script = folder / "server.py"
    script.write_text(SERVER)
    port = free_port()
    process = subprocess.Popen([sys.executable, str(script), str(DL19), str(latency_s),
                                str(grace_s), str(max_in_flight), str(port)],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               env={**os.environ, "PYTHONPATH": os.getcwd()})
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                return process, url
        except httpx.TransportError:
            time.sleep(0.2)
    process.kill()
    raise AssertionError(f"server did not start: {process.communicate()[0]}")
