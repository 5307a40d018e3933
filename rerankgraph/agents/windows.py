"""What the window judges (listwise, first) share: the sliding-window plan and the
per-passage token budget that keeps prompt plus reply inside the model's context."""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import BaseModel, ConfigDict, Field, model_validator

from rerankgraph.agents.base import chat_messages, render
from rerankgraph.errors import InputError
from rerankgraph.serving.base import Engine

# Tokens a passage costs beyond its text: its fence, id and line breaks.
PER_PASSAGE_OVERHEAD = 12
# Below this many tokens per passage a judge would see almost nothing.
MIN_PASSAGE_TOKENS = 16


class WindowParams(BaseModel):
    """Parameters of every sliding-window judge."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    window: int = Field(20, ge=2, le=100, description="passages per call")
    stride: int = Field(10, ge=1, description="how far the window moves up each step")
    passes: int = Field(1, ge=1, le=5, description="bottom-to-top passes over the list")
    max_doc_tokens: int = Field(160, ge=8, description="passage token budget (upper bound)")

    @model_validator(mode="after")
    def _stride_fits(self) -> WindowParams:
        if self.stride > self.window:
            raise ValueError(f"stride {self.stride} is larger than window {self.window}; "
                             "windows would skip passages")
        return self


def sliding_windows(size: int, window: int, stride: int) -> list[tuple[int, int]]:
    """(start, end) spans from the bottom of the list to the top, as RankGPT slides, so
    that strong documents can climb to the top in one pass. Always ends at start 0."""
    spans = []
    start = size - window
    while True:
        begin = max(start, 0)
        spans.append((begin, min(begin + window, size)))
        if begin == 0:
            return spans
        start -= stride


async def passage_budget(engine: Engine, template: str, query: str, window: int,
                         reply_tokens: int, max_doc_tokens: int, **values: object) -> int:
    """Tokens each passage may use so that the rendered window plus the reply fit."""
    empty = render(template, query=query, passages=[""] * window, **values)
    fixed = sum([await engine.count_tokens(m["content"]) for m in chat_messages(empty)]) + 16
    room = engine.max_model_len - fixed - reply_tokens - PER_PASSAGE_OVERHEAD * window
    if room < MIN_PASSAGE_TOKENS * window:
        raise InputError(
            f"the model's context of {engine.max_model_len} tokens is too small for "
            f"{template} with a window of {window} ({fixed + reply_tokens} tokens before any "
            f"passage text); serve a longer --max-model-len or lower the window")
    return min(max_doc_tokens, room // max(window, 1))


def reorder(items: Sequence[str], order: Sequence[int]) -> list[str]:
    return [items[i] for i in order]
