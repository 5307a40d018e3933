"""Listwise judge (RankGPT): one call ranks a window of passages; the reply is a
permutation like `[3] > [1] > [2]`, constrained to that shape by a regex."""

from __future__ import annotations

from collections.abc import Sequence

from rerankgraph.agents.base import Agent, Oracle, SimulatedReply, fit_candidates, judgment, render
from rerankgraph.agents.parsing import read_permutation
from rerankgraph.agents.windows import WindowParams, passage_budget, reorder
from rerankgraph.serving.base import ChatRequest, Engine
from rerankgraph.types import Candidate, Judgment, Query


def permutation_regex(size: int) -> str:
    """Exactly `size` bracketed ids joined by " > ": small models otherwise stop early.
    Repeats and out-of-range ids can still occur and are repaired by the parser."""
    return rf"\[[0-9]{{1,3}}\]( > \[[0-9]{{1,3}}\]){{{size - 1}}}"


class ListwiseParams(WindowParams):
    """RankGPT's defaults: window 20, stride 10, one pass."""


class ListwiseAgent(Agent):
    """Ranks one window; `parsed` is the window's doc ids in the new order."""

    name = "listwise"
    template = "listwise.j2"

    def window_values(self, window: Sequence[Candidate]) -> dict[str, object]:
        """What the template shows besides the query and the passages (none here)."""
        return {}

    def reply_tokens(self, size: int) -> int:
        return 6 * size + 8  # "[12] > " is at most 6 tokens

    async def judge_window(self, engine: Engine, query: Query, window: Sequence[Candidate],
                           params: ListwiseParams) -> Judgment:
        budget = await passage_budget(engine, self.template, query.text, len(window),
                                      self.reply_tokens(len(window)), params.max_doc_tokens,
                                      **self.window_values(window))
        docs = await fit_candidates(engine, window, budget)
        prompt = render(self.template, query=query.text, passages=[d.text for d in docs],
                        **self.window_values(window))
        call = self.ask(prompt, query, docs, max_tokens=self.reply_tokens(len(docs)),
                        regex=permutation_regex(len(docs)))
        [completion] = await engine.chat([call])
        order, status, note = read_permutation(completion.text, len(docs))
        ids = reorder([d.candidate.doc_id for d in docs], order)
        return judgment(self.name, call, docs, completion, ids, status, note)

    def simulate(self, request: ChatRequest, oracle: Oracle) -> SimulatedReply:
        """Every id, most relevant first."""
        scores = oracle.relevance
        order = sorted(range(len(scores)), key=lambda i: -scores[i])
        return SimulatedReply(" > ".join(f"[{i + 1}]" for i in order))
