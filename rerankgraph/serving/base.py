"""The engine interface every judge talks to.

An engine takes a batch of chat requests and returns one completion per request. It
owns a private event loop thread, so one engine serves sync SDK calls, the user's
own asyncio loop and LangGraph's runner alike.
"""

from __future__ import annotations

import asyncio
import threading
from abc import ABC, abstractmethod
from collections.abc import Coroutine, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from rerankgraph.errors import EngineError, PromptTooLongError, RerankgraphError

T = TypeVar("T")

# How far into a long text its tokens are counted (see Engine._leading_tokens).
PREFIX_CHARS_PER_TOKEN = 16
CUT_MARGIN_TOKENS = 8


def describe_exception(exc: BaseException) -> str:
    """`Type: message` on one line; the message of its cause when it has none of its
    own (vLLM raises some errors whose only text is a request id)."""
    message = " ".join(str(exc).split())
    cause = exc.__cause__ or exc.__context__
    if cause is not None and (not message or message.isalnum() or len(message) < 12):
        inner = " ".join(str(cause).split())
        message = f"{message} ({type(cause).__name__}: {inner})" if message else inner
    return f"{type(exc).__name__}: {message or 'no message'}"


async def _cancel_other_tasks() -> None:
    current = asyncio.current_task()
    pending = [t for t in asyncio.all_tasks() if t is not current and not t.done()]
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)


async def all_or_nothing(coros: Sequence[Coroutine[Any, Any, T]]) -> list[T]:
    """Runs coroutines together and returns their results in order. The first failure
    cancels the rest (asyncio.gather would leave them retrying a dead server)."""
    try:
        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(c) for c in coros]
    except ExceptionGroup as failures:
        raise failures.exceptions[0] from None
    return [t.result() for t in tasks]


def prompt_too_long(request: ChatRequest, prompt_tokens: int | None, max_model_len: int
                    ) -> PromptTooLongError:
    """The one-line error of a prompt over the context, naming its query and documents."""
    about = f"query {request.query_id!r}" if request.query_id else "a prompt"
    if request.doc_ids:
        shown = ", ".join(request.doc_ids[:5]) + (", ..." if len(request.doc_ids) > 5 else "")
        about += f" with documents {shown}"
    size = f"{prompt_tokens} prompt tokens" if prompt_tokens is not None else "its prompt"
    return PromptTooLongError(
        f"{about}: {size} plus {request.max_tokens} reply tokens exceed the model's context "
        f"of {max_model_len}; lower max_query_tokens or max_doc_tokens, or serve a longer "
        "--max-model-len")


@dataclass(frozen=True)
class ChatRequest:
    """One chat call. `json_schema`, `choice` or `regex` constrain the reply through
    vLLM's structured outputs (at most one of them). `purpose` names who asks (an
    agent's name); engines neither read it nor send it, and the reply cache leaves it
    out of its key."""

    messages: tuple[dict[str, str], ...]
    max_tokens: int = 16
    temperature: float = 0.0
    seed: int | None = None
    n: int = 1
    top_logprobs: int | None = None
    json_schema: dict[str, Any] | None = None
    choice: tuple[str, ...] | None = None
    regex: str | None = None
    purpose: str = ""
    # What the request is about: the query id and the passages' doc ids in prompt order.
    # Tags like `purpose`: never rendered nor sent; the simulated judge reads them
    # instead of matching texts (documents can share an opening).
    query_id: str = ""
    doc_ids: tuple[str, ...] = ()

    @property
    def prompt(self) -> str:
        """The last user message (the rendered template)."""
        return next(m["content"] for m in reversed(self.messages) if m["role"] == "user")

    @property
    def reply_prefix(self) -> str | None:
        """The opening of the reply when the messages end with an assistant turn that the
        model continues (e.g. "[" before a ranking); else None."""
        last = self.messages[-1]
        return last["content"] if last["role"] == "assistant" else None


@dataclass(frozen=True)
class Completion:
    """The samples of one request. `logprobs[i][p]` maps token -> logprob at position p
    of sample i: the sampled token first (from the engines), then the top-k alternatives."""

    texts: tuple[str, ...]
    logprobs: tuple[tuple[dict[str, float], ...], ...] = ()
    prompt_tokens: int = 0
    completion_tokens: int = 0
    finish_reasons: tuple[str | None, ...] = ()
    cached: bool = False  # replayed from a job's reply cache, not computed now

    @property
    def text(self) -> str:
        return self.texts[0] if self.texts else ""

    @property
    def first_token_logprobs(self) -> dict[str, float]:
        return dict(self.logprobs[0][0]) if self.logprobs and self.logprobs[0] else {}


@dataclass
class EngineStats:
    requests: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    retries: int = 0


class Engine(ABC):
    """Async chat engine. Subclasses implement `_chat` and `_tokenize`/`_detokenize`."""

    model_name: str
    max_model_len: int
    simulated: bool = False
    # Send a batch's first request alone, then the rest: vLLM reuses cached prefix blocks
    # only from earlier steps, so this lets the batch share its instructions and query.
    prime_prefix: bool = True

    def __init__(self) -> None:
        self.stats = EngineStats()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    # -- the loop every engine coroutine runs on --------------------------------
    def _home_loop(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._loop is None:
                loop = asyncio.new_event_loop()
                thread = threading.Thread(target=loop.run_forever, daemon=True,
                                          name=f"rerankgraph-{type(self).__name__}")
                thread.start()
                self._loop, self._thread = loop, thread
            return self._loop

    async def _on_home(self, coro: Coroutine[Any, Any, T]) -> T:
        loop = self._home_loop()
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            return await coro
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coro, loop))

    def run_sync(self, coro: Coroutine[Any, Any, T]) -> T:
        """Runs a coroutine on the engine's loop from synchronous code."""
        return asyncio.run_coroutine_threadsafe(coro, self._home_loop()).result()

    # -- public API ----------------------------------------------------------------
    async def chat(self, requests: Sequence[ChatRequest]) -> list[Completion]:
        """Returns one completion per request, in order. All requests are in flight
        together. Raises EngineError once retries on a request run out."""
        if not requests:
            return []
        batch = list(requests)
        if self.prime_prefix and len(batch) > 2:
            first = await self._guarded(self._chat(batch[:1]))
            completions = first + await self._guarded(self._chat(batch[1:]))
        else:
            completions = await self._guarded(self._chat(batch))
        self.stats.requests += len(completions)
        self.stats.prompt_tokens += sum(c.prompt_tokens for c in completions)
        self.stats.completion_tokens += sum(c.completion_tokens for c in completions)
        return completions

    async def fit_texts(self, texts: Sequence[str], max_tokens: int) -> list[tuple[str, bool]]:
        """Cuts each text to at most `max_tokens` tokens of the model's tokenizer.
        Returns (text, was_truncated) pairs."""
        return await self._guarded(self._fit_texts(list(texts), max_tokens))

    async def count_tokens(self, text: str) -> int:
        return len(await self._guarded(self._tokenize(text)))

    async def _guarded(self, coro: Coroutine[Any, Any, T]) -> T:
        """The engine boundary: whatever the engine library raises (vLLM's own
        ValueErrors, a request id with no message, ...) leaves as one readable
        EngineError line. Our own errors pass through as they are."""
        try:
            return await self._on_home(coro)
        except RerankgraphError:
            raise
        except Exception as exc:
            raise EngineError(f"{self.model_name}: {describe_exception(exc)}") from exc

    def close(self) -> None:
        """Releases the engine and its loop thread. Safe to call twice."""
        if self._loop is not None:
            try:
                # An interrupted job leaves requests in flight: cancel them first, so
                # the loop stops with no task pending.
                self.run_sync(_cancel_other_tasks())
                self.run_sync(self._aclose())
            finally:
                self._loop.call_soon_threadsafe(self._loop.stop)
                if self._thread is not None:
                    self._thread.join(timeout=10)
                self._loop = None
                self._thread = None

    def __enter__(self) -> Engine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- for subclasses --------------------------------------------------------------
    @abstractmethod
    async def _chat(self, requests: list[ChatRequest]) -> list[Completion]: ...

    @abstractmethod
    async def _tokenize(self, text: str) -> list[int]: ...

    @abstractmethod
    async def _detokenize(self, token_ids: list[int]) -> str: ...

    async def _fit_texts(self, texts: list[str], max_tokens: int) -> list[tuple[str, bool]]:
        fitted = []
        for text in texts:
            # Cheap bound first: a token is at least one character for these tokenizers.
            if len(text) <= max_tokens:
                fitted.append((text, False))
                continue
            ids = await self._leading_tokens(text, max_tokens)
            if len(ids) <= max_tokens:
                fitted.append((text, False))
            else:
                fitted.append((await self._detokenize(ids[:max_tokens]), True))
        return fitted

    async def _leading_tokens(self, text: str, max_tokens: int) -> list[int]:
        """The text's tokens, or enough of its first ones to cut it to `max_tokens`.
        A megabyte document is tokenized only as far as its budget can reach: a prefix
        of PREFIX_CHARS_PER_TOKEN characters a token. Cutting the text changes only the
        tokens near the cut (tokenizers split words first and merge within a word from
        the left), so when the prefix yields CUT_MARGIN_TOKENS more than the budget, its
        first `max_tokens` are the whole text's (tests/serving/test_conformance.py checks
        this on the real tokenizer). Otherwise (very long tokens) the whole text is
        tokenized."""
        prefix = text[:(max_tokens + CUT_MARGIN_TOKENS) * PREFIX_CHARS_PER_TOKEN]
        ids = await self._tokenize(prefix)
        if len(prefix) < len(text) and len(ids) <= max_tokens + CUT_MARGIN_TOKENS:
            ids = await self._tokenize(text)
        return ids

    async def _aclose(self) -> None:
        return None

    def prefix_cache_counts(self) -> tuple[int, int] | None:
        """(hit tokens, queried tokens) of the engine's prefix cache so far, or None
        where the engine does not report it."""
        return None


class NoEngine(Engine):
    """The engine of a method that makes no LLM call (e.g. `retrieve`): nothing to load,
    and any call is a bug that says so."""

    model_name = "none"
    max_model_len = 0

    async def _chat(self, requests: list[ChatRequest]) -> list[Completion]:
        raise RuntimeError("this method declared uses_engine=False but called the engine")

    async def _tokenize(self, text: str) -> list[int]:
        raise RuntimeError("this method declared uses_engine=False but called the engine")

    async def _detokenize(self, token_ids: list[int]) -> str:
        raise RuntimeError("this method declared uses_engine=False but called the engine")
