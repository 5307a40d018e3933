"""Fusing ranked lists of one query: reciprocal rank fusion (Cormack, Clarke
and Buettcher, SIGIR 2009), CombSUM (Fox and Shaw, TREC-2, 1994, over min-max
normalised scores), the record of which list found each document at which rank, which
Vote-in-Context shows the judge, and a judge's ranking fused with its first stage.

ranx implements both fusions but pulls numba, pandas and seaborn in; these are the
few lines we need, tested against hand-computed cases.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from rerankgraph.errors import InputError
from rerankgraph.types import Candidate, ScoredDoc

Hits = Sequence[tuple[str, float]]


def reciprocal_rank_fusion(rankings: Sequence[Sequence[str]], k: int = 60
                           ) -> list[tuple[str, float]]:
    """Fuses ranked lists of doc ids: score(d) = sum over lists of 1 / (k + rank of d),
    ranks from 1. Best first; ties go to the better single rank, then the doc id."""
    if k < 0:
        raise InputError(f"the RRF constant k must be 0 or more, got {k}")
    scores: dict[str, float] = {}
    best_rank: dict[str, int] = {}
    for ranking in rankings:
        for rank, doc_id in enumerate(ranking, start=1):
            scores[doc_id] = scores.get(doc_id, 0.0) + 1.0 / (k + rank)
            best_rank[doc_id] = min(best_rank.get(doc_id, rank), rank)
    return _ordered(scores, best_rank)


def comb_sum(runs: Sequence[Hits]) -> list[tuple[str, float]]:
    """CombSUM: each list's scores min-max normalised to [0, 1] (a list whose scores are
    all equal gives each of its documents 1), then summed per document; a document
    missing from a list gets 0 from it. Best first; ties as in RRF."""
    scores: dict[str, float] = {}
    best_rank: dict[str, int] = {}
    for hits in runs:
        if not hits:
            continue
        values = [s for _, s in hits]
        low, high = min(values), max(values)
        for rank, (doc_id, score) in enumerate(hits, start=1):
            normalised = (score - low) / (high - low) if high > low else 1.0
            scores[doc_id] = scores.get(doc_id, 0.0) + normalised
            best_rank[doc_id] = min(best_rank.get(doc_id, rank), rank)
    return _ordered(scores, best_rank)


def _ordered(scores: dict[str, float], best_rank: dict[str, int]) -> list[tuple[str, float]]:
    order = sorted(scores, key=lambda d: (-scores[d], best_rank[d], d))
    return [(d, scores[d]) for d in order]


@dataclass(frozen=True)
class Sighting:
    """One list that found a document: its name and the document's rank there (1-based)."""

    source: str
    rank: int

    def as_metadata(self) -> dict[str, object]:
        return {"source": self.source, "rank": self.rank}


def sightings(runs: Mapping[str, Hits]) -> dict[str, list[Sighting]]:
    """For every document of any list: the lists that found it, best rank first."""
    found: dict[str, list[Sighting]] = {}
    for source, hits in runs.items():
        for rank, (doc_id, _) in enumerate(hits, start=1):
            found.setdefault(doc_id, []).append(Sighting(source, rank))
    return {d: sorted(s, key=lambda x: (x.rank, x.source)) for d, s in found.items()}


FOUND_BY = "found_by"  # the Candidate.metadata key that holds a document's sightings


def fuse(runs: Mapping[str, Hits], how: str = "rrf", rrf_k: int = 60
         ) -> list[tuple[str, float]]:
    """The named lists fused by `how` ("rrf" or "combsum")."""
    if how == "rrf":
        return reciprocal_rank_fusion([[d for d, _ in hits] for hits in runs.values()], rrf_k)
    if how == "combsum":
        return comb_sum(list(runs.values()))
    raise InputError(f"fusion {how!r}: use rrf or combsum")


def fuse_with_sightings(runs: Mapping[str, Hits], how: str = "rrf", rrf_k: int = 60
                        ) -> tuple[list[tuple[str, float]], dict[str, list[dict[str, object]]]]:
    """The named lists fused, and for each document its `found_by` metadata: the lists
    that found it and its rank in each, best first."""
    return fuse(runs, how, rrf_k), found_by_metadata(runs)


def found_by_metadata(runs: Mapping[str, Hits]) -> dict[str, list[dict[str, object]]]:
    """Per document, its sightings as Candidate metadata (the value under FOUND_BY)."""
    return {d: [s.as_metadata() for s in seen] for d, seen in sightings(runs).items()}


# -- a judge's ranking fused with the first stage's ------------------------------------
FusionHow = Literal["none", "interpolate", "rrf", "combsum"]
Normalization = Literal["minmax", "zscore"]


def normalised(values: Sequence[float], how: Normalization) -> list[float]:
    """Min-max to [0, 1] (all equal: 1 each, as CombSUM does) or z-scores (all equal: 0
    each)."""
    if how == "minmax":
        low, high = min(values), max(values)
        return [(v - low) / (high - low) if high > low else 1.0 for v in values]
    mean = sum(values) / len(values)
    spread = (sum((v - mean) ** 2 for v in values) / len(values)) ** 0.5
    return [(v - mean) / spread if spread > 0 else 0.0 for v in values]


def fuse_with_first_stage(candidates: Sequence[Candidate], ranking: Sequence[ScoredDoc],
                          how: FusionHow, weight: float = 0.5,
                          normalization: Normalization = "minmax", rrf_k: int = 60
                          ) -> list[ScoredDoc]:
    """The judge's `ranking` of `candidates` fused with their first-stage order.

    - interpolate: weight * norm(judge) + (1 - weight) * norm(first stage);
    - rrf: weight / (k + judge rank) + (1 - weight) / (k + first-stage rank), where
      weight 0.5 orders as the classic, unweighted RRF;
    - combsum: norm(judge) + norm(first stage), unweighted.

    First-stage scores are `Candidate.score` when every candidate has one; otherwise the
    first-stage ranks stand in for all (rank r scores -r), since a score and a rank are
    not on one scale (so do they when a score is not finite). First-stage ranks are
    `Candidate.rank`, else the position in `candidates`. A judge score of -inf (a
    document the judge left unscored) counts as below the judge's lowest. Ties go to the
    better judge rank, then the better first-stage rank. Candidates missing from the
    judge's ranking keep their first-stage order below the fused ones."""
    if how == "none":
        return list(ranking)
    if not 0.0 <= weight <= 1.0:
        raise InputError(f"fusion weight must be between 0 and 1, got {weight}")
    by_id = {c.doc_id: c for c in candidates}
    ranked = [d for d in ranking if d.doc_id in by_id]
    if not ranked:
        return list(ranking)
    in_ranking = {d.doc_id for d in ranking}
    unranked = [c.doc_id for c in candidates if c.doc_id not in in_ranking]
    first_rank = {c.doc_id: (c.rank if c.rank is not None else i + 1)
                  for i, c in enumerate(candidates)}
    judge_rank = {d.doc_id: i + 1 for i, d in enumerate(ranked)}
    ids = [d.doc_id for d in ranked]
    if how == "rrf":
        if rrf_k < 0:
            raise InputError(f"the RRF constant k must be 0 or more, got {rrf_k}")
        fused = [weight / (rrf_k + judge_rank[d]) + (1 - weight) / (rrf_k + first_rank[d])
                 for d in ids]
    else:
        judge = normalised(_below_finite([d.score for d in ranked]), normalization)
        first = normalised(_first_stage_scores(ids, by_id, first_rank), normalization)
        fused = ([weight * j + (1 - weight) * f for j, f in zip(judge, first, strict=True)]
                 if how == "interpolate" else [j + f for j, f in zip(judge, first, strict=True)])
    order = sorted(range(len(ids)), key=lambda i: (-fused[i], judge_rank[ids[i]],
                                                   first_rank[ids[i]]))
    fused_docs = [ScoredDoc(doc_id=ids[i], score=fused[i]) for i in order]
    # Candidates the judge did not rank keep their first-stage order below, then any
    # ranked document that was no candidate.
    low = fused_docs[-1].score
    below = [ScoredDoc(doc_id=d, score=low - 1 - i) for i, d in enumerate(unranked)]
    return fused_docs + below + [d for d in ranking if d.doc_id not in by_id]


def _below_finite(values: Sequence[float]) -> list[float]:
    """Non-finite values (a -inf for a document left unscored) placed strictly below the
    lowest finite one; all non-finite: all equal."""
    finite = [v for v in values if math.isfinite(v)]
    if not finite:
        return [0.0] * len(values)
    low, high = min(finite), max(finite)
    floor = low - (high - low if high > low else 1.0)
    return [v if math.isfinite(v) else (high + (high - low or 1.0) if v > 0 else floor)
            for v in values]


def _first_stage_scores(ids: Sequence[str], by_id: Mapping[str, Candidate],
                        first_rank: Mapping[str, int]) -> list[float]:
    scores = [by_id[d].score for d in ids]
    if any(s is None or not math.isfinite(s) for s in scores):
        return [-float(first_rank[d]) for d in ids]
    return [float(s) for s in scores if s is not None]
