"""The node that can end any rerank graph: the judge's ranking fused with the first
stage (`fusion=none|interpolate|rrf|combsum`), and the per-model default weights.

A weak judge needs a small share and a strong one a large share, so the judge's weight
depends on the model: the embedded judge's was chosen on DL19, and any other model gets
GroupRank's 0.6 judge / 0.4 retriever (Sun et al., 2025).
"""

from __future__ import annotations

from pathlib import PurePath
from typing import Any

from langgraph.graph import END
from langgraph.runtime import Runtime

from rerankgraph.context import RerankContext
from rerankgraph.retrievers.fusion import fuse_with_first_stage

GENERAL_WEIGHT = 0.6
# Chosen on the DL19 method table (docs/benchmarks.md, section methods): the largest
# share at which no method fused with BM25 ends below BM25's nDCG@10.
JUDGE_WEIGHTS = {"smollm2-135m-instruct": 0.2}


def judge_weight(model_name: str) -> float:
    """The judge's default share in a fusion, by model (a path or a hub id)."""
    name = PurePath(model_name.rstrip("/")).name.lower()
    return JUDGE_WEIGHTS.get(name, GENERAL_WEIGHT)


def fusion_label(params: Any, model_name: str) -> tuple[str, float]:
    """What ran, as provenance shows it, and the judge's weight it ran with."""
    how = getattr(params, "fusion", "none")
    weight = params.fusion_weight if getattr(params, "fusion_weight", None) is not None \
        else judge_weight(model_name)
    if how == "none":
        return "none", weight
    if how == "rrf":
        return f"rrf(k={params.rrf_k}, judge weight {weight:g})", weight
    if how == "combsum":
        return f"combsum({params.fusion_norm})", weight
    return f"interpolate({params.fusion_norm}, judge weight {weight:g})", weight


def fuse(state: dict[str, Any], runtime: Runtime[RerankContext]) -> dict[str, Any]:
    """The ranking fused with the candidates' first-stage order, and the fusion's label."""
    params = runtime.context.params
    label, weight = fusion_label(params, runtime.context.engine.model_name)
    if label == "none" or not state.get("ranking"):
        return {"fusion": label}
    fused = fuse_with_first_stage(state["candidates"], state["ranking"], params.fusion,
                                  weight, params.fusion_norm, params.rrf_k)
    return {"ranking": fused, "fusion": label}


def end_with_fusion(graph: Any, last: str) -> None:
    """Ends `graph` after node `last` with the fusion node (a pass-through for
    fusion=none). The graph's state needs the keys candidates, ranking and fusion."""
    graph.add_node("fuse", fuse)
    graph.add_edge(last, "fuse")
    graph.add_edge("fuse", END)
