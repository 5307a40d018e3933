"""Groupwise judge (GroupRank): one call scores every passage of a group 0-10 against
the others, through a JSON reply keyed by the group's ids (structured outputs).

Unlike the GroupRank code, a group whose reply cannot be read is retried once with a
new seed and, if it still fails, left out of the mean and counted; it is never zeroed.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence

from pydantic import BaseModel, ConfigDict, Field

from rerankgraph.agents.base import (
    Agent,
    Oracle,
    SimulatedReply,
    clamp01,
    fit_candidates,
    judgment,
    render,
)
from rerankgraph.agents.parsing import first_json_object, strip_reasoning
from rerankgraph.serving.base import ChatRequest, Engine
from rerankgraph.types import Candidate, Judgment, ParseStatus, Query

MAX_SCORE = 10


class GroupwiseParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    group_size: int = Field(20, ge=2, le=50, description="passages per call")
    interval: int = Field(20, ge=1, description="step between group starts in a round")
    rounds: int = Field(6, ge=1, le=50, description="seeded shuffles of the candidates")
    max_doc_tokens: int = Field(120, ge=8, description="passage token budget")
    interpolate: bool = Field(False, description="mix in the first-stage score")
    llm_weight: float = Field(0.6, ge=0, le=1, description="LLM share when interpolating")
    retry_temperature: float = Field(0.7, ge=0, description="temperature of the one retry")


def group_reply_regex(size: int) -> str:
    """Compact JSON with every id of the group once, each scored 0-10. A regex rather
    than a JSON schema, so no tokens go to whitespace (about 3x fewer reply tokens)."""
    entries = ", ".join(f'"{i}": (10|[0-9])' for i in range(1, size + 1))
    return r"\{" + entries + r"\}"


def read_group_scores(text: str, size: int) -> tuple[dict[int, float], ParseStatus, str]:
    """Scores per 0-based position, scaled to [0, 1]. Missing ids, clamped values and
    text around the JSON are repairs; no readable score at all is a FALLBACK."""
    body = strip_reasoning(text)
    found: dict[str, object] = {}
    notes = []
    try:
        loaded = json.loads(body)
        found = loaded if isinstance(loaded, dict) else {}
    except json.JSONDecodeError:
        candidate = first_json_object(body)
        try:
            loaded = json.loads(candidate) if candidate else {}
            found = loaded if isinstance(loaded, dict) else {}
            notes.append("cut text around the JSON")
        except json.JSONDecodeError:
            found = {}
        if not found:
            found = dict(re.findall(r'"?\[?(\d+)\]?"?\s*:\s*(-?\d+(?:\.\d+)?)', body))
            if found:
                notes.append("read id: score pairs from broken JSON")
    scores: dict[int, float] = {}
    clamped = 0
    for key, value in found.items():
        label = str(key).strip().strip("[]")
        if not label.isdigit() or not 1 <= int(label) <= size:
            continue
        try:
            number = float(value)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            continue
        if not 0 <= number <= MAX_SCORE:
            clamped += 1
            number = min(max(number, 0.0), float(MAX_SCORE))
        scores[int(label) - 1] = number / MAX_SCORE
    if not scores:
        return {}, ParseStatus.FALLBACK, f"no scores in reply {text[:40]!r}"
    if clamped:
        notes.append(f"clamped {clamped} scores to 0-{MAX_SCORE}")
    if len(scores) < size:
        notes.append(f"{size - len(scores)} ids missing; left out of their means")
    return scores, ParseStatus.REPAIRED if notes else ParseStatus.OK, "; ".join(notes)


class GroupwiseAgent(Agent):
    """Scores one group; `parsed` maps doc id -> score in [0, 1] (only ids read)."""

    name = "groupwise"
    template = "groupwise.j2"

    async def judge_group(self, engine: Engine, query: Query, group: Sequence[Candidate],
                          params: GroupwiseParams, seed: int) -> list[Judgment]:
        """One judgment, or two when the first reply was unreadable and retried."""
        docs = await fit_candidates(engine, group, params.max_doc_tokens)
        prompt = render(self.template, query=query.text, passages=[d.text for d in docs])
        ask = {"max_tokens": 8 * len(docs) + 8, "regex": group_reply_regex(len(docs))}
        judgments = []
        for attempt in range(2):
            sampling = ({"temperature": 0.0} if attempt == 0 else
                        {"temperature": params.retry_temperature, "seed": seed + 1})
            call = self.ask(prompt, **ask, **sampling)
            [completion] = await engine.chat([call])
            scores, status, note = read_group_scores(completion.text, len(docs))
            parsed = {docs[i].candidate.doc_id: s for i, s in scores.items()}
            if status == ParseStatus.FALLBACK and attempt == 0:
                note += "; retried with a new seed"
            judgments.append(judgment(self.name, call, docs, completion, parsed, status, note))
            if status != ParseStatus.FALLBACK:
                break
        return judgments

    def simulate(self, request: ChatRequest, oracle: Oracle) -> SimulatedReply:
        """Each passage's relevance as a 0-10 score, keyed by its id."""
        return SimulatedReply(json.dumps({str(i + 1): round(MAX_SCORE * clamp01(s))
                                          for i, s in enumerate(oracle.relevance)}))
