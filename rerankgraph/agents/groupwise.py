"""Groupwise judge (GroupRank): one call scores every passage of a group 0-10 against
the others, through a JSON reply keyed by the group's ids (structured outputs).

Unlike the GroupRank code, a group whose reply cannot be read is retried once with a
new seed and, if it still fails, left out of the mean and counted; it is never zeroed.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from rerankgraph.agents.base import (
    Agent,
    Oracle,
    SimulatedReply,
    clamp01,
    fit_candidates,
    judgment,
    render,
)
from rerankgraph.agents.parsing import id_scores_regex, read_id_scores
from rerankgraph.serving.base import ChatRequest, Engine
from rerankgraph.types import Candidate, Judgment, ParseStatus, Query

MAX_SCORE = 10


class GroupwiseParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    group_size: int = Field(20, ge=2, le=50, description="passages per call")
    interval: int = Field(20, ge=1, description="step between group starts in a round")
    rounds: int = Field(6, ge=1, le=50, description="seeded shuffles of the candidates")
    max_doc_tokens: int = Field(120, ge=8, description="passage token budget")
    retry_temperature: float = Field(0.7, ge=0, description="temperature of the one retry")
    reasoning: int = Field(0, ge=0, le=4096, description=(
        "tokens of free reasoning before the JSON scores, as GroupRank does; 0 asks for "
        "the JSON at once"))
    temperature: float = Field(0.0, ge=0, le=2, description=(
        "sampling temperature of the first attempt (GroupRank samples at 0.3)"))

    @model_validator(mode="after")
    def _every_document_in_a_group(self) -> GroupwiseParams:
        # Groups start every `interval`: a larger step would skip documents every round.
        if self.interval > self.group_size:
            raise ValueError(f"interval {self.interval} is over group_size "
                             f"{self.group_size}: the documents between groups would "
                             "never be judged")
        return self


def group_reply_regex(size: int) -> str:
    """Compact JSON with every id of the group once, each scored 0-10."""
    return id_scores_regex(size, MAX_SCORE)


def read_group_scores(text: str, size: int, reasoned: bool = False
                      ) -> tuple[dict[int, float], ParseStatus, str]:
    """Scores per 0-based position, scaled to [0, 1] (see `read_id_scores`). With
    `reasoned`, the reasoning asked for before the JSON is no repair: the JSON after
    the last brace-free text is read on its own."""
    start = text.rfind("{")
    if reasoned and start > 0 and "}" not in text[:start]:
        scores, status, note = read_id_scores(text[start:], size, MAX_SCORE)
        if status != ParseStatus.FALLBACK:
            return scores, status, note
    return read_id_scores(text, size, MAX_SCORE)


class GroupwiseAgent(Agent):
    """Scores one group; `parsed` maps doc id -> score in [0, 1] (only ids read)."""

    name = "groupwise"
    template = "groupwise.j2"

    async def judge_group(self, engine: Engine, query: Query, group: Sequence[Candidate],
                          params: GroupwiseParams, seed: int) -> list[Judgment]:
        """One judgment, or two when the first reply was unreadable and retried."""
        docs = await fit_candidates(engine, group, params.max_doc_tokens)
        prompt = render(self.template, query=query.text, passages=[d.text for d in docs],
                        reasoning=params.reasoning > 0)
        # With reasoning, free text (no braces, so the JSON is the reply's only object)
        # comes first; the budget bounds it.
        regex = ((r"[^{}]*" if params.reasoning else "") + group_reply_regex(len(docs)))
        ask: dict[str, Any] = {"max_tokens": params.reasoning + 8 * len(docs) + 8, "regex": regex}
        judgments = []
        for attempt in range(2):
            # A sampled first attempt is seeded, so a rerun (and the reply cache) agrees.
            sampling = ({"temperature": params.temperature,
                         "seed": seed if params.temperature > 0 else None} if attempt == 0
                        else {"temperature": params.retry_temperature, "seed": seed + 1})
            call = self.ask(prompt, query, docs, **ask, **sampling)
            [completion] = await engine.chat([call])
            scores, status, note = read_group_scores(completion.text, len(docs),
                                                     reasoned=params.reasoning > 0)
            parsed = {docs[i].candidate.doc_id: s for i, s in scores.items()}
            if status == ParseStatus.FALLBACK and attempt == 0:
                note += "; retried with a new seed"
            judgments.append(judgment(self.name, call, docs, completion, parsed, status, note))
            if status != ParseStatus.FALLBACK:
                break
        return judgments

    def simulate(self, request: ChatRequest, oracle: Oracle) -> SimulatedReply:
        """Each passage's relevance as a 0-10 score, keyed by its id."""
        return SimulatedReply(json.dumps({str(i + 1): round(MAX_SCORE * clamp01(s))
                                          for i, s in enumerate(oracle.relevance)}))
