"""`listwise`: RankGPT's sliding window, with permutation replies."""

from __future__ import annotations

from typing import Any

from rerankgraph.agents.listwise import ListwiseAgent, ListwiseParams
from rerankgraph.graphs.windows import build_window_graph
from rerankgraph.spec import MethodSpec


def build_graph() -> Any:
    """A fresh compiled listwise graph."""
    return build_window_graph(ListwiseAgent())


METHOD = MethodSpec(
    name="listwise", build_graph=build_graph, params=ListwiseParams,
    description="RankGPT sliding window (20/10), permutation reply per window",
    aliases=("rankgpt", "sliding_window"))
