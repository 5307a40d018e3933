"""`rubric`: a 0-100 score per candidate over five bands (after Retro*)."""

from __future__ import annotations

from typing import Any

from rerankgraph.agents.rubric import RubricAgent, RubricParams
from rerankgraph.graphs.scoring import build_scoring_graph
from rerankgraph.spec import MethodSpec


def build_graph() -> Any:
    """A fresh compiled rubric graph (input: query, candidates; output: ranking)."""
    return build_scoring_graph(RubricAgent())


METHOD = MethodSpec(
    name="rubric", build_graph=build_graph, params=RubricParams,
    description="0-100 rubric score with short reasoning, read from a JSON reply (Retro*)",
    aliases=("retro",))
