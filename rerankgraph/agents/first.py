"""Single-token listwise judge (FIRST): one generated token per window; the order comes
from the probabilities of every passage label at that first output position.

The reply is constrained to one label. vLLM 0.32 computes logprobs after the
structured-output mask (the model runner applies the grammar bitmask to the logits
before the sampler reads them), so the alternatives are exactly the window's labels,
ranked by the model's probability among them; the window is at most the number of
alternatives returned, so every label is seen. bench/logprobs.py measured the same
nDCG@10 with the constraint removed (docs/benchmarks.md, section `logprobs`)."""

from __future__ import annotations

import string
from collections.abc import Sequence
from typing import Literal

from pydantic import Field

from rerankgraph.agents.base import (
    Agent,
    Oracle,
    SimulatedReply,
    fit_candidates,
    judgment,
    render,
    simulated_choice,
)
from rerankgraph.agents.parsing import label_probabilities, read_label
from rerankgraph.agents.windows import WindowParams, passage_budget, reorder
from rerankgraph.serving.base import ChatRequest, Engine
from rerankgraph.types import Candidate, Judgment, ParseStatus, Query

LABELS = list(string.ascii_uppercase)
MAX_TOP_LOGPROBS = 20  # vLLM's default cap on returned alternatives


class FirstParams(WindowParams):
    """As listwise, but at most 20 passages: every label must fit in the top logprobs."""

    window: int = Field(20, ge=2, le=MAX_TOP_LOGPROBS, description="passages per call (A-T)")
    prompt: Literal["ranking", "best"] = Field(
        "ranking", description="ranking: a RankZephyr-style request for the whole order with "
                               "the reply opened at '[', the prompt FIRST models are trained "
                               "on; best: ask for the single most relevant passage")


class FirstAgent(Agent):
    """Ranks one window from first-token label logprobs."""

    name = "first"
    template = "first_ranking.j2"
    templates = {"ranking": "first_ranking.j2", "best": "first.j2"}

    async def judge_window(self, engine: Engine, query: Query, window: Sequence[Candidate],
                           params: FirstParams, candidates: Sequence[Candidate] = ()
                           ) -> Judgment:
        labels = LABELS[:len(window)]
        template = self.templates[params.prompt]
        budget = await passage_budget(engine, template, query.text, len(window), 3,
                                      params.max_doc_tokens, labels=labels)
        docs = await fit_candidates(engine, window, budget)
        prompt = render(template, query=query.text, passages=[d.text for d in docs],
                        labels=labels)
        # The ranking prompt's reply opens at "[", so the first token is a label.
        opening = "[" if params.prompt == "ranking" else None
        call = self.ask(prompt, query, docs, opening=opening, max_tokens=1,
                        choice=tuple(labels), top_logprobs=MAX_TOP_LOGPROBS)
        [completion] = await engine.chat([call])
        order, status, note = order_from_first_token(completion.first_token_logprobs,
                                                     completion.text, labels)
        ids = reorder([d.candidate.doc_id for d in docs], order)
        return judgment(self.name, call, docs, completion, ids, status, note)

    def simulate(self, request: ChatRequest, oracle: Oracle) -> SimulatedReply:
        """The label of the best passage, with every label's logprob."""
        assert request.choice is not None
        return simulated_choice(request.choice, oracle)


def order_from_first_token(logprobs: dict[str, float], text: str, labels: list[str]
                           ) -> tuple[list[int], ParseStatus, str]:
    """Labels by probability. A server that returns fewer labels than the window (not
    vLLM under the constraint) gets the missing ones in prior order below, counted as
    REPAIRED; without any label, the generated one goes first (REPAIRED) or the prior
    order stays (FALLBACK)."""
    mass = label_probabilities(logprobs, labels)
    if not mass:
        chosen = read_label(text, labels)
        if chosen is None:
            return list(range(len(labels))), ParseStatus.FALLBACK, "no label in reply"
        rest = [i for i in range(len(labels)) if i != chosen]
        return [chosen, *rest], ParseStatus.REPAIRED, "no label logprobs; used the reply"
    seen = sorted(mass, key=lambda i: (-mass[i], i))
    unseen = [i for i in range(len(labels)) if i not in mass]
    if unseen:
        return (seen + unseen, ParseStatus.REPAIRED,
                f"{len(unseen)} labels missing from the logprobs; kept in prior order")
    return seen, ParseStatus.OK, ""
