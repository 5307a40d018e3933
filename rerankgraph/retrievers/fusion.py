"""Fusing several ranked lists of one query: reciprocal rank fusion (Cormack, Clarke
and Buettcher, SIGIR 2009), CombSUM (Fox and Shaw, TREC-2, 1994, over min-max
normalised scores), and the record of which list found each document at which rank,
which Vote-in-Context shows the judge.

ranx implements both fusions but pulls numba, pandas and seaborn in; these are the
few lines we need, tested against hand-computed cases.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from rerankgraph.errors import InputError

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
