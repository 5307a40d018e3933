"""The HTTP API at its limits, over real sockets on 127.0.0.1: requests in flight,
timeouts, clients that hang up, bodies over the limit, long inputs, per-request
parameters and /metrics. The judge is the simulator, slowed where a request must
still be in flight."""

from __future__ import annotations

import asyncio
import socket
import time

import httpx
import pytest

from rerankgraph.api import build_app
from rerankgraph.sdk import Reranker
from rerankgraph.simulation import SimulatedJudge
from tests.test_api import DATASET, DOC_IDS, DOCS, QID, QRELS, Served


def _judge(latency_s: float = 0.0, max_model_len: int = 8192) -> SimulatedJudge:
    return SimulatedJudge(QRELS, DATASET.queries, DATASET.corpus, latency_s=latency_s,
                          max_model_len=max_model_len)


@pytest.fixture
def serving():
    """Starts apps on real sockets and stops them after the test."""
    started: list[Served] = []

    def start(judge: SimulatedJudge, **limits) -> Served:
        served = Served(build_app(Reranker("pointwise", engine=judge), **limits))
        started.append(served)
        return served

    yield start
    for served in started:
        served.stop()


def _metric(served: Served, name: str, **labels: str) -> float:
    """One sample of /metrics, as Prometheus would scrape it (0 when absent)."""
    from prometheus_client.parser import text_string_to_metric_families

    text = httpx.get(f"{served.url}/metrics", timeout=10).text
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return sample.value
    return 0.0


BODY = {"query": DATASET.queries[QID], "documents": DOCS[:4]}


async def test_past_the_in_flight_bound_requests_get_429_with_retry_after(serving):
    judge = _judge(latency_s=1.0)
    served = serving(judge, max_in_flight=2)
    async with httpx.AsyncClient(timeout=30) as client:
        replies = await asyncio.gather(*(client.post(f"{served.url}/v1/rerank", json=BODY)
                                         for _ in range(6)))
    statuses = sorted(r.status_code for r in replies)
    assert statuses == [200, 200, 429, 429, 429, 429]
    refused = next(r for r in replies if r.status_code == 429)
    assert refused.headers["retry-after"] == "1" and "in flight" in refused.json()["message"]
    assert _metric(served, "rerankgraph_requests_total", route="/v1/rerank", status="429") == 4
    assert _metric(served, "rerankgraph_requests_total", route="/v1/rerank", status="200") == 2
    assert _metric(served, "rerankgraph_requests_in_flight") == 0
    # Only the admitted ones reached the judge: 2 requests of 4 documents.
    assert judge.stats.requests == 8


def test_a_request_past_the_timeout_gets_504_and_its_engine_work_is_cancelled(serving):
    judge = _judge(latency_s=3.0)
    served = serving(judge, request_timeout_s=0.5)
    started = time.monotonic()
    reply = httpx.post(f"{served.url}/v1/rerank", json=BODY, timeout=30)
    assert reply.status_code == 504 and time.monotonic() - started < 2.5
    assert "0.5 s" in reply.json()["message"] and "cancelled" in reply.json()["message"]
    time.sleep(3.0)  # past the judge's latency: a call left running would have finished
    assert judge.stats.requests == 0
    assert _metric(served, "rerankgraph_cancelled_total", reason="timeout") == 1


def test_a_client_that_hangs_up_has_its_engine_work_cancelled_and_counted(serving):
    judge = _judge(latency_s=3.0)
    served = serving(judge)
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(f"{served.url}/v1/rerank", json=BODY, timeout=0.5)
    deadline = time.monotonic() + 2.0
    while (_metric(served, "rerankgraph_cancelled_total", reason="disconnect") < 1
           and time.monotonic() < deadline):
        time.sleep(0.1)
    assert _metric(served, "rerankgraph_cancelled_total", reason="disconnect") == 1
    assert _metric(served, "rerankgraph_requests_in_flight") == 0
    time.sleep(3.0)
    assert judge.stats.requests == 0  # the judge's calls never completed


def _raw_post(url: str, body: bytes, headers: dict[str, str]) -> bytes:
    """A POST written by hand on a socket: headers, the whole body (as clients without
    Expect: 100-continue send it), then everything the server answers."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        sock.sendall(f"POST /v1/rerank HTTP/1.1\r\nHost: {host}\r\n{head}\r\n".encode())
        if body:
            sock.sendall(body)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    return answer


@pytest.mark.parametrize("size", [300_000, 8_000_000])
def test_a_body_over_the_limit_is_a_readable_413_without_expect(serving, size):
    served = serving(_judge(), max_bytes=200_000)
    body = b'{"query": "q", "documents": ["' + b"x" * size + b'"]}'
    answer = _raw_post(served.url, body, {"Content-Type": "application/json",
                                          "Content-Length": str(len(body))})
    assert answer.startswith(b"HTTP/1.1 413 ")
    assert b"over the limit of 200000" in answer
    # httpx, as a client would use it, reads the same answer.
    reply = httpx.post(f"{served.url}/v1/rerank", content=body, timeout=30,
                       headers={"Content-Type": "application/json"})
    assert reply.status_code == 413 and "over the limit" in reply.json()["message"]


def test_a_body_over_the_limit_with_expect_100_continue_is_refused_before_it_is_sent(serving):
    served = serving(_judge(), max_bytes=200_000)
    answer = _raw_post(served.url, b"", {"Content-Type": "application/json",
                                         "Content-Length": "9000000",
                                         "Expect": "100-continue"})
    assert answer.startswith(b"HTTP/1.1 413 ") and b"100 Continue" not in answer


def test_a_chunked_body_over_the_limit_is_a_413(serving):
    served = serving(_judge(), max_bytes=200_000)

    def chunks():
        for _ in range(40):
            yield b"x" * 10_000

    reply = httpx.post(f"{served.url}/v1/rerank", content=chunks(), timeout=30,
                       headers={"Content-Type": "application/json"})
    assert reply.status_code == 413 and "or more is over the limit" in reply.json()["message"]


def test_a_100kb_query_is_cut_to_its_budget_and_says_so(serving):
    served = serving(_judge(), max_bytes=1_000_000)
    long_query = " ".join(f"word{i}" for i in range(20_000))[:100_000]
    reply = httpx.post(f"{served.url}/v1/rerank", timeout=30,
                       json={"query": long_query, "documents": DOCS[:3]})
    assert reply.status_code == 200, reply.text
    assert reply.json()["meta"]["truncated_query"] is True
    assert _metric(served, "rerankgraph_truncated_total", what="query") == 1
    repeated = httpx.post(f"{served.url}/v1/rerank", timeout=30,
                          json={"query": "token " * 10_000, "documents": DOCS[:3]})
    assert repeated.status_code == 200 and repeated.json()["meta"]["truncated_query"] is True
    short = httpx.post(f"{served.url}/v1/rerank", json=BODY, timeout=30).json()
    assert short["meta"]["truncated_query"] is False


def test_a_document_of_one_50000_character_word_is_answered(serving):
    served = serving(_judge(), max_bytes=1_000_000)
    reply = httpx.post(f"{served.url}/v1/rerank", timeout=30, json={
        "query": DATASET.queries[QID], "documents": ["y" * 50_000, DOCS[0]]})
    assert reply.status_code == 200 and len(reply.json()["results"]) == 2


def test_a_prompt_that_cannot_fit_is_a_422_with_its_sizes_never_a_503(serving):
    # The passage fits its budget (256 < 300), the whole prompt does not: the
    # request's fault, told with its sizes.
    served = serving(_judge(max_model_len=300))
    reply = httpx.post(f"{served.url}/v1/rerank", timeout=30,
                       json={"query": BODY["query"], "documents": ["word " * 250]})
    assert reply.status_code == 422, reply.text
    message = reply.json()["message"]
    assert "query 'q0' with documents d0:" in message, message
    assert "exceed the model's context of 300" in message and "prompt tokens" in message
    assert "max_query_tokens" in message and "\n" not in message
    # A budget that alone overflows the context is refused before any call.
    small = serving(_judge(max_model_len=40))
    reply = httpx.post(f"{small.url}/v1/rerank", json=BODY, timeout=30)
    assert reply.status_code == 422 and "do not fit the model's context of 40" in reply.text


def test_top_n_over_the_document_count_returns_every_document(serving):
    served = serving(_judge())
    reply = httpx.post(f"{served.url}/v1/rerank", json={**BODY, "top_n": 50}, timeout=30)
    assert reply.status_code == 200 and len(reply.json()["results"]) == 4


def test_documents_that_are_all_empty_get_a_one_line_422(serving):
    served = serving(_judge())
    reply = httpx.post(f"{served.url}/v1/rerank", timeout=30,
                       json={"query": "q", "documents": ["", "", ""]})
    assert reply.status_code == 422, reply.text
    assert reply.json()["message"] == ("documents: all 3 documents are empty; there is "
                                       "nothing to rank")


def test_per_request_params_run_and_unknown_ones_are_a_422_naming_them(serving):
    served = serving(_judge())
    fused = httpx.post(f"{served.url}/v1/rerank", timeout=30,
                       json={**BODY, "params": {"fusion": "rrf", "fusion_weight": 0.5}})
    assert fused.status_code == 200, fused.text
    assert fused.json()["meta"]["fusion"].startswith("rrf")
    plain = httpx.post(f"{served.url}/v1/rerank", json=BODY, timeout=30).json()
    assert plain["meta"]["fusion"] == "none"  # the server's own parameters are unchanged
    unknown = httpx.post(f"{served.url}/v1/rerank", timeout=30,
                         json={**BODY, "params": {"windw": 4}})
    assert unknown.status_code == 422
    assert "'windw'" in unknown.json()["message"] and "known parameters" in unknown.json()[
        "message"]


def test_metrics_count_statuses_tokens_and_latency(serving):
    served = serving(_judge())
    assert httpx.post(f"{served.url}/v1/rerank", json=BODY, timeout=30).status_code == 200
    assert httpx.post(f"{served.url}/v1/rerank", json={"query": "q"},
                      timeout=30).status_code == 422
    reply = httpx.get(f"{served.url}/metrics", timeout=10)
    assert reply.headers["content-type"].startswith("text/plain")
    assert _metric(served, "rerankgraph_requests_total", route="/v1/rerank", status="200") == 1
    assert _metric(served, "rerankgraph_requests_total", route="/v1/rerank", status="422") == 1
    assert _metric(served, "rerankgraph_request_seconds_count") == 2
    assert _metric(served, "rerankgraph_llm_calls_total") == 4
    assert _metric(served, "rerankgraph_tokens_total", kind="prompt") > 0
    assert _metric(served, "rerankgraph_replies_total", status="fallback") == 0


def test_the_grades_still_order_the_results_under_the_new_guard(serving):
    served = serving(_judge())
    hits = httpx.post(f"{served.url}/v1/rerank", timeout=30, json={
        "query": DATASET.queries[QID], "documents": DOCS}).json()["results"]
    grades = [QRELS[QID].get(DOC_IDS[h["index"]], 0) for h in hits]
    assert grades == sorted(grades, reverse=True)


def test_the_spec_states_the_parameters_that_run_on_the_servers_model(serving):
    judge = _judge()
    judge.model_name = "/models/smollm2-135m-instruct"  # the embedded judge's defaults
    served = serving(judge)
    spec = httpx.get(f"{served.url}/openapi.json", timeout=10).json()
    assert "fusion='interpolate(minmax, judge weight 0.1)'" in spec["info"]["description"]
    params = spec["components"]["schemas"]["RerankBody"]["properties"]["params"]["anyOf"][0]
    assert "runs here as 'interpolate(minmax, judge weight 0.1)'" in params["properties"][
        "fusion"]["description"]
    reply = httpx.post(f"{served.url}/v1/rerank", json=BODY, timeout=30).json()
    assert reply["meta"]["fusion"] == "interpolate(minmax, judge weight 0.1)"
