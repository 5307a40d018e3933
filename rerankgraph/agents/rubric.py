"""Rubric judge after Retro* (Lan et al., 2025): a 0-100 score over five relevance bands
against an explicit relevance definition, reached through a three-step analysis (the
query, the document, the relevance) and integrated over K sampled trajectories.

What we changed: the analysis is bounded (a character cap per step, from
`reasoning_tokens`) and the reply is constrained by a regex, so a small model always ends
on a score line; K samples go in one request (n=K) so the engine shares their prompt.
"""

from __future__ import annotations

import math
import re
import statistics
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, replace

from pydantic import BaseModel, ConfigDict, Field, model_validator

from rerankgraph.agents.base import (
    Agent,
    FittedDoc,
    Oracle,
    SimulatedReply,
    clamp01,
    fit_candidates,
    judgment,
    render,
)
from rerankgraph.serving.base import ChatRequest, Completion, Engine
from rerankgraph.types import Candidate, Judgment, ParseStatus, Query

GENERAL_DEFINITION = ("A passage is relevant when it contains information that answers "
                      "the query, in whole or in part.")
STEPS = ("Query", "Document", "Relevance")
SCORE = r"(100|[1-9]?[0-9])"
SAMPLED_TEMPERATURE = 0.6  # Retro*'s temperature for its K trajectories
# The expected score from the digits' logprobs moves a mean by at most 1e-4 on the 0-100
# scale, less than the smallest gap between two means of integer scores over K <= 32
# samples (1/(32*31)), so it only ever breaks ties.
TIE_BREAK_WEIGHT = 1e-6
# A score written another way ("score": 80, **Score:** 80), by an engine without the regex.
_SCORE_LINE = re.compile(r"score[\"'*]*\s*[:=]\s*[\"'*]*\s*(\d{1,3}(?:\.\d+)?)", re.IGNORECASE)


class RubricParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    batch_size: int = Field(32, ge=1, description="candidates per graph branch (one engine batch)")
    max_doc_tokens: int = Field(256, ge=8, description="document token budget (title + text)")
    definition: str = Field(GENERAL_DEFINITION, min_length=1,
                            description="what counts as relevant for this task")
    reasoning_tokens: int = Field(96, ge=0, le=2048,
                                  description="budget for the three analysis steps (0: score only)")
    samples: int = Field(1, ge=1, le=32, description="K sampled trajectories per document (n=K)")
    temperature: float | None = Field(
        None, ge=0, description=f"sampling temperature (default: 0 for K=1, "
                                f"{SAMPLED_TEMPERATURE} for K>1)")
    top_logprobs: int = Field(5, ge=0, le=20,
                              description="logprobs per score digit for the tie-break (0: off)")

    @model_validator(mode="after")
    def _sampling_needs_temperature(self) -> RubricParams:
        if self.samples > 1 and self.temperature == 0:
            raise ValueError(f"samples={self.samples} needs a temperature above 0 (vLLM "
                             "rejects n > 1 under greedy sampling); leave temperature unset "
                             f"for {SAMPLED_TEMPERATURE}")
        return self

    @property
    def sampling_temperature(self) -> float:
        if self.temperature is not None:
            return self.temperature
        return SAMPLED_TEMPERATURE if self.samples > 1 else 0.0

    @property
    def step_chars(self) -> int:
        """Characters each analysis step may use (about 4 per token)."""
        return max(8, 4 * self.reasoning_tokens // len(STEPS))

    @property
    def max_reply_tokens(self) -> int:
        """Enough for the longest reply the regex allows (a token holds at least one
        character), so no sample is cut off before its score; most use far fewer."""
        if not self.reasoning_tokens:
            return 8
        return sum(len(step) + 3 + self.step_chars for step in STEPS) + 12


def reply_regex(params: RubricParams) -> str:
    """The reply's shape: one bounded line per analysis step, then the score line."""
    steps = "".join(rf"{step}: [^\n]{{1,{params.step_chars}}}\n"
                    for step in STEPS) if params.reasoning_tokens else ""
    return f"{steps}Score: {SCORE}"


@dataclass(frozen=True)
class RubricReading:
    """What K samples say: the readable scores, how many were dropped, and the mean
    expected score from the score digits' logprobs (None where the engine gave none)."""

    scores: tuple[float, ...]
    dropped: int
    expected: float | None
    repaired: int = 0

    @property
    def mean(self) -> float | None:
        return statistics.fmean(self.scores) if self.scores else None

    @property
    def spread(self) -> float:
        """The population standard deviation of the readable scores."""
        return statistics.pstdev(self.scores) if len(self.scores) > 1 else 0.0


def read_sample(text: str) -> tuple[float | None, bool]:
    """The score of one sample and whether it came from the expected last line; a score
    line elsewhere (an engine without the regex) is read but marked repaired."""
    lines = text.strip().splitlines()
    if lines:
        exact = re.fullmatch(rf"Score: {SCORE}", lines[-1].strip())
        if exact is not None:
            return float(exact.group(1)), False
    found = _SCORE_LINE.findall(text)
    if found:
        return min(max(float(found[-1]), 0.0), 100.0), True
    return None, False


def expected_score(positions: Sequence[dict[str, float]], score: float) -> float | None:
    """The score's expected value from its digits' logprobs: at each digit of the score,
    the probability-weighted mean over the single-digit tokens shown there. Positions
    are found from the end by their sampled token (each position's first key), past one
    end-of-reply token. None when they do not spell the score one digit per token, or
    no finite alternative is shown."""
    digits = str(int(score))
    sampled = [next(iter(p), "").strip() for p in positions]
    end = len(positions)
    if end and not sampled[end - 1].isdigit():
        end -= 1  # the end-of-reply token
    start = end - len(digits)
    if start < 0 or "".join(sampled[start:end]) != digits:
        return None
    value = 0.0
    for power, position in enumerate(reversed(positions[start:end])):
        weights = {int(t.strip()): math.exp(p) for t, p in position.items()
                   if len(t.strip()) == 1 and t.strip().isdigit() and math.isfinite(p)}
        total = sum(weights.values())
        if total <= 0:
            return None
        value += 10 ** power * sum(d * w for d, w in weights.items()) / total
    return value


def read_rubric(completion: Completion) -> RubricReading:
    """The readable samples' scores; an unreadable sample is dropped and counted."""
    scores, expected, dropped, repaired = [], [], 0, 0
    for i, text in enumerate(completion.texts):
        score, was_repaired = read_sample(text)
        if score is None:
            dropped += 1
            continue
        scores.append(score)
        repaired += was_repaired
        if i < len(completion.logprobs) and not was_repaired:
            value = expected_score(completion.logprobs[i], score)
            if value is not None:
                expected.append(value)
    return RubricReading(tuple(scores), dropped,
                         statistics.fmean(expected) if expected else None, repaired)


class RubricAgent(Agent):
    """Scores each candidate 0-100 against a relevance definition and a five-band rubric."""

    name = "rubric"
    template = "rubric.j2"

    async def judge(self, engine: Engine, query: Query, candidates: Sequence[Candidate],
                    params: RubricParams, seed: int = 0) -> list[Judgment]:
        """One judgment per candidate; `parsed` is the mean score scaled to [0, 1]. A
        candidate whose K samples are all unreadable is asked once more, then recorded
        as a FALLBACK."""
        docs = await fit_candidates(engine, candidates, params.max_doc_tokens, per_prompt=1)
        calls = [self.pair_request(query, doc, params, seed) for doc in docs]
        replies = list(await engine.chat(calls))
        readings = [read_rubric(r) for r in replies]
        again = [i for i, r in enumerate(readings) if not r.scores]
        if again:
            retried = await engine.chat([_retry(calls[i]) for i in again])
            for i, reply in zip(again, retried, strict=True):
                first = readings[i]
                second = read_rubric(reply)
                readings[i] = replace(second, dropped=first.dropped + second.dropped)
                replies[i] = _joined(replies[i], reply)
        return [self.record(call, doc, reply, reading, retried=i in again)
                for i, (call, doc, reply, reading)
                in enumerate(zip(calls, docs, replies, readings, strict=True))]

    def pair_request(self, query: Query, doc: FittedDoc, params: RubricParams,
                     seed: int = 0) -> ChatRequest:
        """The call for one fitted passage, with a seed of its own when sampling."""
        request = self.chat_request(query.text, doc.text, params)
        pair_seed = (zlib.crc32(f"{seed}:{query.id}:{doc.candidate.doc_id}".encode())
                     if request.temperature > 0 else None)
        return replace(request, seed=pair_seed, query_id=query.id,
                       doc_ids=(doc.candidate.doc_id,))

    def chat_request(self, query: str, passage: str, params: RubricParams) -> ChatRequest:
        """The call for one (already fitted) passage: K samples in one request."""
        prompt = render(self.template, query=query, passage=passage,
                        definition=params.definition, reasoning=params.reasoning_tokens > 0)
        return self.ask(prompt, max_tokens=params.max_reply_tokens, n=params.samples,
                        temperature=params.sampling_temperature,
                        seed=0 if params.sampling_temperature > 0 else None,
                        top_logprobs=params.top_logprobs or None, regex=reply_regex(params))

    def record(self, call: ChatRequest, doc: FittedDoc, reply: Completion,
               reading: RubricReading, retried: bool = False) -> Judgment:
        """The judgment of one pair, with its samples' scores and the dropped count."""
        asked = len(reply.texts) * (2 if retried else 1)
        score, status, note = self.score_of(reading, asked)
        if retried:
            note = "; ".join(filter(None, ["all samples unreadable, asked once more", note]))
        made = judgment(self.name, call, [doc], reply, score, status, note)
        return made.model_copy(update={"sample_scores": reading.scores,
                                       "dropped_samples": reading.dropped,
                                       "calls": 2 if retried else 1})

    @staticmethod
    def score_of(reading: RubricReading, asked: int) -> tuple[float, ParseStatus, str]:
        """The mean readable score in [0, 1] (the tie-break added), its status and note."""
        if reading.mean is None:
            return 0.5, ParseStatus.FALLBACK, f"none of {asked} samples had a score"
        notes = []
        if reading.dropped:
            notes.append(f"{reading.dropped} of {asked} samples unreadable, left out of "
                         "the mean")
        if reading.repaired:
            notes.append(f"{reading.repaired} score lines read outside the reply format")
        if len(reading.scores) > 1:
            notes.append(f"spread {reading.spread:.1f}")
        tie_break = TIE_BREAK_WEIGHT * reading.expected if reading.expected is not None else 0.0
        score = (reading.mean + tie_break) / 100.0
        status = ParseStatus.REPAIRED if reading.repaired or reading.dropped else ParseStatus.OK
        return score, status, "; ".join(notes)

    def read(self, reply: Completion) -> tuple[float, ParseStatus, str]:
        """The score of one reply in [0, 1], for backends that ask once (Ray Data)."""
        return self.score_of(read_rubric(reply), len(reply.texts))

    @staticmethod
    def measured(item: Judgment) -> bool:
        """A FALLBACK pair has no score of its own and goes below every scored one."""
        return item.status != ParseStatus.FALLBACK

    def simulate(self, request: ChatRequest, oracle: Oracle) -> SimulatedReply:
        """The relevance as a 0-100 score, in the shape the request's regex asks."""
        score = round(100 * clamp01(oracle.relevance[0]))
        steps = "" if request.regex is None or request.regex.startswith("Score") else (
            "Query: simulated\nDocument: simulated\nRelevance: simulated\n")
        return SimulatedReply(f"{steps}Score: {score}")


def _retry(call: ChatRequest) -> ChatRequest:
    """The same pair asked once more, sampled with a seed of its own: a greedy call asked
    again would only repeat its reply."""
    seed = call.seed if call.seed is not None else zlib.crc32(
        f"{call.query_id}:{call.doc_ids}".encode())
    return replace(call, seed=seed + call.n,
                   temperature=call.temperature or SAMPLED_TEMPERATURE)


def _joined(first: Completion, second: Completion) -> Completion:
    """Both attempts' usage counted; the second attempt's samples kept."""
    return replace(second, prompt_tokens=first.prompt_tokens + second.prompt_tokens,
                   completion_tokens=first.completion_tokens + second.completion_tokens,
                   cached=first.cached and second.cached)
