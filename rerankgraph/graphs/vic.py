"""`vic`: Vote-in-Context listwise fusion of ranked lists (Eltahir et al., 2025).

The candidates are the union of one or several runs or retrievers, in RRF order, each
carrying which lists found it at which rank (`metadata["found_by"]`; candidates without
it are one list, the first stage). With the paper's round-robin pool, one call ranks
each list's top ceil(window/M) interleaved with repeats, and the rest keep their order
below; with `pool=rrf`, the listwise sliding window reorders the fused list.
"""

from __future__ import annotations

from typing import Any

from rerankgraph.agents.vic import VicAgent, VicParams, round_robin_pool, with_sightings
from rerankgraph.graphs.windows import build_window_graph, sliding_plan
from rerankgraph.spec import MethodSpec
from rerankgraph.types import Candidate


def plan_pool(candidates: list[Candidate], params: VicParams
              ) -> tuple[list[Candidate], list[str], list[tuple[int, int]]]:
    seen = with_sightings(candidates)
    if params.pool == "rrf":
        return sliding_plan(seen, params)
    pool = [c.doc_id for c in round_robin_pool(seen, params.window)]
    rest = [c.doc_id for c in seen if c.doc_id not in set(pool)]
    return seen, pool + rest, [(0, len(pool))] * params.passes if pool else []


def build_graph() -> Any:
    """A fresh compiled vic graph."""
    return build_window_graph(VicAgent(), plan_pool)


METHOD = MethodSpec(
    name="vic", build_graph=build_graph, params=VicParams, fuses=True,
    description="Vote-in-Context: listwise fusion of ranked lists, each candidate shown "
                "with the ranks its lists gave it, over the paper's round-robin pool",
    aliases=("vote_in_context",))
