"""Rubric judge (after Retro*): a 0-100 score over five relevance bands, with a short
reasoning first, read from a JSON reply constrained by a schema. Unlike Retro*, one
sample per document by default; `samples` > 1 averages several seeded samples."""

from __future__ import annotations

import json
from collections.abc import Sequence

from pydantic import BaseModel, ConfigDict, Field

from rerankgraph.agents.base import Agent, Oracle, SimulatedReply, clamp01, judge_each, render
from rerankgraph.agents.parsing import read_json, read_json_field_number
from rerankgraph.serving.base import ChatRequest, Completion, Engine
from rerankgraph.types import Candidate, Judgment, ParseStatus, Query

NEUTRAL_SCORE = 50.0
REASONING_CHARS = 160
REPLY_REGEX = (r'\{"reasoning": "[^"\\\n]{1,' + str(REASONING_CHARS)
               + r'}", "score": (100|[1-9]?[0-9])\}')


class RubricReply(BaseModel):
    """The reply's parser. The engine is constrained by REPLY_REGEX, the same shape as
    compact JSON, so no reply tokens go to whitespace and none is cut off mid-way."""

    reasoning: str = Field(max_length=REASONING_CHARS)
    score: int = Field(ge=0, le=100)


class RubricParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    batch_size: int = Field(32, ge=1, description="candidates per graph branch (one engine batch)")
    max_doc_tokens: int = Field(256, ge=8, description="document token budget (title + text)")
    max_reply_tokens: int = Field(96, ge=16, description="reply token budget")
    samples: int = Field(1, ge=1, le=8, description="seeded samples averaged per document")
    temperature: float = Field(0.0, ge=0, description="0 for greedy; >0 when samples > 1")


def read_rubric(completion: Completion) -> tuple[float, ParseStatus, str]:
    """Mean 0-100 score over the samples; a cut-off reply is read by its score field,
    an unreadable one scores the neutral 50 and is marked FALLBACK."""
    scores, worst, notes = [], ParseStatus.OK, []
    for text in completion.texts:
        reply, status, note = read_json(text, RubricReply)
        if reply is not None:
            value: float | None = float(reply.score)
        else:
            value = read_json_field_number(text, "score")
            if value is not None:
                value = min(max(value, 0.0), 100.0)
                status, note = ParseStatus.REPAIRED, "read the score field of a cut-off reply"
        if value is None:
            value, status = NEUTRAL_SCORE, ParseStatus.FALLBACK
        scores.append(value)
        if status != ParseStatus.OK:
            notes.append(note)
        worst = max(worst, status, key=_SEVERITY.index)
    return sum(scores) / len(scores), worst, "; ".join(notes)


_SEVERITY = [ParseStatus.OK, ParseStatus.REPAIRED, ParseStatus.FALLBACK]


class RubricAgent(Agent):
    """Scores each candidate 0-100 against a five-band rubric."""

    name = "rubric"
    template = "rubric.j2"

    async def judge(self, engine: Engine, query: Query, candidates: Sequence[Candidate],
                    params: RubricParams) -> list[Judgment]:
        """One judgment per candidate; `parsed` is the score scaled to [0, 1]."""
        return await judge_each(self.name, engine, query, candidates, params.max_doc_tokens,
                                lambda passage: self.chat_request(query.text, passage, params),
                                self.read)

    def chat_request(self, query: str, passage: str, params: RubricParams) -> ChatRequest:
        """The call for one (already fitted) passage."""
        return self.ask(render(self.template, query=query, passage=passage),
                        max_tokens=params.max_reply_tokens, n=params.samples,
                        temperature=params.temperature, seed=0 if params.samples > 1 else None,
                        regex=REPLY_REGEX)

    @staticmethod
    def read(reply: Completion) -> tuple[float, ParseStatus, str]:
        """The mean score scaled to [0, 1]."""
        score, status, note = read_rubric(reply)
        return score / 100.0, status, note

    def simulate(self, request: ChatRequest, oracle: Oracle) -> SimulatedReply:
        """The relevance as a 0-100 score, written as REPLY_REGEX asks."""
        reply = RubricReply(reasoning="simulated judgment",
                            score=round(100 * clamp01(oracle.relevance[0])))
        return SimulatedReply(json.dumps(reply.model_dump()))
