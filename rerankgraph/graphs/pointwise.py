"""`pointwise`: yes/no relevance per candidate, ranked by P(yes)."""

from __future__ import annotations

from typing import Any

from rerankgraph.agents.pointwise import PointwiseAgent, PointwiseParams
from rerankgraph.graphs.scoring import build_scoring_graph
from rerankgraph.spec import MethodSpec


def build_graph() -> Any:
    """A fresh compiled pointwise graph (input: query, candidates; output: ranking)."""
    return build_scoring_graph(PointwiseAgent())


METHOD = MethodSpec(
    name="pointwise", build_graph=build_graph, params=PointwiseParams,
    description="yes/no judge per document, scored by P(yes) from logprobs",
    aliases=("yes_no",))
