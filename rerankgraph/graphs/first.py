"""`first`: FIRST's single-token listwise ranking over the same sliding windows."""

from __future__ import annotations

from typing import Any

from rerankgraph.agents.first import FirstAgent, FirstParams
from rerankgraph.graphs.windows import build_window_graph
from rerankgraph.spec import MethodSpec


def build_graph() -> Any:
    """A fresh compiled FIRST graph."""
    return build_window_graph(FirstAgent())


METHOD = MethodSpec(
    name="first", build_graph=build_graph, params=FirstParams,
    description="FIRST: windows ordered by first-token label logprobs, one token per call",
    aliases=("single_token",))
