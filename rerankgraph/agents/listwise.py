"""Listwise judge (RankGPT): one call ranks a window of passages; the reply is a
permutation like `[3] > [1] > [2]`, constrained to that shape by a regex."""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import Field

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

    reasoning_tokens: int = Field(0, ge=0, le=2048, description=(
        "tokens of reasoning before the permutation, as DeAR's listwise stage allows "
        "(0: the permutation at once)"))


REASONING_LINE = "Reasoning: "
RANKING_LINE = "Ranking: "


def reply_regex(size: int, reasoning_tokens: int) -> str:
    """The permutation, after one bounded line of reasoning (no brackets in it, so the
    parser never mistakes it for ids) when `reasoning_tokens` > 0."""
    if not reasoning_tokens:
        return permutation_regex(size)
    return (rf"{REASONING_LINE}[^\n\[\]]{{1,{4 * reasoning_tokens}}}\n{RANKING_LINE}"
            + permutation_regex(size))


def permutation_part(text: str) -> str:
    """The reply after its reasoning line, if it has one."""
    at = text.rfind(RANKING_LINE.strip())
    return text[at + len(RANKING_LINE.strip()):] if at >= 0 else text


class ListwiseAgent(Agent):
    """Ranks one window; `parsed` is the window's doc ids in the new order."""

    name = "listwise"
    template = "listwise.j2"

    def window_values(self, window: Sequence[Candidate], candidates: Sequence[Candidate]
                      ) -> dict[str, object]:
        """What the template shows besides the query and the passages (none here)."""
        return {}

    def reply_tokens(self, size: int, reasoning_tokens: int = 0) -> int:
        # "[12] > " is at most 6 tokens. The reasoning line may hold 4 characters per
        # budgeted token, and a token holds at least one, so it can never cut the
        # permutation off.
        return 6 * size + 8 + (4 * reasoning_tokens + 16 if reasoning_tokens else 0)

    async def judge_window(self, engine: Engine, query: Query, window: Sequence[Candidate],
                           params: ListwiseParams, candidates: Sequence[Candidate] = ()
                           ) -> Judgment:
        """Ranks `window`, one slice of the query's `candidates` (default: the window)."""
        reasoning = getattr(params, "reasoning_tokens", 0)
        values = {**self.window_values(window, candidates or window),
                  "reasoning": bool(reasoning)}
        budget = await passage_budget(engine, self.template, query.text, len(window),
                                      self.reply_tokens(len(window), reasoning),
                                      params.max_doc_tokens, **values)
        docs = await fit_candidates(engine, window, budget)
        prompt = render(self.template, query=query.text, passages=[d.text for d in docs],
                        **values)
        call = self.ask(prompt, query, docs, max_tokens=self.reply_tokens(len(docs), reasoning),
                        regex=reply_regex(len(docs), reasoning))
        [completion] = await engine.chat([call])
        order, status, note = read_permutation(permutation_part(completion.text), len(docs))
        ids = reorder([d.candidate.doc_id for d in docs], order)
        return judgment(self.name, call, docs, completion, ids, status, note)

    def simulate(self, request: ChatRequest, oracle: Oracle) -> SimulatedReply:
        """Every id, most relevant first."""
        scores = oracle.relevance
        order = sorted(range(len(scores)), key=lambda i: -scores[i])
        permutation = " > ".join(f"[{i + 1}]" for i in order)
        if request.regex is not None and request.regex.startswith(REASONING_LINE):
            return SimulatedReply(f"{REASONING_LINE}simulated\n{RANKING_LINE}{permutation}")
        return SimulatedReply(permutation)
