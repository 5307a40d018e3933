"""`grade`: a 0-3 relevance grade per candidate (UMBRELA-style), ranked by grade; what
`rerankgraph assess` labels pools with."""

from __future__ import annotations

from typing import Any

from rerankgraph.agents.grade import GradeAgent, GradeParams
from rerankgraph.graphs.scoring import build_scoring_graph
from rerankgraph.spec import MethodSpec


def build_graph() -> Any:
    """A fresh compiled grade graph (input: query, candidates; output: ranking)."""
    return build_scoring_graph(GradeAgent())


METHOD = MethodSpec(
    name="grade", build_graph=build_graph, params=GradeParams,
    description="0-3 relevance grade per document (UMBRELA-style scale), the digit "
                "constrained, or after three analysis lines with reasoning_tokens > 0",
    aliases=("umbrela",))
