"""Vote-in-Context judge (2025): a listwise window over the fused candidates of several
retrievers, each shown with which lists found it and at which rank, so the judge can
weigh the retrievers' votes with the text. The window, the permutation reply and its
repairs are the listwise judge's; only the prompt differs.
"""

from __future__ import annotations

from collections.abc import Sequence

from rerankgraph.agents.listwise import ListwiseAgent, ListwiseParams
from rerankgraph.errors import InputError
from rerankgraph.retrievers.fusion import FOUND_BY
from rerankgraph.types import Candidate


class VicParams(ListwiseParams):
    """The listwise window (20, stride 10), over candidates that carry their sightings."""


def sources_of(candidate: Candidate) -> list[dict[str, object]]:
    """The candidate's sightings ({"source", "rank"}), as the fusion step recorded them."""
    found = candidate.metadata.get(FOUND_BY, [])
    return [s for s in found if isinstance(s, dict) and "source" in s and "rank" in s]


def describe_sources(candidate: Candidate, lists: int) -> str:
    """"bm25 #3, dense #12 (2 of 2 lists)", or that no list's top ranks hold it."""
    found = sources_of(candidate)
    if not found:
        return f"found by none of the {lists} lists"
    shown = ", ".join(f"{s['source']} #{s['rank']}" for s in found)
    return f"{shown} ({len(found)} of {lists} lists)"


def source_names(candidates: Sequence[Candidate]) -> list[str]:
    return sorted({str(s["source"]) for c in candidates for s in sources_of(c)})


def check_fusable(candidates: Sequence[Candidate]) -> None:
    """Raises InputError unless the candidates come from two or more lists."""
    names = source_names(candidates)
    if len(names) < 2:
        raise InputError(
            f"method 'vic' fuses several ranked lists, but these candidates come from "
            f"{len(names) or 'no'} list{'' if len(names) == 1 else 's'} "
            f"({', '.join(names) or 'no metadata.found_by'}): give two or more --run files, "
            "--retriever bm25,dense with --index, or candidates whose "
            f"metadata[{FOUND_BY!r}] lists their sources")


class VicAgent(ListwiseAgent):
    """Ranks one window of fused candidates, shown with their retrievers' ranks."""

    name = "vic"
    template = "vic.j2"

    def window_values(self, window: Sequence[Candidate]) -> dict[str, object]:
        lists = len(source_names(window)) or 1
        return {"sources": [describe_sources(c, lists) for c in window]}
