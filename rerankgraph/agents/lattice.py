"""Slate judge of LATTICE (Gupta et al., 2025): one call scores every item of a slate
0-100, the children of a tree node (group descriptions, or documents at a leaf
cluster) together with calibration items, through a JSON reply keyed by the items'
ids (structured outputs). The paper's judge reasons, ranks, then scores; ours scores
at once by default, since a small judge's reasoning costs tokens and rarely helps, and
reasons first in one bounded line with `reasoning_tokens`.

A slate whose reply cannot be read is left out of the calibration and counted; its
items keep whatever other slates said of them.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Literal

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
from rerankgraph.agents.listwise import REASONING_LINE
from rerankgraph.agents.parsing import id_scores_regex, read_id_scores
from rerankgraph.serving.base import ChatRequest, Engine
from rerankgraph.types import Candidate, Judgment, Query

MAX_SCORE = 100


# The authors' settings (nilesh2797/llm-guided-retrieval, src/hyperparams.py defaults; the
# top-down subsets of src/run.sh take 30 iterations and a chain factor of 0.75).
PRESETS: dict[str, dict[str, object]] = {
    "lattice": {"iterations": 20, "beam": 2, "alpha": 0.5, "leaf_calibration": 10,
                "path_cutoff": 0.09, "ranking": "path"},
    "lattice-top-down": {"iterations": 30, "beam": 2, "alpha": 0.75, "leaf_calibration": 10,
                         "path_cutoff": 0.09, "ranking": "path"},
}


class LatticeParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    preset: Literal["lattice", "lattice-top-down"] | None = Field(
        None, description="the authors' settings (iterations, beam, alpha, leaf "
                          "calibration): lattice (their defaults, which are ours) or "
                          "lattice-top-down; parameters given beside it win")

    tree: str | None = Field(None, description="tree of the index to walk (default: its only "
                                               "one), e.g. bottom-up or top-down")
    beam: int = Field(2, ge=1, le=32, description="frontier nodes expanded per iteration")
    iterations: int = Field(20, ge=1, le=500, description="expansion rounds per query")
    alpha: float = Field(0.5, ge=0, le=1,
                         description="weight of a node's own score in its path relevance")
    leaf_calibration: int = Field(10, ge=0, le=40,
                                  description="scored documents added to a leaf slate")
    path_cutoff: float | None = Field(0.09, ge=0, le=1, description="a node scored at most "
                                      "this (0-1) gets its own score as path relevance, not "
                                      "a blend with its parent's (LATTICE's code: 0.09); "
                                      "null: always blend")
    ranking: Literal["path", "calibrated"] = Field(
        "path", description="final order: path, alpha * calibrated + (1 - alpha) * the "
                            "leaf's path relevance (LATTICE's code); calibrated: the "
                            "calibrated score alone")
    max_doc_tokens: int = Field(96, ge=8, description="token budget of each slate item")
    reasoning_tokens: int = Field(0, ge=0, le=2048, description=(
        "tokens of reasoning before the scores, as the paper's judge reasons first "
        "(0: the scores at once)"))
    rerank_method: str | None = Field(None, description="rerank the top rerank_depth with "
                                                        "this registered method")
    rerank_depth: int = Field(20, ge=1, description="documents the final rerank reads")
    branching: int = Field(10, ge=2, description="rerank mode: children per node of the "
                                                 "candidates' tree")
    max_leaf: int = Field(10, ge=1, description="rerank mode: documents per leaf cluster")

    @model_validator(mode="before")
    @classmethod
    def _preset(cls, values: object) -> object:
        if isinstance(values, dict) and values.get("preset") in PRESETS:
            return {**PRESETS[str(values["preset"])], **values}
        return values


def reply_regex(size: int, reasoning_tokens: int) -> str:
    """The JSON scores, after one bounded line of reasoning (no braces in it, so the
    reader never mistakes it for the scores) when `reasoning_tokens` > 0."""
    scores = id_scores_regex(size, MAX_SCORE)
    if not reasoning_tokens:
        return scores
    return rf"{REASONING_LINE}[^\n{{}}]{{1,{4 * reasoning_tokens}}}\n" + scores


def reply_tokens(size: int, reasoning_tokens: int) -> int:
    # '"12": 100, ' is at most 9 tokens; the reasoning line holds at most 4 characters a
    # budgeted token and a token at least one, so it never cuts the scores off.
    return 9 * size + 8 + (4 * reasoning_tokens + 16 if reasoning_tokens else 0)


def scores_part(text: str) -> str:
    """The reply from its JSON on, past a reasoning line."""
    return text[text.find("{"):] if text.startswith(REASONING_LINE) and "{" in text else text


class LatticeAgent(Agent):
    """Scores slates; `parsed` maps item key -> score in [0, 1] (only items read)."""

    name = "lattice"
    template = "lattice.j2"

    async def score_slates(self, engine: Engine, query: Query,
                           slates: Sequence[Sequence[Candidate]], leaves: Sequence[bool],
                           params: LatticeParams) -> list[Judgment]:
        """One judgment per slate; every slate goes to the engine in one batch."""
        requests, shown = [], []
        for slate, leaf in zip(slates, leaves, strict=True):
            docs = await fit_candidates(engine, slate, params.max_doc_tokens)
            shown.append(docs)
            prompt = render(self.template, query=query.text, leaves=leaf,
                            passages=[d.text for d in docs],
                            reasoning=bool(params.reasoning_tokens))
            requests.append(self.ask(prompt, query, docs,
                                     max_tokens=reply_tokens(len(docs), params.reasoning_tokens),
                                     regex=reply_regex(len(docs), params.reasoning_tokens)))
        completions = await engine.chat(requests)
        judgments = []
        for docs, request, completion in zip(shown, requests, completions, strict=True):
            scores, status, note = read_id_scores(scores_part(completion.text), len(docs),
                                                  MAX_SCORE)
            parsed = {docs[i].candidate.doc_id: s for i, s in scores.items()}
            judgments.append(judgment(self.name, request, docs, completion, parsed, status,
                                      note))
        return judgments

    def simulate(self, request: ChatRequest, oracle: Oracle) -> SimulatedReply:
        """Each item's relevance as a 0-100 score, keyed by its id."""
        scores = json.dumps({str(i + 1): round(MAX_SCORE * clamp01(s))
                             for i, s in enumerate(oracle.relevance)}, separators=(", ", ": "))
        if request.regex is not None and request.regex.startswith(REASONING_LINE):
            return SimulatedReply(f"{REASONING_LINE}simulated\n{scores}")
        return SimulatedReply(scores)
