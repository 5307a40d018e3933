"""The records every method shares: queries, candidates, judgments and results.

All are frozen pydantic v2 models, so they validate at the door and serialize to JSON.
"""

from __future__ import annotations

from collections import Counter
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator


class _Record(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


def _clean_text(value: str, field: str) -> str:
    # A NUL byte breaks tokenizers and C-level writers downstream; drop it here, once.
    return value.replace("\x00", "") if "\x00" in value else value


class Query(_Record):
    """A search query. `id` defaults to "q0" for one-off SDK calls."""

    id: str = "q0"
    text: str

    @field_validator("text")
    @classmethod
    def _text_not_blank(cls, value: str) -> str:
        value = _clean_text(value, "text")
        if not value.strip():
            raise ValueError("query text is empty or only whitespace; give the query words")
        return value

    @field_validator("id")
    @classmethod
    def _id_not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("query id is empty")
        return value


class Candidate(_Record):
    """A document to rerank, with what the first stage said about it."""

    doc_id: str
    text: str
    title: str | None = None
    score: float | None = Field(default=None, description="first-stage score")
    rank: int | None = Field(default=None, description="first-stage rank, 1-based")
    metadata: dict[str, Any] = Field(default_factory=dict)

    @field_validator("doc_id")
    @classmethod
    def _id_not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("candidate doc_id is empty")
        return value

    @field_validator("text", "title")
    @classmethod
    def _no_nul(cls, value: str | None) -> str | None:
        return None if value is None else _clean_text(value, "text")

    @property
    def full_text(self) -> str:
        return f"{self.title}\n{self.text}" if self.title else self.text


class RerankRequest(_Record):
    """One query with its candidates, checked for emptiness and duplicate ids."""

    query: Query
    candidates: tuple[Candidate, ...]
    candidates_from: str = "given"  # given, run:FILE or retriever:NAME

    @model_validator(mode="after")
    def _check_candidates(self) -> RerankRequest:
        if not self.candidates:
            raise ValueError(f"query {self.query.id!r} has no candidates to rerank")
        counts = Counter(c.doc_id for c in self.candidates)
        dupes = [doc_id for doc_id, n in counts.items() if n > 1]
        if dupes:
            raise ValueError(f"query {self.query.id!r} has duplicate candidate ids "
                             f"{sorted(dupes)[:5]}; each doc_id may appear once")
        return self


class SearchRequest(_Record):
    """One query for a search method, or for a rerank method that retrieves its own
    candidates: `k` documents come back."""

    query: Query
    k: int = Field(100, ge=1)


class ParseStatus(StrEnum):
    """How a reply was read. Everything but `ok` is counted in the result."""

    OK = "ok"
    REPAIRED = "repaired"  # readable after a fix (dropped duplicates, cut prose, ...)
    FALLBACK = "fallback"  # unreadable; a documented default stood in


class Judgment(_Record):
    """One LLM call: what was asked about which docs, what came back, how it was read."""

    agent: str
    doc_ids: tuple[str, ...]
    raw_reply: str
    parsed: Any = None
    status: ParseStatus = ParseStatus.OK
    note: str = ""
    prompt_tokens: int = 0
    completion_tokens: int = 0
    truncated_docs: int = 0
    cached: bool = False  # replayed from the job's reply cache
    calls: int = 1  # engine calls behind this judgment (2 when asked once more)
    # Sampled judges (rubric with K samples): each readable sample's score, and how many
    # samples could not be read and were left out.
    sample_scores: tuple[float, ...] = ()
    dropped_samples: int = 0


class ScoredDoc(_Record):
    doc_id: str
    score: float


class Provenance(_Record):
    """Where a ranking came from and what it cost."""

    method: str
    model: str
    llm_calls: int
    prompt_tokens: int
    completion_tokens: int
    wall_time_s: float
    repaired: int = Field(description="replies read after a repair")
    fallbacks: int = Field(description="replies replaced by a documented default")
    truncated_docs: int = Field(description="documents cut to the token budget")
    truncated_query: bool = Field(False, description="the query was cut to its token budget "
                                                     "(max_query_tokens)")
    cached_calls: int = Field(0, description="calls replayed from the job's reply cache")
    dropped_samples: int = Field(0, description="sampled replies left out of a mean as "
                                                "unreadable")
    fusion: str = Field("none", description="how the judge's ranking was fused with the "
                                            "first stage, with its weight or constant")
    unchanged: int = Field(
        0, description="windows, sets, pairs or groups the model left in the order shown "
                       "(an identity permutation, the first of a set picked or of a pair "
                       "preferred, scores that never rise down a group): many of them mean "
                       "the judge changed little")
    unscored_docs: tuple[str, ...] = Field(
        (), description="documents no readable reply scored; they keep their first-stage "
                        "place")
    simulated: bool = False
    flagged_docs: tuple[str, ...] = Field(
        (), description="documents whose text reads like an instruction to the judge "
                        "(a flag for the user; scores are not changed)")
    candidates_from: str = Field(
        "given", description="where the ranked documents came from: given, run:FILE, "
                             "retriever:NAME or method:NAME")
    trace: tuple[dict[str, Any], ...] = Field(
        (), description="a search method's steps, e.g. LATTICE's nodes expanded per "
                        "iteration with their calls and tokens")
    judgments: tuple[Judgment, ...] = ()


class RerankResult(_Record):
    """A ranking of every input candidate, best first, or the error that stopped it."""

    query_id: str
    ranking: tuple[ScoredDoc, ...] = ()
    provenance: Provenance | None = None
    error: str | None = None
    error_kind: str | None = None  # "engine", "strict" or "input" when error is set

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def doc_ids(self) -> list[str]:
        return [d.doc_id for d in self.ranking]
