"""Client for any OpenAI-compatible chat server: vLLM (`vllm serve`, `rerankgraph serve`)
with its extensions, or another implementation (llama.cpp, SGLang, Ollama, a hosted
API) without them.

The server's capabilities are probed once at connect time. Where vLLM's extensions are
absent: tokens are counted with a local tokenizer (`tokenizer`, or the served model's
own folder when its id is a local path); choice and regex constraints are sent as the
standard `response_format` JSON schema (a string enum, a string pattern) and the JSON
string that comes back is unwrapped; the context length comes from `max_model_len`.
`detected` says in one line what was found.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
from dataclasses import replace
from typing import Any

import httpx
from tenacity import (
    AsyncRetrying,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential_jitter,
)

from rerankgraph.errors import EngineError
from rerankgraph.serving.base import (
    ChatRequest,
    Completion,
    Engine,
    all_or_nothing,
    prompt_too_long,
)

API_KEY_ENV = "RERANKGRAPH_API_KEY"


# How vLLM's server words a prompt over the context (renderers/params.py,
# v1/engine/input_processor.py in 0.32); the number is the prompt's length when given.
_OVER_CONTEXT = re.compile(r"maximum context length|longer than the maximum model length")
_PROMPT_LENGTH = re.compile(r"prompt \(length (\d+)\)|contains (?:at least )?(\d+) input tokens")


class _Rejected(EngineError):
    """A 4xx other than 401/403, with the server's own text."""

    def __init__(self, message: str, text: str) -> None:
        super().__init__(message)
        self.text = text


class _Retryable(Exception):
    """A failure worth retrying: connection, timeout or 5xx."""


def _is_retryable(exc: BaseException) -> bool:
    return isinstance(exc, _Retryable | httpx.TransportError)


class OpenAIEngine(Engine):
    """Talks to a running vLLM server over HTTP with at most `max_concurrency` requests
    in flight. Retries connection errors, timeouts and 5xx with exponential backoff and
    jitter; never retries 4xx. The API key comes from `api_key` or $RERANKGRAPH_API_KEY
    and is never logged."""

    vllm_extensions = True  # until the probe says otherwise
    detected = ""

    def __init__(self, base_url: str, *, api_key: str | None = None, model: str | None = None,
                 max_concurrency: int = 64, timeout_s: float = 120.0, max_attempts: int = 4,
                 backoff_initial_s: float = 0.5, backoff_max_s: float = 8.0,
                 breaker_failures: int = 8, tokenizer: str | None = None,
                 max_model_len: int | None = None, extensions: bool | None = None) -> None:
        super().__init__()
        self._extensions = extensions  # None: probe; False: standard OpenAI calls only
        self._tokenizer_path = tokenizer
        self._local_tokenizer: Any = None
        self._declared_len = max_model_len

        self.base_url = base_url.rstrip("/")
        if self.base_url.endswith("/v1"):
            self.base_url = self.base_url[:-3]
        self._api_key = api_key or os.environ.get(API_KEY_ENV) or None
        self.max_concurrency = max_concurrency
        self._timeout_s = timeout_s
        self._max_attempts = max_attempts
        self._backoff = (backoff_initial_s, backoff_max_s)
        # Circuit breaker: after this many connection failures in a row, across all
        # requests, stop sending and fail every request at once (0: never).
        self._breaker_failures = breaker_failures
        self._failures_in_a_row = 0
        self._breaker_open: str | None = None
        self._client: httpx.AsyncClient | None = None
        self._semaphore: asyncio.Semaphore | None = None
        self.run_sync(self._connect(model))

    def __repr__(self) -> str:  # never show the key
        return f"OpenAIEngine(base_url={self.base_url!r}, model={self.model_name!r})"

    async def _connect(self, model: str | None) -> None:
        headers = {"Authorization": f"Bearer {self._api_key}"} if self._api_key else {}
        self._client = httpx.AsyncClient(
            base_url=self.base_url, headers=headers, timeout=self._timeout_s,
            limits=httpx.Limits(max_connections=self.max_concurrency))
        self._semaphore = asyncio.Semaphore(self.max_concurrency)
        listing = await self._request("GET", "/v1/models")
        models = [m.get("id") for m in listing.get("data", []) if isinstance(m, dict)]
        if not models:
            raise EngineError(f"{self.base_url}/v1/models lists no model; is this a vLLM server?")
        if model is not None and model not in models:
            raise EngineError(f"model {model!r} is not served at {self.base_url}; it serves "
                              f"{models}")
        self.model_name = model or str(models[0])
        entry = next(m for m in listing["data"] if m.get("id") == self.model_name)
        await self._probe(entry)

    async def _probe(self, entry: dict[str, Any]) -> None:
        """Which of vLLM's extensions the server has: /tokenize, and a model entry that
        states its context length. vLLM answers both; other servers neither."""
        assert self._client is not None
        served_len = entry.get("max_model_len")
        if self._extensions is False:
            status = "turned off by the extensions option"
            self.vllm_extensions = False
        else:
            response = await self._client.post("/tokenize", json={
                "model": self.model_name, "prompt": "probe", "add_special_tokens": False})
            status = f"/tokenize answered HTTP {response.status_code}"
            self.vllm_extensions = response.status_code == 200 and "tokens" in _json_or_empty(
                response)
        if self.vllm_extensions:
            self.max_model_len = int(self._declared_len or served_len or 4096)
            self.detected = (f"{self.base_url}: vLLM extensions found (server tokenizer, "
                             f"structured_outputs), context {self.max_model_len}")
            return
        self._local_tokenizer = _load_tokenizer(self._tokenizer_path, self.model_name,
                                                self.base_url)
        length = self._declared_len or served_len
        if not length:
            raise EngineError(f"{self.base_url} does not say its context length: give "
                              "--max-model-len (engine option max_model_len)")
        self.max_model_len = int(length)
        self.detected = (f"{self.base_url}: no vLLM extensions ({status}); local tokenizer "
                         f"{self._local_tokenizer.name_or_path}, structured output through "
                         f"response_format JSON schema, context {self.max_model_len} from "
                         f"{'--max-model-len' if self._declared_len else 'the server'}")

    async def _request(self, method: str, path: str, body: dict[str, Any] | None = None
                       ) -> dict[str, Any]:
        assert self._client is not None and self._semaphore is not None
        retrying = AsyncRetrying(
            retry=retry_if_exception(_is_retryable),
            stop=stop_after_attempt(self._max_attempts),
            wait=wait_exponential_jitter(initial=self._backoff[0], max=self._backoff[1]),
            reraise=True)
        url = f"{self.base_url}{path}"
        try:
            async with self._semaphore:
                async for attempt in retrying:
                    with attempt:
                        if attempt.retry_state.attempt_number > 1:
                            self.stats.retries += 1
                        return await self._send_through_breaker(method, path, body)
        except _Retryable as exc:
            raise EngineError(f"{url}: {exc} (gave up after {self._max_attempts} attempts)"
                              ) from None
        except httpx.TimeoutException:
            raise EngineError(f"{url}: no answer within {self._timeout_s:g} s "
                              f"(gave up after {self._max_attempts} attempts)") from None
        except httpx.TransportError as exc:
            raise EngineError(f"{url} is unreachable: {type(exc).__name__} {exc} "
                              f"(gave up after {self._max_attempts} attempts)") from None
        raise AssertionError("unreachable")

    async def _send_through_breaker(self, method: str, path: str,
                                    body: dict[str, Any] | None) -> dict[str, Any]:
        if self._breaker_open is not None:
            raise EngineError(self._breaker_open)
        try:
            payload = await self._send_once(method, path, body)
        except httpx.TransportError as exc:
            self._failures_in_a_row += 1
            if self._breaker_failures and self._failures_in_a_row >= self._breaker_failures:
                self._breaker_open = (
                    f"{self.base_url} is down: {self._failures_in_a_row} connection failures "
                    f"in a row (last: {type(exc).__name__}); stopped sending requests")
            raise
        self._failures_in_a_row = 0
        return payload

    async def _send_once(self, method: str, path: str, body: dict[str, Any] | None
                         ) -> dict[str, Any]:
        assert self._client is not None
        response = await self._client.request(method, path, json=body)
        if response.status_code >= 500:
            raise _Retryable(f"server error {response.status_code}")
        if response.status_code in (401, 403):
            raise EngineError(f"{self.base_url}{path} refused the API key "
                              f"(HTTP {response.status_code}); set --api-key or ${API_KEY_ENV}")
        if response.status_code >= 400:
            text = _error_text(response)
            raise _Rejected(f"{self.base_url}{path} rejected the request "
                            f"(HTTP {response.status_code}): {text}", text)
        try:
            payload = response.json()
        except json.JSONDecodeError:
            raise EngineError(f"{self.base_url}{path} did not answer JSON; is it an "
                              "OpenAI-compatible vLLM server?") from None
        if not isinstance(payload, dict):
            raise EngineError(f"{self.base_url}{path} answered {type(payload).__name__}, "
                              "not an OpenAI-style object")
        return payload

    def request_body(self, request: ChatRequest) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": self.model_name, "messages": list(request.messages),
            "max_tokens": request.max_tokens, "temperature": request.temperature,
            "n": request.n,
        }
        if request.reply_prefix is not None:
            if not self.vllm_extensions:
                raise EngineError(f"{self.base_url}: this method opens the model's reply "
                                  f"with {request.reply_prefix!r}, which needs vLLM's chat "
                                  "extensions (continue_final_message); the server has none")
            body["continue_final_message"], body["add_generation_prompt"] = True, False
        if request.seed is not None:
            body["seed"] = request.seed
        if request.top_logprobs is not None:
            body["logprobs"] = True
            body["top_logprobs"] = request.top_logprobs
        schema = request.json_schema
        if not self.vllm_extensions and schema is None:
            # The standard way: a JSON string constrained by enum or pattern; the quotes
            # are taken off the reply in _one.
            if request.choice is not None:
                schema = {"type": "string", "enum": list(request.choice)}
            elif request.regex is not None:
                schema = {"type": "string", "pattern": f"^{request.regex}$"}
            if schema is not None:  # room for the quotes around the reply
                body["max_tokens"] = request.max_tokens + 4
        if schema is not None:
            body["response_format"] = {"type": "json_schema", "json_schema": {
                "name": "reply", "schema": schema}}
        elif request.choice is not None:
            body["structured_outputs"] = {"choice": list(request.choice)}
        elif request.regex is not None:
            body["structured_outputs"] = {"regex": request.regex}
        return body

    async def _chat(self, requests: list[ChatRequest]) -> list[Completion]:
        return await all_or_nothing([self._one(r) for r in requests])

    async def _one(self, request: ChatRequest) -> Completion:
        try:
            payload = await self._request("POST", "/v1/chat/completions",
                                          self.request_body(request))
        except _Rejected as exc:
            if _OVER_CONTEXT.search(exc.text):  # the request's fault: a 4xx upstream
                length = _PROMPT_LENGTH.search(exc.text)
                tokens = next((int(g) for g in length.groups() if g), None) if length else None
                raise prompt_too_long(request, tokens, self.max_model_len) from None
            raise
        try:
            completion = _completion_from_payload(payload)
        except (KeyError, TypeError, ValueError) as exc:
            raise EngineError(f"{self.base_url}/v1/chat/completions answered an unexpected "
                              f"shape ({type(exc).__name__}: {exc}); is it an "
                              "OpenAI-compatible server?") from None
        if not self.vllm_extensions and request.json_schema is None and (
                request.choice is not None or request.regex is not None):
            completion = replace(completion, texts=tuple(_unquote(t) for t in completion.texts))
        return completion

    async def _tokenize(self, text: str) -> list[int]:
        if self._local_tokenizer is not None:
            return list(self._local_tokenizer.encode(text, add_special_tokens=False))
        payload = await self._request("POST", "/tokenize", {
            "model": self.model_name, "prompt": text, "add_special_tokens": False})
        return [int(t) for t in payload["tokens"]]

    async def _detokenize(self, token_ids: list[int]) -> str:
        if self._local_tokenizer is not None:
            return str(self._local_tokenizer.decode(token_ids))
        payload = await self._request("POST", "/detokenize", {
            "model": self.model_name, "tokens": token_ids})
        return str(payload["prompt"])

    async def _fit_texts(self, texts: list[str], max_tokens: int) -> list[tuple[str, bool]]:
        # One text at a time would serialize round trips; fit them all concurrently.
        fitted = await all_or_nothing([super(OpenAIEngine, self)._fit_texts([t], max_tokens)
                                       for t in texts])
        return [pair[0] for pair in fitted]

    def prefix_cache_counts(self) -> tuple[int, int] | None:
        """Read from the server's Prometheus /metrics (summed over its engines)."""
        from prometheus_client.parser import text_string_to_metric_families

        try:
            text = httpx.get(f"{self.base_url}/metrics", timeout=10).text
        except httpx.HTTPError:
            return None
        totals = {"vllm:prefix_cache_hits": 0.0, "vllm:prefix_cache_queries": 0.0}
        seen = False
        for family in text_string_to_metric_families(text):
            if family.name in totals:
                seen = True
                totals[family.name] += sum(s.value for s in family.samples
                                           if s.name.endswith("_total"))
        if not seen:
            return None
        return int(totals["vllm:prefix_cache_hits"]), int(totals["vllm:prefix_cache_queries"])

    async def _aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()


def _json_or_empty(response: httpx.Response) -> dict[str, Any]:
    try:
        payload = response.json()
    except json.JSONDecodeError:
        return {}
    return payload if isinstance(payload, dict) else {}


def _unquote(text: str) -> str:
    """A reply constrained to a JSON string, as the raw text it stands for (a reply
    that is not one is kept as it is, for the judge's parser to repair or count)."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        return text
    return value if isinstance(value, str) else text


def _load_tokenizer(path: str | None, model_name: str, base_url: str) -> Any:
    """The local tokenizer: `path`, else the served model's id when it is a local folder."""
    from pathlib import Path

    from transformers import AutoTokenizer

    source = path or (model_name if Path(model_name).is_dir() else None)
    if source is None:
        raise EngineError(f"{base_url} has no /tokenize and its model {model_name!r} is not "
                          "a local folder: give --tokenizer (a local tokenizer folder)")
    try:
        return AutoTokenizer.from_pretrained(source)
    except (OSError, ValueError) as exc:
        raise EngineError(f"could not load the tokenizer {source!r}: {exc}") from None


def _error_text(response: httpx.Response) -> str:
    try:
        body = response.json()
        message = body.get("error", {}).get("message") if isinstance(body, dict) else None
        return str(message or body)[:300]
    except json.JSONDecodeError:
        return response.text[:300]


def _completion_from_payload(payload: dict[str, Any]) -> Completion:
    texts, logprobs, reasons = [], [], []
    for choice in sorted(payload["choices"], key=lambda c: c.get("index", 0)):
        texts.append(choice["message"].get("content") or "")
        reasons.append(choice.get("finish_reason"))
        positions = []
        for position in (choice.get("logprobs") or {}).get("content") or []:
            # The sampled token first: a reader can tell it from the alternatives.
            by_token = {position["token"]: float(position["logprob"])}
            for alt in position.get("top_logprobs") or []:
                by_token.setdefault(alt["token"], float(alt["logprob"]))
            positions.append(by_token)
        logprobs.append(tuple(positions))
    usage = payload.get("usage") or {}
    return Completion(texts=tuple(texts), logprobs=tuple(logprobs),
                      prompt_tokens=int(usage.get("prompt_tokens") or 0),
                      completion_tokens=int(usage.get("completion_tokens") or 0),
                      finish_reasons=tuple(reasons))
