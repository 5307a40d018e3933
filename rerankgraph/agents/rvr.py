"""The three judges of the retrieve-verify-refine loop (after WISER, 2025): one writes
query variants, one scores each path's top candidates 0-100 (the verifier), one
reflects on what the uncertain paths miss and writes a new query for each.

Each reply is compact JSON whose shape a regex constrains (as the rubric judge's is),
read back by a pydantic model. What cannot be read falls back and is counted: an
unreadable expansion leaves the original query alone, an unread verifier score leaves
its document unscored (counted as 0 in a path's confidence), an unreadable reflection
ends the loop.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from rerankgraph.agents.base import (
    Agent,
    Oracle,
    SimulatedReply,
    clamp01,
    fit_candidates,
    judgment,
    render,
)
from rerankgraph.agents.parsing import id_scores_regex, read_id_scores, read_json
from rerankgraph.serving.base import ChatRequest, Engine
from rerankgraph.types import Candidate, Judgment, ParseStatus, Query

QUERY_CHARS = 100
PASSAGE_CHARS = 320
MAX_SCORE = 100
VERIFY_CHUNK = 20  # passages per verifier call
REFLECTION_CHARS = 160
FUSIONS = ("weighted", "rrf", "vic")
RETRIEVERS = ("bm25", "dense")


class RvrParams(BaseModel):
    """The loop's settings. Two written variants, bm25 and dense, at most 3 rounds (the
    issue that specified the method); WISER's verifier threshold, 0.7, as 70."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    k: int = Field(100, ge=1, description="documents to return per query")
    variants: int = Field(2, ge=0, le=6, description="query variants the LLM writes per "
                          "round (first a keyword rewrite, then an answer passage, then "
                          "more keyword rewrites); 0: the original query only")
    retrievers: tuple[str, ...] = Field(RETRIEVERS, min_length=1,
                                        description="index retrievers every variant goes "
                                                    "through (bm25, dense)")
    depth: int = Field(100, ge=1, description="documents each retriever returns per variant")
    fusion: str = Field("weighted", description="weighted: RRF with each path weighted by "
                                                "its confidence (WISER); rrf: plain RRF; "
                                                "vic: one listwise LLM call over the lists' "
                                                "round-robin pool of fuse_depth")
    rrf_k: int = Field(60, ge=0, description="the RRF constant k")
    fuse_depth: int = Field(20, ge=2, le=100, description="vic: the pool's slots")
    verify_depth: int = Field(5, ge=1, le=20, description="top documents of each path the "
                                                          "verifier scores")
    threshold: float = Field(70.0, description="a path's confidence (its best verifier "
                                               "score, 0-100) at which it is not refined")
    relevant_score: float = Field(50.0, ge=0, le=100,
                                  description="verifier score (0-100) at which a document "
                                              "leads the final ranking")
    rounds: int = Field(3, description="most retrieve-verify rounds")
    min_rounds: int = Field(1, ge=1, description="rounds taken even when confident")
    max_doc_tokens: int = Field(96, ge=8, description="passage token budget in prompts")
    rerank_method: str | None = Field(None, description="rerank the final top rerank_depth "
                                                        "with this registered method")
    rerank_depth: int = Field(20, ge=1, description="documents the final rerank sees")

    @field_validator("retrievers", mode="before")
    @classmethod
    def _comma_list(cls, value: object) -> object:
        # --param retrievers=bm25 or retrievers=bm25,dense from the command line
        return tuple(v.strip() for v in value.split(",") if v.strip()) if isinstance(
            value, str) else value

    @model_validator(mode="after")
    def _consistent(self) -> RvrParams:
        if self.rounds < 1:
            raise ValueError(f"rounds must be 1 or more, got {self.rounds}")
        if not 0 <= self.threshold <= 100:
            raise ValueError(f"threshold is a confidence from 0 to 100, got {self.threshold}")
        if self.fusion not in FUSIONS:
            raise ValueError(f"fusion {self.fusion!r}: use weighted, rrf or vic")
        unknown = [r for r in self.retrievers if r not in RETRIEVERS]
        if unknown:
            raise ValueError(f"retrievers {unknown}: use bm25 and/or dense")
        if self.min_rounds > self.rounds:
            raise ValueError(f"min_rounds {self.min_rounds} is more than rounds {self.rounds}")
        return self


# -- reply shapes ----------------------------------------------------------------------
def _string(max_chars: int, min_chars: int = 1) -> str:
    return rf'"[^"\\\n]{{{min_chars},{max_chars}}}"'


def _exactly(item: str, count: int) -> str:
    return r"\[" + item + (rf"(, {item}){{{count - 1}}}" if count > 1 else "") + r"\]"


def expansion_shape(variants: int) -> tuple[int, bool]:
    """(keyword rewrites, whether an answer passage is written) for `variants`."""
    return variants - (variants >= 2), variants >= 2


class ExpansionReply(BaseModel):
    keywords: list[str] = Field(default_factory=list)
    passage: str | None = None  # asked for only with two variants or more


class ReflectionReply(BaseModel):
    reflection: str = Field(max_length=REFLECTION_CHARS)
    queries: list[str] = Field(min_length=1)


def _clean(texts: Sequence[str], status: ParseStatus, note: str
           ) -> tuple[list[str], ParseStatus, str]:
    """The variants with spacing normalised; empty ones are dropped and counted as a
    repair."""
    kept = [" ".join(t.split()) for t in texts if t.strip()]
    if len(kept) < len(texts):
        status = max(status, ParseStatus.REPAIRED, key=_SEVERITY.index)
        note = "; ".join(filter(None, [note, f"dropped {len(texts) - len(kept)} empty "
                                             "variant(s)"]))
    return kept, status, note


# -- the agents --------------------------------------------------------------------------
class ExpandAgent(Agent):
    """Writes the first round's variants; `parsed` is a list of {"label", "text"}, the
    label saying what each is ("keywords 1", "answer")."""

    name = "rvr_expand"
    template = "rvr_expand.j2"
    reads_passages = False

    def request(self, query: Query, variants: int) -> ChatRequest:
        keywords, passage = expansion_shape(variants)
        regex = r'\{"keywords": ' + _exactly(_string(QUERY_CHARS), keywords)
        regex += (r', "passage": ' + _string(PASSAGE_CHARS)) if passage else ""
        regex += r"\}"
        budget = keywords * (QUERY_CHARS // 2 + 4) + (PASSAGE_CHARS // 2 if passage else 0) + 16
        return self.ask(render(self.template, query=query.text, keywords=keywords,
                               passage=passage), query, max_tokens=budget, regex=regex)

    async def expand(self, engine: Engine, query: Query, variants: int) -> Judgment:
        call = self.request(query, variants)
        [completion] = await engine.chat([call])
        reply, status, note = read_json(completion.text, ExpansionReply)
        written: list[dict[str, str]] = []
        if reply is None:
            note = f"{note}; searched with the original query only"
        else:
            # Labelled before empty ones are dropped, so a label names what was asked for.
            labelled = [(f"keywords {i + 1}", t) for i, t in enumerate(reply.keywords)]
            labelled += [] if reply.passage is None else [("answer", reply.passage)]
            texts, status, note = _clean([t for _, t in labelled], status, note)
            kept = [label for label, t in labelled if t.strip()]
            written = [{"label": label, "text": text}
                       for label, text in zip(kept, texts, strict=True)]
        return judgment(self.name, call, [], completion, written, status, note)

    def simulate(self, request: ChatRequest, oracle: Oracle) -> SimulatedReply:
        """The query's longer words as keywords, and the query itself as the passage."""
        query = _prompt_query(request)
        keywords, passage = _asked_for(request, "keyword"), '"passage"' in (request.regex or "")
        words = " ".join(w for w in query.split() if len(w) > 3) or query
        reply: dict[str, object] = {"keywords": [words[:QUERY_CHARS]] * keywords}
        if passage:
            reply["passage"] = query[:PASSAGE_CHARS]
        return SimulatedReply(json.dumps(reply))


class VerifyAgent(Agent):
    """Scores candidates 0-100, as WISER's verifier scores every top candidate of a
    path; a path's confidence is its best score. Up to VERIFY_CHUNK passages per call,
    the calls in one batch. `parsed` maps doc id -> score in [0, 1] (only those read)."""

    name = "rvr_verify"
    template = "rvr_verify.j2"

    async def verify(self, engine: Engine, query: Query, docs: Sequence[Candidate],
                     max_doc_tokens: int) -> list[Judgment]:
        shown = await fit_candidates(engine, docs, max_doc_tokens)
        chunks = [shown[i:i + VERIFY_CHUNK] for i in range(0, len(shown), VERIFY_CHUNK)]
        calls = [self.ask(render(self.template, query=query.text,
                                 passages=[d.text for d in chunk]), query, chunk,
                          max_tokens=9 * len(chunk) + 8,
                          regex=id_scores_regex(len(chunk), MAX_SCORE))
                 for chunk in chunks]
        completions = await engine.chat(calls)
        judgments = []
        for chunk, call, completion in zip(chunks, calls, completions, strict=True):
            scores, status, note = read_id_scores(completion.text, len(chunk), MAX_SCORE)
            parsed = {chunk[i].candidate.doc_id: s for i, s in scores.items()}
            judgments.append(judgment(self.name, call, chunk, completion, parsed, status,
                                      note))
        return judgments

    def simulate(self, request: ChatRequest, oracle: Oracle) -> SimulatedReply:
        """Each passage's relevance as a 0-100 score, keyed by its id."""
        return SimulatedReply(json.dumps({str(i + 1): round(MAX_SCORE * clamp01(s))
                                          for i, s in enumerate(oracle.relevance)},
                                         separators=(", ", ": ")))


class RefineAgent(Agent):
    """Reflects on what is missing and writes new variants; `parsed` is the list of
    variant texts (empty when unreadable)."""

    name = "rvr_refine"
    template = "rvr_refine.j2"

    async def refine(self, engine: Engine, query: Query, tried: Sequence[str],
                     best: Sequence[Candidate], variants: int, max_doc_tokens: int
                     ) -> Judgment:
        shown = await fit_candidates(engine, best, max_doc_tokens)
        regex = (r'\{"reflection": ' + _string(REFLECTION_CHARS) + r', "queries": '
                 + _exactly(_string(QUERY_CHARS), variants) + r"\}")
        call = self.ask(render(self.template, query=query.text, tried=list(tried),
                               passages=[d.text for d in shown],
                               count=variants), query, shown,
                        max_tokens=REFLECTION_CHARS // 2 + variants * (QUERY_CHARS // 2 + 4) + 16,
                        regex=regex)
        [completion] = await engine.chat([call])
        reply, status, note = read_json(completion.text, ReflectionReply)
        written: list[str] = []
        if reply is not None:
            written, status, note = _clean(reply.queries, status, note)
        return judgment(self.name, call, shown, completion,
                        {"reflection": reply.reflection if reply else "", "queries": written},
                        status, note)

    def simulate(self, request: ChatRequest, oracle: Oracle) -> SimulatedReply:
        """Relevance feedback with the qrels: the i-th variant is the query plus the
        opening words of the i-th most relevant passage shown."""
        query = _prompt_query(request)
        texts = re.findall(r"<passage[^>]*>\s*\[\d+\] (.*?)\s*</passage>",
                           request.prompt, re.DOTALL)
        order = sorted(range(len(texts)), key=lambda i: -oracle.relevance[i])
        queries = []
        for i in range(_asked_for(request, "new")):
            words = texts[order[i % len(order)]].split()[:10] if order else []
            queries.append(" ".join([query, *words])[:QUERY_CHARS].replace('"', ""))
        return SimulatedReply(json.dumps({"reflection": "simulated relevance feedback",
                                          "queries": queries}))


_SEVERITY = [ParseStatus.OK, ParseStatus.REPAIRED, ParseStatus.FALLBACK]
_PROMPT_QUERY = re.compile(r"^Search query: (.*)$", re.MULTILINE)


def _prompt_query(request: ChatRequest) -> str:
    found = _PROMPT_QUERY.search(request.prompt)
    return (found.group(1) if found else "").replace('"', "").replace("\\", "")


def _asked_for(request: ChatRequest, kind: str) -> int:
    """How many queries of `kind` ("keyword", "new") the prompt asks for."""
    found = re.search(rf"write (\d+) {kind} search quer", request.prompt)
    return int(found.group(1)) if found else 1
