"""`vic`: Vote-in-Context listwise fusion of several ranked lists (2025).

The candidates are the union of several runs or retrievers, in RRF order, each carrying
which lists found it at which rank (`metadata["found_by"]`); the listwise sliding window
then reorders them with that metadata in the prompt.
"""

from __future__ import annotations

from typing import Any

from rerankgraph.agents.vic import VicAgent, VicParams, check_fusable
from rerankgraph.graphs.windows import build_window_graph
from rerankgraph.spec import MethodSpec


def build_graph() -> Any:
    """A fresh compiled vic graph."""
    return build_window_graph(VicAgent(), check=check_fusable)


METHOD = MethodSpec(
    name="vic", build_graph=build_graph, params=VicParams, fuses=True,
    description="Vote-in-Context: listwise fusion of several runs, each candidate shown "
                "with the ranks its lists gave it",
    aliases=("vote_in_context",))
