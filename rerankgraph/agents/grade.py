"""Graded relevance judge for assessment, in the manner of UMBRELA (Upadhyay et al.,
2024): a 0-3 scale spelled out in the prompt, the searcher's intent and the passage's
match weighed first, then a grade. The judge answers the grade itself.

What we changed: our own prompt (prompts/assess_grade.j2), and the reply is constrained:
without reasoning it is one of the digits 0-3 (structured outputs, choice); with
reasoning, three bounded analysis lines (Retro*-style) then "Grade: N" (regex). vLLM
0.32 computes logprobs after the structured-output mask (see agents/pointwise.py), so a
one-digit reply's first-token logprobs cover only the four grades, and their expected
value is the ranking score; the grade written to qrels is the digit answered.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence

from pydantic import BaseModel, ConfigDict, Field

from rerankgraph.agents.base import Agent, Oracle, SimulatedReply, clamp01, judge_each, render
from rerankgraph.serving.base import ChatRequest, Completion, Engine
from rerankgraph.types import Candidate, Judgment, ParseStatus, Query

GRADES = ("0", "1", "2", "3")
TOP_GRADE = 3
STEPS = ("Intent", "Passage", "Match")
_GRADE_LINE = re.compile(r"grade[\"'*]*\s*[:=]\s*[\"'*]*\s*([0-3])\b", re.IGNORECASE)


class GradeParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    batch_size: int = Field(32, ge=1, description="candidates per graph branch (one engine batch)")
    max_doc_tokens: int = Field(256, ge=8, description="document token budget (title + text)")
    reasoning_tokens: int = Field(0, ge=0, le=2048, description=(
        "budget for the three analysis lines before the grade (0: the grade digit only)"))

    @property
    def step_chars(self) -> int:
        """Characters each analysis line may use (about 4 per token)."""
        return max(8, 4 * self.reasoning_tokens // len(STEPS))

    @property
    def max_reply_tokens(self) -> int:
        """Room for the longest reply the regex allows (one digit without reasoning)."""
        if not self.reasoning_tokens:
            return 1
        return sum(len(step) + 3 + self.step_chars for step in STEPS) + 10


def reply_regex(params: GradeParams) -> str:
    """The reasoned reply's shape: one bounded line per step, then the grade line."""
    steps = "".join(rf"{step}: [^\n]{{1,{params.step_chars}}}\n" for step in STEPS)
    return f"{steps}Grade: [0-3]"


def read_grade(text: str) -> tuple[int | None, bool]:
    """The grade a reply answers and whether it was read outside the reply format
    (a grade line elsewhere, or a digit with other text); (None, False) when none."""
    stripped = text.strip()
    if stripped in GRADES:
        return int(stripped), False
    lines = stripped.splitlines()
    if lines and (exact := re.fullmatch(r"Grade: ([0-3])", lines[-1].strip())):
        return int(exact.group(1)), False
    found = _GRADE_LINE.findall(text)
    if found:
        return int(found[-1]), True
    first = re.match(r"^\W*([0-3])\b", stripped)
    return (int(first.group(1)), True) if first else (None, False)


def expected_grade(logprobs: Mapping[str, float]) -> float | None:
    """The probability-weighted mean of the grades among a position's alternatives,
    or None when none of them is a grade."""
    weights = {int(t.strip()): math.exp(p) for t, p in logprobs.items()
               if t.strip() in GRADES and math.isfinite(p)}
    total = sum(weights.values())
    return sum(g * w for g, w in weights.items()) / total if total > 0 else None


def grade_of(item: Judgment) -> int | None:
    """The grade of a judgment made by GradeAgent (None for a FALLBACK one)."""
    if item.status == ParseStatus.FALLBACK:
        return None
    return read_grade(item.raw_reply)[0]


class GradeAgent(Agent):
    """Grades each candidate 0-3 against the scale of prompts/assess_grade.j2."""

    name = "grade"
    template = "assess_grade.j2"

    async def judge(self, engine: Engine, query: Query, candidates: Sequence[Candidate],
                    params: GradeParams, seed: int = 0) -> list[Judgment]:
        """One judgment per candidate; `parsed` is the grade scaled to [0, 1]: the
        expected grade from the logprobs when the reply is one digit and the engine
        gave them, else the answered grade. Greedy, so the seed is unused."""
        return await judge_each(self.name, engine, query, candidates, params.max_doc_tokens,
                                lambda passage: self.chat_request(query.text, passage, params),
                                self.read)

    def chat_request(self, query: str, passage: str, params: GradeParams) -> ChatRequest:
        """The call for one (already fitted) passage."""
        reasoning = params.reasoning_tokens > 0
        prompt = render(self.template, query=query, passage=passage, reasoning=reasoning)
        if reasoning:
            return self.ask(prompt, max_tokens=params.max_reply_tokens, regex=reply_regex(params))
        return self.ask(prompt, max_tokens=1, choice=GRADES, top_logprobs=len(GRADES))

    @staticmethod
    def read(reply: Completion) -> tuple[float, ParseStatus, str]:
        grade, repaired = read_grade(reply.text)
        if grade is None:
            return 0.0, ParseStatus.FALLBACK, f"reply {reply.text[:40]!r} holds no grade 0-3"
        expected = expected_grade(reply.first_token_logprobs) if reply.text.strip() in GRADES \
            else None
        score = (expected if expected is not None else grade) / TOP_GRADE
        if repaired:
            return score, ParseStatus.REPAIRED, "grade read outside the reply format"
        return score, ParseStatus.OK, ""

    @staticmethod
    def measured(item: Judgment) -> bool:
        """A FALLBACK pair has no grade and goes below every graded one."""
        return item.status != ParseStatus.FALLBACK

    def simulate(self, request: ChatRequest, oracle: Oracle) -> SimulatedReply:
        """The relevance rounded to a grade 0-3, in the shape the request asks; exact
        at noise 0 on qrels whose top grade is 3 (TREC DL)."""
        grade = round(TOP_GRADE * clamp01(oracle.relevance[0]))
        if request.regex is not None:
            lines = "".join(f"{step}: simulated\n" for step in STEPS)
            return SimulatedReply(f"{lines}Grade: {grade}")
        return SimulatedReply(str(grade), {g: math.log(0.97 if int(g) == grade else 0.01)
                                           for g in GRADES})
