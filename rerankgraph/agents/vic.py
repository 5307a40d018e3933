"""Vote-in-Context judge (Eltahir et al., 2025): a listwise call over the candidates of
one or several ranked lists, each shown with which lists found it and at which rank,
so the judge can weigh the lists' votes with the text. The window, the permutation
reply and its repairs are the listwise judge's; only the prompt and the pool differ.

The paper's pool takes each of the M lists' top ceil(K/M) and interleaves them
round-robin, keeping repeats, so how often and how early a document comes back carries
the lists' consensus; one call ranks the K slots and a document counts at its first
place. The RRF pool (the fused list in sliding windows) is kept as an option.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

from pydantic import Field

from rerankgraph.agents.listwise import ListwiseAgent, ListwiseParams
from rerankgraph.retrievers.fusion import FOUND_BY
from rerankgraph.types import Candidate

ONE_LIST = "first stage"  # the source named when candidates carry no sightings


class VicParams(ListwiseParams):
    """The listwise window (20, stride 10), over candidates that carry their sightings."""

    pool: Literal["round-robin", "rrf"] = Field(
        "round-robin", description="round-robin: the paper's pool, each list's top "
                                   "ceil(window/M) interleaved with repeats, ranked in one "
                                   "call; rrf: the fused order in sliding windows")


def sources_of(candidate: Candidate) -> list[dict[str, object]]:
    """The candidate's sightings ({"source", "rank"}), as the fusion step recorded them."""
    found = candidate.metadata.get(FOUND_BY, [])
    return [s for s in found if isinstance(s, dict) and "source" in s and "rank" in s]


def with_sightings(candidates: Sequence[Candidate]) -> list[Candidate]:
    """The candidates; when none carries sightings, they are one list (the first
    stage's), each seen at its own rank."""
    if any(sources_of(c) for c in candidates):
        return list(candidates)
    return [c.model_copy(update={"metadata": {**c.metadata, FOUND_BY: [
        {"source": ONE_LIST, "rank": c.rank or i + 1}]}}) for i, c in enumerate(candidates)]


def describe_sources(candidate: Candidate, lists: int) -> str:
    """"bm25 #3, dense #12 (2 of 2 lists)", or that no list's top ranks hold it."""
    found = sources_of(candidate)
    if not found:
        return f"found by none of the {lists} lists"
    shown = ", ".join(f"{s['source']} #{s['rank']}" for s in found)
    return f"{shown} ({len(found)} of {lists} list{'' if lists == 1 else 's'})"


def source_names(candidates: Sequence[Candidate]) -> list[str]:
    return sorted({str(s["source"]) for c in candidates for s in sources_of(c)})


def round_robin_pool(candidates: Sequence[Candidate], size: int) -> list[Candidate]:
    """ViC's pool: rank r of every list in turn (lists by name), r = 1 .. ceil(size/M),
    cut to `size` slots; a document found by several lists fills several slots."""
    lists: dict[str, list[tuple[int, Candidate]]] = {}
    for candidate in candidates:
        for seen in sources_of(candidate):
            lists.setdefault(str(seen["source"]), []).append((int(str(seen["rank"])), candidate))
    ordered = [[c for _, c in sorted(lists[name], key=lambda x: x[0])] for name in sorted(lists)]
    depth = math.ceil(size / max(len(ordered), 1))
    pool = [hits[r] for r in range(depth) for hits in ordered if r < len(hits)]
    return pool[:size]


class VicAgent(ListwiseAgent):
    """Ranks one window of fused candidates, shown with their lists' ranks."""

    name = "vic"
    template = "vic.j2"

    def window_values(self, window: Sequence[Candidate], candidates: Sequence[Candidate]
                      ) -> dict[str, object]:
        # The lists fused for the query, not only those seen in this window.
        lists = len(source_names(candidates)) or 1
        return {"sources": [describe_sources(c, lists) for c in window]}
