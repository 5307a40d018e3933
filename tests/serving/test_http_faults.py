"""HTTP client faults, injected by a scripted HTTP server on 127.0.0.1."""

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from rerankgraph.errors import EngineError
from rerankgraph.serving.base import ChatRequest
from rerankgraph.serving.openai_http import OpenAIEngine
from rerankgraph.serving.server import free_port

MODELS = {"data": [{"id": "m", "max_model_len": 2048}]}
REPLY = {"choices": [{"index": 0, "message": {"content": "yes"}, "finish_reason": "stop",
                      "logprobs": {"content": [{"token": "yes", "logprob": -0.2, "top_logprobs": [
                          {"token": "yes", "logprob": -0.2}, {"token": "no", "logprob": -1.8}]}]}}],
         "usage": {"prompt_tokens": 12, "completion_tokens": 1}}


class ScriptedServer:
    """Answers POSTs with the next (status, body, delay) of its script."""

    def __init__(self, script):
        self.script = list(script)
        self.posts = 0
        self.active = 0
        self.peak = 0
        self.bodies = []
        self.headers = []
        lock = threading.Lock()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _send(self, status, body):
                payload = body if isinstance(body, bytes) else json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def do_GET(self):
                owner.headers.append(dict(self.headers))
                self._send(200, MODELS)

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                if self.path == "/tokenize":  # as vLLM does: the client's probe finds it
                    self._send(200, {"tokens": [1, 2, 3], "count": 3, "max_model_len": 2048})
                    return
                with lock:
                    owner.bodies.append(body)
                    owner.headers.append(dict(self.headers))
                    step = owner.script[min(owner.posts, len(owner.script) - 1)]
                    owner.posts += 1
                    owner.active += 1
                    owner.peak = max(owner.peak, owner.active)
                status, reply, delay = step
                time.sleep(delay)
                with lock:
                    owner.active -= 1
                self._send(status, reply)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()


@pytest.fixture
def scripted_server():
    servers = []

    def make(script):
        servers.append(ScriptedServer(script))
        return servers[-1]

    yield make
    for server in servers:
        server.close()


def _engine(url, **kw):
    return OpenAIEngine(url, backoff_initial_s=0.01, backoff_max_s=0.05, **kw)


ASK = ChatRequest(messages=({"role": "user", "content": "q"},), max_tokens=1, top_logprobs=2)


def test_5xx_is_retried_then_succeeds(scripted_server):
    server = scripted_server([(503, {"error": "busy"}, 0), (500, b"oops", 0), (200, REPLY, 0)])
    with _engine(server.url) as engine:
        [completion] = engine.run_sync(engine.chat([ASK]))
        assert completion.text == "yes" and completion.prompt_tokens == 12
        assert completion.first_token_logprobs == {"yes": -0.2, "no": -1.8}
        assert engine.stats.retries == 2 and server.posts == 3


def test_5xx_gives_up_after_bounded_attempts(scripted_server):
    server = scripted_server([(502, b"bad gateway", 0)])
    with _engine(server.url, max_attempts=3) as engine, \
            pytest.raises(EngineError, match="server error 502 .*gave up after 3 attempts"):
        engine.run_sync(engine.chat([ASK]))
    assert server.posts == 3


def test_4xx_is_never_retried(scripted_server):
    server = scripted_server([(400, {"error": {"message": "max_tokens too large"}}, 0)])
    with _engine(server.url) as engine, pytest.raises(EngineError, match="HTTP 400.*max_tokens"):
        engine.run_sync(engine.chat([ASK]))
    assert server.posts == 1


def test_wrong_api_key_is_reported_without_the_key(scripted_server):
    server = scripted_server([(401, {"error": "unauthorized"}, 0)])
    with _engine(server.url, api_key="sk-secret-123") as engine:
        with pytest.raises(EngineError) as info:
            engine.run_sync(engine.chat([ASK]))
        assert "refused the API key" in str(info.value)
        assert "sk-secret-123" not in str(info.value) and "sk-secret-123" not in repr(engine)
    assert server.headers[-1]["Authorization"] == "Bearer sk-secret-123"


def test_unreachable_server_fails_after_retries():
    port = free_port()
    started = time.monotonic()
    with pytest.raises(EngineError, match=rf"127.0.0.1:{port}.* unreachable.*gave up after 2"):
        _engine(f"http://127.0.0.1:{port}", max_attempts=2)
    assert time.monotonic() - started < 10


def test_wrong_protocol_is_named(scripted_server):
    server = scripted_server([(200, b"<html>hello</html>", 0)])
    with _engine(server.url) as engine, pytest.raises(EngineError, match="did not answer JSON"):
        engine.run_sync(engine.chat([ASK]))


def test_timeouts_are_retried_then_reported(scripted_server):
    server = scripted_server([(200, REPLY, 1.0)])
    with _engine(server.url, timeout_s=0.2, max_attempts=2) as engine, \
            pytest.raises(EngineError, match="no answer within 0.2 s"):
        engine.run_sync(engine.chat([ASK]))
    assert server.posts == 2


def test_concurrency_is_bounded(scripted_server):
    server = scripted_server([(200, REPLY, 0.05)])
    with _engine(server.url, max_concurrency=3) as engine:
        completions = engine.run_sync(engine.chat([ASK] * 12))
    assert len(completions) == 12 and server.peak == 3


def test_structured_output_fields_in_the_request_body(scripted_server):
    server = scripted_server([(200, REPLY, 0)])
    with _engine(server.url) as engine:
        engine.run_sync(engine.chat([
            ChatRequest(messages=ASK.messages, choice=("yes", "no"), seed=7, n=2),
            ChatRequest(messages=ASK.messages, json_schema={"type": "object"})]))
    # Concurrent requests arrive in any order.
    choice_body = next(b for b in server.bodies if "structured_outputs" in b)
    schema_body = next(b for b in server.bodies if "response_format" in b)
    assert choice_body["structured_outputs"] == {"choice": ["yes", "no"]}
    assert (choice_body["seed"], choice_body["n"]) == (7, 2)
    assert schema_body["response_format"]["json_schema"]["schema"] == {"type": "object"}
