"""Pairwise judge (PRP, Qin et al.): compares two passages per call, in both orders to
cancel position bias. By PRP's rule a passage wins only when both orders prefer it;
orders that disagree are a tie. `rule="mean"` decides by the mean of P(A) in (a, b)
and P(B) in (b, a) instead."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from rerankgraph.agents.base import (
    Agent,
    Oracle,
    SimulatedReply,
    fit_candidates,
    judgment,
    render,
    simulated_choice,
)
from rerankgraph.agents.parsing import label_probabilities
from rerankgraph.agents.setwise import read_choice
from rerankgraph.serving.base import ChatRequest, Completion, Engine
from rerankgraph.types import Candidate, Judgment, ParseStatus, Query

LABELS = ["A", "B"]


class PairwiseParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    k: int = Field(10, ge=1, description="how many top documents to extract")
    max_doc_tokens: int = Field(160, ge=8, description="passage token budget")
    rule: Literal["prp", "mean"] = Field(
        "prp", description="prp: a win needs both orders to agree, else a tie; "
                           "mean: the mean of the two orders' probabilities")
    sort: Literal["heapsort", "bubblesort"] = Field(
        "heapsort", description="heapsort, or bubblesort (PRP-Sliding-K: k passes of "
                                "adjacent comparisons from the bottom up)")


Verdict = Literal["first", "second", "tie"]


def verdict(first_wins_shown_first: float, first_wins_shown_second: float, rule: str
            ) -> Verdict:
    """Which of two passages wins, from P(it wins) with it shown first and shown
    second."""
    if rule == "mean":
        mean = (first_wins_shown_first + first_wins_shown_second) / 2
        return "first" if mean > 0.5 else "second" if mean < 0.5 else "tie"
    if first_wins_shown_first > 0.5 and first_wins_shown_second > 0.5:
        return "first"
    if first_wins_shown_first < 0.5 and first_wins_shown_second < 0.5:
        return "second"
    return "tie"


class PairwiseAgent(Agent):
    """Compares a pair; `parsed` of each judgment is P(first-listed passage wins)."""

    name = "pairwise"
    template = "pairwise.j2"

    async def prefer(self, engine: Engine, query: Query, a: Candidate, b: Candidate,
                     params: PairwiseParams) -> tuple[Verdict, list[Judgment]]:
        """Whether a ("first") or b ("second") is more relevant, or a tie, by
        `params.rule`; with the two judgments (a,b) and (b,a)."""
        doc_a, doc_b = await fit_candidates(engine, [a, b], params.max_doc_tokens)
        orders = [(doc_a, doc_b), (doc_b, doc_a)]
        calls = [self.ask(render(self.template, query=query.text, first=x.text, second=y.text),
                          query, (x, y), max_tokens=1, choice=tuple(LABELS), top_logprobs=10)
                 for x, y in orders]
        completions = await engine.chat(calls)
        judgments, first_wins = [], []
        for (x, y), call, completion in zip(orders, calls, completions, strict=True):
            probability, status, note = _first_wins(completion)
            first_wins.append(probability)
            judgments.append(judgment(self.name, call, [x, y], completion, probability, status,
                                      note))
        return verdict(first_wins[0], 1 - first_wins[1], params.rule), judgments

    def simulate(self, request: ChatRequest, oracle: Oracle) -> SimulatedReply:
        """The letter of the better passage, with every label's logprob."""
        assert request.choice is not None
        return simulated_choice(request.choice, oracle)


def _first_wins(completion: Completion) -> tuple[float, ParseStatus, str]:
    mass = label_probabilities(completion.first_token_logprobs, LABELS)
    if len(mass) == 2:
        return mass[0] / (mass[0] + mass[1]), ParseStatus.OK, ""
    chosen, status, note = read_choice(completion.text, completion.first_token_logprobs, LABELS)
    if status == ParseStatus.FALLBACK:
        return 0.5, status, note + "; counted as a tie"
    return (1.0 if chosen == 0 else 0.0), ParseStatus.REPAIRED, "read the reply letter"

