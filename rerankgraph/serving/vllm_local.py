"""In-process vLLM engine (the v1 AsyncLLM): the default for batch jobs and the SDK."""

from __future__ import annotations

import contextlib
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

from rerankgraph.errors import ModelError
from rerankgraph.serving.base import (
    ChatRequest,
    Completion,
    Engine,
    all_or_nothing,
    prompt_too_long,
)
from rerankgraph.serving.platform import (
    apply_cpu_env_defaults,
    default_engine_settings,
    library_logging_defaults,
    refuse_if_engines_disabled,
    vllm_install_hint,
)

DEFAULT_MAX_MODEL_LEN = 4096


class VllmEngine(Engine):
    """Runs vLLM's AsyncLLM in this process.

    `engine_args` may be vLLM's own `AsyncEngineArgs`; otherwise keyword overrides are
    passed to it. The model loads when the engine is built.
    """

    def __init__(self, model: str, *, engine_args: Any = None, max_concurrency: int = 256,
                 **overrides: Any) -> None:
        super().__init__()
        self.max_concurrency = max_concurrency
        # Set to a list to record (prompt token ids, SamplingParams) of every call sent;
        # the efficiency benchmark replays them through vLLM's offline API.
        self.sent: list[tuple[list[int], Any]] | None = None
        refuse_if_engines_disabled(f"the in-process vLLM engine for {model!r}")
        apply_cpu_env_defaults()
        library_logging_defaults()
        try:
            from vllm.engine.arg_utils import AsyncEngineArgs
        except ImportError as exc:
            raise ModelError(f"vLLM is not installed: {vllm_install_hint()}") from exc
        if engine_args is None:
            settings: dict[str, Any] = {"model": model, "max_model_len": DEFAULT_MAX_MODEL_LEN,
                                        "enable_prefix_caching": True}
            settings.update(overrides)
            settings = {**default_engine_settings(int(settings["max_model_len"])), **settings}
            engine_args = AsyncEngineArgs(**settings)
        self._engine_args = engine_args
        self.model_name = str(engine_args.model)
        self._llm: Any = None
        self.run_sync(self._start())
        self._semaphore = self.run_sync(_make_semaphore(max_concurrency))
        self._kv_budget = self.run_sync(_make_budget(self.kv_cache_tokens))

    async def _start(self) -> None:
        from vllm.v1.engine.async_llm import AsyncLLM

        try:
            with engine_process_skips_main():
                self._llm = AsyncLLM.from_engine_args(self._engine_args)
        except Exception as exc:  # vLLM raises many types for a bad model folder
            raise ModelError(f"vLLM could not load model {self.model_name!r}: "
                             f"{str(exc).splitlines()[0] if str(exc) else type(exc).__name__}"
                             ) from exc
        self._tokenizer = self._llm.get_tokenizer()
        self.max_model_len = int(self._llm.vllm_config.model_config.max_model_len)
        cache = self._llm.vllm_config.cache_config
        # Tokens the KV cache holds (set by the engine core once it has sized the cache).
        self.kv_cache_tokens = int((cache.num_gpu_blocks or 0) * (cache.block_size or 0))

    @property
    def tokenizer(self) -> Any:
        return self._tokenizer

    def render_prompt_ids(self, request: ChatRequest) -> list[int]:
        """Token ids of the chat prompt, through the model's own chat template."""
        prefilled = request.reply_prefix is not None  # the model continues that turn
        text = self._tokenizer.apply_chat_template(
            list(request.messages), tokenize=False, add_generation_prompt=not prefilled,
            continue_final_message=prefilled)
        return list(self._tokenizer.encode(text, add_special_tokens=False))

    def sampling_params(self, request: ChatRequest) -> Any:
        from vllm import SamplingParams
        from vllm.sampling_params import RequestOutputKind, StructuredOutputsParams

        structured = None
        if request.json_schema is not None:
            structured = StructuredOutputsParams(json=request.json_schema,
                                                 disable_any_whitespace=True)
        elif request.choice is not None:
            structured = StructuredOutputsParams(choice=list(request.choice))
        elif request.regex is not None:
            structured = StructuredOutputsParams(regex=request.regex)
        return SamplingParams(
            n=request.n, max_tokens=request.max_tokens, temperature=request.temperature,
            seed=request.seed, logprobs=request.top_logprobs, structured_outputs=structured,
            # One output per request, holding all n samples; no streamed partials.
            output_kind=RequestOutputKind.FINAL_ONLY)

    async def _chat(self, requests: list[ChatRequest]) -> list[Completion]:
        return await all_or_nothing([self._one(r) for r in requests])

    async def _one(self, request: ChatRequest) -> Completion:
        from vllm.inputs import TokensPrompt

        prompt_ids = self.render_prompt_ids(request)
        if len(prompt_ids) + request.max_tokens > self.max_model_len:
            raise prompt_too_long(request, len(prompt_ids), self.max_model_len)
        sampling = self.sampling_params(request)
        if self.sent is not None:
            self.sent.append((prompt_ids, sampling))
        final = None
        # Admit no more than the KV cache holds: past it vLLM preempts and recomputes
        # running requests (a tree level of 117 summaries sent at once crawled).
        need = len(prompt_ids) + request.max_tokens * request.n
        async with self._semaphore, self._kv_budget.hold(need):
            async for output in self._llm.generate(
                    TokensPrompt(prompt_token_ids=prompt_ids), sampling,
                    request_id=uuid.uuid4().hex):
                final = output
        assert final is not None
        return _completion_from_output(final, len(prompt_ids))

    async def _tokenize(self, text: str) -> list[int]:
        return list(self._tokenizer.encode(text, add_special_tokens=False))

    async def _detokenize(self, token_ids: list[int]) -> str:
        return str(self._tokenizer.decode(token_ids))

    def prefix_cache_counts(self) -> tuple[int, int] | None:
        # vLLM's Prometheus stat logger lives in this process when stats are on.
        from prometheus_client import REGISTRY

        hits = REGISTRY.get_sample_value("vllm:prefix_cache_hits_total",
                                         {"model_name": self.model_name, "engine": "0"})
        queries = REGISTRY.get_sample_value("vllm:prefix_cache_queries_total",
                                            {"model_name": self.model_name, "engine": "0"})
        if hits is None or queries is None:
            return None
        return int(hits), int(queries)

    async def _aclose(self) -> None:
        if self._llm is not None:
            self._llm.shutdown()
            self._llm = None


@contextlib.contextmanager
def engine_process_skips_main() -> Iterator[None]:
    """While vLLM starts its engine core process, __main__ names no file or module.

    vLLM's CPU build always starts that process by spawn (platforms/cpu.py sets
    VLLM_WORKER_MULTIPROC_METHOD), and spawn re-runs the parent's __main__ in the child
    (multiprocessing.spawn.get_preparation_data): a script fed on stdin fails there
    (FileNotFoundError '<stdin>'), and one without an `if __name__ == "__main__":`
    guard runs again and builds a second engine. The engine core needs nothing from
    __main__ (its entry point is vLLM's own), so the child is left to start as a
    Jupyter kernel's does, with no main to re-run. The cost is none: the child skips
    an import. What it cannot do is unpickle a class defined in the user's script."""
    main = sys.modules.get("__main__")
    if main is None:
        yield
        return
    saved: dict[str, Any] = {name: main.__dict__[name] for name in ("__file__", "__spec__")
             if name in main.__dict__}
    main.__dict__.pop("__file__", None)
    main.__spec__ = None
    try:
        yield
    finally:
        main.__dict__.pop("__spec__", None)
        main.__dict__.update(saved)


class TokenBudget:
    """Admission by tokens: `hold(n)` waits until n more tokens fit under the capacity
    (a request larger than the whole capacity waits to run alone). Capacity 0: no limit."""

    def __init__(self, capacity: int) -> None:
        import asyncio

        self.capacity = capacity
        self.used = 0
        self._changed = asyncio.Condition()

    @contextlib.asynccontextmanager
    async def hold(self, tokens: int) -> AsyncIterator[None]:
        if self.capacity <= 0:
            yield
            return
        tokens = min(tokens, self.capacity)
        async with self._changed:
            await self._changed.wait_for(lambda: self.used + tokens <= self.capacity)
            self.used += tokens
        try:
            yield
        finally:
            async with self._changed:
                self.used -= tokens
                self._changed.notify_all()


async def _make_budget(capacity: int) -> TokenBudget:
    return TokenBudget(capacity)


async def _make_semaphore(size: int) -> Any:
    import asyncio

    return asyncio.Semaphore(size)


def _completion_from_output(output: Any, prompt_tokens: int) -> Completion:
    texts, logprobs, reasons = [], [], []
    completion_tokens = 0
    for sample in output.outputs:
        texts.append(sample.text)
        reasons.append(sample.finish_reason)
        completion_tokens += len(sample.token_ids)
        positions = []
        for sampled, position in zip(sample.token_ids, sample.logprobs or [], strict=False):
            by_token: dict[str, float] = {}
            # The sampled token first: a reader can tell it from the alternatives.
            for _, item in sorted(position.items(), key=lambda kv: kv[0] != sampled):
                token = item.decoded_token or ""
                # Several ids can decode to one string; keep the likeliest.
                by_token[token] = max(by_token.get(token, float("-inf")), item.logprob)
            positions.append(by_token)
        logprobs.append(tuple(positions))
    return Completion(texts=tuple(texts), logprobs=tuple(logprobs),
                      prompt_tokens=prompt_tokens, completion_tokens=completion_tokens,
                      finish_reasons=tuple(reasons))
