"""A scripted engine, only for faults and malformed replies a real model won't produce
on demand. It replays canned replies; the agents and graphs under test are real."""

from __future__ import annotations

from collections.abc import Callable

from rerankgraph.serving.base import ChatRequest, Completion, Engine

Reply = str | Completion | Exception | Callable[[ChatRequest], "str | Completion"]


class ScriptedEngine(Engine):
    """Answers request i with script[i % len(script)]. Exceptions are raised; callables
    get the request. Tokens are characters, so budgets are easy to reason about."""

    def __init__(self, script: list[Reply], max_model_len: int = 4096) -> None:
        super().__init__()
        self.script = script
        self.model_name = "scripted"
        self.max_model_len = max_model_len
        self.requests: list[ChatRequest] = []

    async def _chat(self, requests: list[ChatRequest]) -> list[Completion]:
        completions = []
        for request in requests:
            reply = self.script[len(self.requests) % len(self.script)]
            self.requests.append(request)
            if isinstance(reply, Exception):
                raise reply
            if callable(reply):
                reply = reply(request)
            if isinstance(reply, str):
                reply = Completion(texts=(reply,), prompt_tokens=len(str(request.messages)),
                                   completion_tokens=max(1, len(reply) // 4))
            completions.append(reply)
        return completions

    async def _tokenize(self, text: str) -> list[int]:
        return [ord(c) for c in text]

    async def _detokenize(self, token_ids: list[int]) -> str:
        return "".join(chr(t) for t in token_ids)

