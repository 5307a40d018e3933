"""Setwise judge (Setwise heapsort, Zhuang et al.): one call picks the most relevant of
a parent and its `num_child` children, answered as a label constrained by structured
outputs. A heap built on these picks extracts the top k."""

from __future__ import annotations

import string
from collections.abc import Sequence
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from rerankgraph.agents.base import (
    Agent,
    Oracle,
    SimulatedReply,
    best_prior,
    fit_candidates,
    judgment,
    render,
    simulated_choice,
)
from rerankgraph.agents.parsing import label_probabilities, read_label
from rerankgraph.serving.base import ChatRequest, Engine
from rerankgraph.types import Candidate, Judgment, ParseStatus, Query

LABELS = list(string.ascii_uppercase)


class SetwiseParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    num_child: int = Field(3, ge=1, le=20, description="children per heap node (set = 1 + this)")
    k: int = Field(10, ge=1, description="how many top documents to extract")
    sort: Literal["heapsort", "bubblesort"] = Field(
        "heapsort", description="heapsort, or bubblesort: k passes of windows of "
                                "1 + num_child from the bottom up")
    max_doc_tokens: int = Field(160, ge=8, description="passage token budget")


class SetwiseAgent(Agent):
    """Picks the best of a small set; `parsed` is the chosen doc id."""

    name = "setwise"
    template = "setwise.j2"

    async def best_of(self, engine: Engine, query: Query, docs_in: Sequence[Candidate],
                      params: SetwiseParams) -> tuple[int, Judgment]:
        labels = LABELS[:len(docs_in)]
        docs = await fit_candidates(engine, docs_in, params.max_doc_tokens)
        prompt = render(self.template, query=query.text, passages=[d.text for d in docs],
                        labels=labels)
        call = self.ask(prompt, query, docs, max_tokens=1, choice=tuple(labels),
                        top_logprobs=min(20, len(labels) + 5))
        [completion] = await engine.chat([call])
        chosen, status, note = read_choice(completion.text, completion.first_token_logprobs,
                                           labels)
        if status == ParseStatus.FALLBACK:
            chosen = best_prior(docs_in)
        return chosen, judgment(self.name, call, docs, completion,
                                docs[chosen].candidate.doc_id, status, note)

    def simulate(self, request: ChatRequest, oracle: Oracle) -> SimulatedReply:
        """The label of the best passage, with every label's logprob."""
        assert request.choice is not None
        return simulated_choice(request.choice, oracle)


def read_choice(text: str, logprobs: dict[str, float], labels: list[str]
                ) -> tuple[int, ParseStatus, str]:
    """The label the reply names; else the likeliest label in the logprobs (REPAIRED);
    else FALLBACK (the caller then keeps the first stage's preference)."""
    chosen = read_label(text, labels)
    if chosen is not None:
        return chosen, ParseStatus.OK, ""
    mass = label_probabilities(logprobs, labels)
    if mass:
        return max(mass, key=lambda i: mass[i]), ParseStatus.REPAIRED, "label from logprobs"
    return 0, ParseStatus.FALLBACK, f"no label in {text[:30]!r}; kept the prior order"
