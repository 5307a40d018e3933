"""The HTTP rerank API over real HTTP on 127.0.0.1 (uvicorn in a thread), with the
simulated judge for exact orders and the real engine for one request, and its OpenAPI
spec fuzzed by schemathesis."""

from __future__ import annotations

import asyncio
import re
import threading
import time

import httpx
import pytest
import schemathesis
import uvicorn
from hypothesis import HealthCheck, settings

from rerankgraph.api import build_app
from rerankgraph.data import load_beir, read_qrels, read_trec_run
from rerankgraph.sdk import Reranker
from rerankgraph.serving.server import free_port
from rerankgraph.simulation import SimulatedJudge
from tests.conftest import DL19

KEY = "s3cret-key"
DATASET = load_beir(DL19)
QRELS = read_qrels(DL19 / "qrels.tsv")
RUN = read_trec_run(DL19 / "bm25.trec")
QID = next(iter(RUN))
DOC_IDS = [e.doc_id for e in RUN[QID][:10]]
DOCS = [DATASET.corpus[d][1] for d in DOC_IDS]


def _judge() -> SimulatedJudge:
    return SimulatedJudge(QRELS, DATASET.queries, DATASET.corpus)


class Served:
    def __init__(self, app) -> None:
        port = free_port("127.0.0.1")
        self.url = f"http://127.0.0.1:{port}"
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port,
                                                    log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started and time.monotonic() < deadline:
            time.sleep(0.05)
        assert self.server.started

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)


@pytest.fixture(scope="module")
def served():
    api = Served(build_app(Reranker("pointwise", engine=_judge()), api_key=KEY,
                           max_documents=50, max_bytes=200_000))
    yield api
    api.stop()


def _post(served, body, key=KEY, **kwargs):
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    return httpx.post(f"{served.url}/v1/rerank", json=body, headers=headers, timeout=60,
                      **kwargs)


def test_rerank_in_cohere_shape_sorted_by_grade(served):
    documents = [text if i % 2 else {"text": text, "id": f"x{i}"} for i, text in enumerate(DOCS)]
    reply = _post(served, {"query": DATASET.queries[QID], "documents": documents, "top_n": 4,
                           "return_documents": True, "model": "ignored"})
    assert reply.status_code == 200, reply.text
    body = reply.json()
    hits = body["results"]
    assert len(hits) == 4
    grades = [QRELS[QID].get(DOC_IDS[h["index"]], 0) for h in hits]
    assert grades == sorted((QRELS[QID].get(d, 0) for d in DOC_IDS), reverse=True)[:4]
    assert [h["relevance_score"] for h in hits] == sorted(
        (h["relevance_score"] for h in hits), reverse=True)
    assert all(h["document"]["text"] == DOCS[h["index"]] for h in hits)
    assert body["meta"] == {"method": "pointwise", "llm_calls": 10, "repaired": 0,
                            "fallbacks": 0, "truncated_docs": 0, "truncated_query": False,
                            "dropped_samples": 0, "fusion": "none"}
    assert body["usage"]["total_tokens"] > 0 and body["model"].startswith("SIMULATED")
    plain = _post(served, {"query": DATASET.queries[QID], "documents": DOCS}).json()
    assert len(plain["results"]) == 10 and "document" not in plain["results"][0]


def test_api_key_is_required_and_health_is_open(served):
    body = {"query": "q", "documents": ["a"]}
    assert _post(served, body, key=None).status_code == 401
    wrong = _post(served, body, key="s3cret-kez")
    assert wrong.status_code == 401 and "API key" in wrong.json()["message"]
    assert httpx.post(f"{served.url}/v1/rerank", json=body,
                      headers={"X-API-Key": KEY}).status_code == 200
    health = httpx.get(f"{served.url}/health").json()
    assert health["status"] == "ok" and health["method"] == "pointwise"


@pytest.mark.parametrize(("body", "status", "message"), [
    ({"query": "q", "documents": []}, 422, "documents: List should have at least 1 item"),
    ({"documents": ["a"]}, 422, "query: Field required"),
    ({"query": "   ", "documents": ["a"]}, 422, "query: Value error, query is empty"),
    ({"query": "q", "documents": ["a"], "top_n": 0}, 422, "top_n: Input should be greater"),
    ({"query": "q", "documents": [{"title": "no text"}]}, 422, "documents.0."),
    ({"query": "q", "documents": ["a"] * 51}, 422, "51 documents is over the limit of 50"),
    ({"query": "q", "documents": ["x" * 100_000] * 3}, 413, "over the limit of 200000"),
])
def test_bad_requests_get_one_line_4xx(served, body, status, message):
    reply = _post(served, body)
    assert reply.status_code == status, reply.text
    assert message in reply.json()["message"] and "\n" not in reply.json()["message"]


async def test_concurrent_requests_share_one_engine(served):
    async with httpx.AsyncClient(timeout=60,
                                 headers={"Authorization": f"Bearer {KEY}"}) as client:
        replies = await asyncio.gather(*(
            client.post(f"{served.url}/v1/rerank", json={
                "query": DATASET.queries[QID],
                "documents": DOCS[i % 10:] + DOCS[:i % 10]})  # rotated inputs
            for i in range(16)))
    assert all(r.status_code == 200 for r in replies)
    best = sorted((QRELS[QID].get(d, 0) for d in DOC_IDS), reverse=True)
    for i, reply in enumerate(replies):  # each reply ranks its own rotation by grade
        hits = reply.json()["results"]
        assert len(hits) == 10 and reply.json()["meta"]["llm_calls"] == 10
        assert [QRELS[QID].get(DOC_IDS[(h["index"] + i) % 10], 0) for h in hits] == best


def test_one_request_on_the_real_engine(local_engine):
    api = Served(build_app(Reranker("pointwise", engine=local_engine)))
    try:
        reply = httpx.post(f"{api.url}/v1/rerank", timeout=120,
                           json={"query": DATASET.queries[QID], "documents": DOCS[:5]})
    finally:
        api.stop()
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert sorted(h["index"] for h in body["results"]) == list(range(5))
    assert body["model"].endswith("smollm2-135m-instruct") and body["meta"]["llm_calls"] == 5


def test_the_spec_states_the_document_limit(served):
    documents = httpx.get(f"{served.url}/openapi.json", timeout=10,
                          headers={"X-API-Key": KEY}).json()[
        "components"]["schemas"]["RerankBody"]["properties"]["documents"]
    assert (documents["minItems"], documents["maxItems"]) == (1, 50)


def test_the_spec_states_that_a_query_needs_a_visible_character(served):
    query = httpx.get(f"{served.url}/openapi.json", timeout=10,
                      headers={"X-API-Key": KEY}).json()[
        "components"]["schemas"]["RerankBody"]["properties"]["query"]
    pattern = re.compile(query["pattern"])
    # The pattern and the server's check agree on every code point, whether a client
    # reads the pattern as Python does or as ECMAScript does (whose \s lacks \x1c-\x1f
    # and \x85: a fuzzer once sent "\x1d\x1d" as a valid query).
    # NUL counts as blank too: every text field drops it (a fuzzer once sent "\x00").
    blank = [chr(c) for c in range(0x110000) if chr(c).isspace() or c == 0]
    visible = [chr(c) for c in range(0x110000) if not chr(c).isspace() and c != 0]
    assert all(pattern.fullmatch(c) for c in visible)
    assert not any(pattern.fullmatch(c) for c in blank)
    # As ECMAScript reads it: its \s is this class.
    ecma_space = "\t\n\x0b\x0c\r \u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\ufeff"
    as_ecma = re.compile(query["pattern"].replace("\\S", f"[^{ecma_space}]")
                         .replace("\\s", ecma_space))
    assert not any(as_ecma.fullmatch(chr(c)) for c in range(0x110000) if chr(c).isspace())
    for blank in ("\u0085", "\x1d\x1d", "\x00", " \x00 "):
        reply = httpx.post(f"{served.url}/v1/rerank", timeout=10, headers={"X-API-Key": KEY},
                           json={"query": blank, "documents": ["a"]})
        assert reply.status_code == 422
        assert "whitespace" in reply.json()["message"]


# -- the spec, fuzzed ------------------------------------------------------------------
def _app_without_params_in_its_spec():
    """`params` is left out of the fuzzed spec: a schema-valid parameter can still be
    refused by a rule across parameters or by the model's context (a 422 that no
    schema states). Its own tests are test_per_request_params_*."""
    app = build_app(Reranker("pointwise", engine=_judge()), max_documents=20)
    spec = app.openapi()
    del spec["components"]["schemas"]["RerankBody"]["properties"]["params"]
    return app


schema = schemathesis.openapi.from_asgi("/openapi.json", _app_without_params_in_its_spec())


@schema.parametrize()
# Derandomized: CI sees the same 200 cases each run (a random draw once found a real spec
# bug and turned CI red on an unrelated change); run with a random seed to search anew.
@settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck),
          derandomize=True)
def test_the_spec_holds_under_fuzzing(case):
    case.call_and_validate()
