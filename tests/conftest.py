"""Shared fixtures. The real engines are loaded once per session, and never two at once
(the machine has two cores): tests on the in-process engine run first, then the
in-process engine is closed before the vLLM server starts."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import pytest

from rerankgraph.data import BeirFolder, build_job, load_beir, read_trec_run
from rerankgraph.serving.platform import NO_ENGINE_ENV

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
DL19 = DATA / "trec-dl19-passage"
TEST_API_KEY = "rg-test-secret-6d1f0c"

os.environ.setdefault("VLLM_LOGGING_LEVEL", "WARNING")


class EnginePool:
    """Holds at most one real engine: the in-process one or the served one."""

    def __init__(self) -> None:
        self.local = None
        self.server = None
        self.served = None

    def get_local(self):
        self._close_served()
        if self.local is None:
            from rerankgraph.serving.model_store import pull_embedded_model
            from rerankgraph.serving.vllm_local import VllmEngine

            self.local = VllmEngine(str(pull_embedded_model()))
        return self.local

    def get_served(self):
        if self.local is not None:
            self.local.close()
            self.local = None
        if self.served is None:
            from rerankgraph.serving.model_store import pull_embedded_model
            from rerankgraph.serving.openai_http import OpenAIEngine
            from rerankgraph.serving.server import start_server

            self.server = start_server(str(pull_embedded_model()), api_key=TEST_API_KEY,
                                       served_model_name="smollm2")
            self.served = OpenAIEngine(self.server.base_url, api_key=TEST_API_KEY)
        return self.served

    def kill_server(self) -> None:
        """Kills the served engine's server process (SIGKILL), as a crash would."""
        self.server.kill()

    def restart_server(self) -> None:
        """Starts the server again on the same port; the HTTP engine reconnects."""
        from rerankgraph.serving.model_store import pull_embedded_model
        from rerankgraph.serving.server import start_server

        port = int(self.server.base_url.rsplit(":", 1)[1])
        self.server = start_server(str(pull_embedded_model()), port=port, api_key=TEST_API_KEY,
                                   served_model_name="smollm2")

    def _close_served(self) -> None:
        if self.served is not None:
            self.served.close()
            self.server.stop()
            self.served = self.server = None

    def close(self) -> None:
        if self.local is not None:
            self.local.close()
            self.local = None
        self._close_served()


@pytest.fixture(scope="session")
def engine_pool():
    pool = EnginePool()
    yield pool
    pool.close()


@pytest.fixture
def local_engine(engine_pool):
    return engine_pool.get_local()


@pytest.fixture
def served_engine(engine_pool):
    return engine_pool.get_served()


@pytest.fixture(params=["local", "served"])
def any_engine(request, engine_pool):
    """The shared conformance fixture: every real backend."""
    return engine_pool.get_local() if request.param == "local" else engine_pool.get_served()


def _uses_server(item: pytest.Item) -> bool:
    callspec = getattr(item, "callspec", None)
    if callspec is not None and callspec.params.get("any_engine") == "served":
        return True
    return "served_engine" in getattr(item, "fixturenames", ())


def _uses_engine(item: pytest.Item) -> bool:
    names = set(getattr(item, "fixturenames", ()))
    return bool(names & {"local_engine", "served_engine", "any_engine", "engine_pool"})


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # Marked by what they start, so `make check` can leave them out; a test that starts
    # an engine some other way (a CLI subprocess) carries its marker in its own file.
    for item in items:
        if _uses_engine(item):
            item.add_marker(pytest.mark.engine)
        if _uses_server(item):
            item.add_marker(pytest.mark.server)
    # Unit tests first, then the in-process engine, then the server: one load each.
    # Ray Data starts engines of its own, so its tests come after every pooled engine.
    items.sort(key=lambda item: (_uses_engine(item), "jobs/test_ray.py" in item.nodeid,
                                 _uses_server(item)))


STARTS_ENGINES = ("engine", "server", "ray")


@pytest.fixture(autouse=True)
def _engines_off_unless_marked(request, monkeypatch):
    """A test not marked engine, server or ray runs with engines refused, in every tier:
    one that starts an engine (in-process, or through a CLI it spawns) fails at once, so
    the markers `make check` selects by stay honest."""
    if not any(request.node.get_closest_marker(name) for name in STARTS_ENGINES):
        monkeypatch.setenv(NO_ENGINE_ENV, "1")


def resume_to_reference(command: list[str], env: dict[str, str], out: Path, reference: Path,
                        stored: int, total: int) -> None:
    """Reruns an interrupted batch command: it must resume the `stored` queries and
    write a run byte-identical to the uninterrupted `reference`."""
    import subprocess

    resumed = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    assert f"{total} queries reranked ({stored} resumed)" in resumed.stderr
    assert out.read_bytes() == reference.read_bytes()


def finished_queries(state: Path) -> int:
    """How many queries a batch job's state file holds as finished (0 before it exists)."""
    try:
        with sqlite3.connect(state) as db:
            return db.execute("SELECT COUNT(*) FROM results").fetchone()[0]
    except sqlite3.Error:
        return 0


@pytest.fixture(scope="session")
def dl19() -> BeirFolder:
    return load_beir(DL19)


@pytest.fixture(scope="session")
def dl19_run():
    return read_trec_run(DL19 / "bm25.trec")


@pytest.fixture(scope="session")
def dl19_request(dl19, dl19_run):
    """The first DL19 query with its BM25 top-10."""
    return build_job(dl19, dl19_run, depth=10, queries=1).requests[0]


CRANFIELD = DATA / "cranfield"
SLICE_DOCS = 300  # Cranfield docs 1..300: embedded in about 30 s on 2 cores


@pytest.fixture(scope="session")
def cranfield_slice(tmp_path_factory) -> Path:
    """A BEIR folder with Cranfield's first 300 documents and every query."""
    folder = tmp_path_factory.mktemp("cranfield-slice")
    lines = (CRANFIELD / "corpus.jsonl").read_text(encoding="utf-8").splitlines()
    (folder / "corpus.jsonl").write_text("\n".join(lines[:SLICE_DOCS]) + "\n", encoding="utf-8")
    (folder / "queries.jsonl").write_bytes((CRANFIELD / "queries.jsonl").read_bytes())
    return folder


@pytest.fixture(scope="session")
def cranfield_slice_index(cranfield_slice, tmp_path_factory):
    """A real index (BM25 and MiniLM embeddings) over the Cranfield slice, built once."""
    from rerankgraph.index.corpus import build_index

    index, _ = build_index(cranfield_slice, tmp_path_factory.mktemp("index") / "cran")
    return index
