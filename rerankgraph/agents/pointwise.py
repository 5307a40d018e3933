"""Pointwise yes/no judge: score = P(yes) / (P(yes) + P(no)) of one generated token.

The reply is constrained to the words yes/no (structured outputs, choice). vLLM 0.32
computes logprobs after that mask, so the first position's alternatives are the two
words and the score is the model's choice between them. bench/logprobs.py compared it
with the unconstrained top-20: about the same nDCG@10, but two thirds of the free
replies had neither word among their top 20 and could only be read from the text
(docs/benchmarks.md, section `logprobs`); so the constraint stays.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from pydantic import BaseModel, ConfigDict, Field

from rerankgraph.agents.base import Agent, Oracle, SimulatedReply, judge_each, render
from rerankgraph.agents.parsing import YES_NO_FROM_WORD, read_yes_no
from rerankgraph.serving.base import ChatRequest, Completion, Engine
from rerankgraph.types import Candidate, Judgment, ParseStatus, Query


class PointwiseParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    batch_size: int = Field(32, ge=1, description="candidates per graph branch (one engine batch)")
    max_doc_tokens: int = Field(256, ge=8, description="document token budget (title + text)")
    top_logprobs: int = Field(20, ge=2, le=20, description="alternatives read at the answer token")


class PointwiseAgent(Agent):
    """Asks, per candidate, whether the passage answers the query."""

    name = "pointwise"
    template = "pointwise.j2"

    async def judge(self, engine: Engine, query: Query, candidates: Sequence[Candidate],
                    params: PointwiseParams, seed: int = 0) -> list[Judgment]:
        """One judgment per candidate; `parsed` is the score in [0, 1]. Greedy, so the
        seed is unused."""
        return await judge_each(self.name, engine, query, candidates, params.max_doc_tokens,
                                lambda passage: self.chat_request(query.text, passage, params),
                                self.read)

    def chat_request(self, query: str, passage: str, params: PointwiseParams) -> ChatRequest:
        """The call for one (already fitted) passage."""
        return self.ask(render(self.template, query=query, passage=passage), max_tokens=1,
                        choice=("yes", "no"), top_logprobs=params.top_logprobs)

    @staticmethod
    def read(reply: Completion) -> tuple[float, ParseStatus, str]:
        return read_yes_no(reply.text, reply.first_token_logprobs)

    @staticmethod
    def measured(item: Judgment) -> bool:
        """A score is a measured probability only when read from the logprobs; a reply
        word (repaired) or the neutral default (fallback) ranks below every measured one
        (see graphs.scoring.below_measured)."""
        return item.status != ParseStatus.FALLBACK and YES_NO_FROM_WORD not in item.note

    def simulate(self, request: ChatRequest, oracle: Oracle) -> SimulatedReply:
        """P(yes) is the passage's relevance, kept off 0 and 1."""
        p_yes = min(max(oracle.relevance[0], 0.01), 0.99)
        return SimulatedReply("yes" if p_yes >= 0.5 else "no",
                              {"yes": math.log(p_yes), "no": math.log(1 - p_yes)})
