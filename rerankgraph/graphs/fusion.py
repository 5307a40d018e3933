"""The node that can end any rerank graph: the judge's ranking fused with the first
stage (`fusion=none|interpolate|rrf|combsum`), and the per-model default weights.

A weak judge needs a small share and a strong one a large share, so the judge's weight
depends on the model: the embedded judge's was chosen on DL19, and any other model gets
GroupRank's 0.6 judge / 0.4 retriever (Sun et al., 2025). Which fusion runs when none
is asked for is the model's (the embedded judge: interpolation, for every method) or
else the method's own (`MethodSpec.default_fusion`: none for every built-in method,
since with a stronger, simulated judge fusing at 0.6 gained at most 0.007 nDCG@10 for
the scoring judges and lost 0.04-0.25 for the ranking ones; docs/benchmarks.md).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import PurePath
from typing import Any, cast

from langgraph.graph import END
from langgraph.runtime import Runtime

from rerankgraph.context import RerankContext
from rerankgraph.retrievers.fusion import FusionHow, fuse_with_first_stage
from rerankgraph.spec import FusionParams
from rerankgraph.types import Candidate, RerankResult, ScoredDoc

GENERAL_WEIGHT = 0.6


@dataclass(frozen=True)
class JudgeDefaults:
    """A model's fusion defaults: the judge's weight, and the fusion every method runs
    when none is asked for (None: each method's own default)."""

    weight: float
    fusion: FusionHow | None = None


# Chosen on the DL19 method table (docs/benchmarks.md, section methods): the largest
# swept share (0.1, 0.2, 0.3, 0.4, 0.6) at which no method fused with BM25 ends more than
# 0.01 nDCG@10 below BM25 (at 0.2 the cascade ended 0.0103 below). The embedded judge
# is below BM25 alone with every method, so every method fuses by default.
# The pulled judges' defaults were chosen on their own DL19 tables (queries 1-10) and
# checked on queries 16-25 (docs/benchmarks.md, sections fusion-defaults-MODEL). The 1.5B
# beats BM25 alone with pointwise, yet fusing still added 0.02-0.03 on both query sets,
# and its other methods end below BM25 alone: so it fuses too.
JUDGES = {"smollm2-135m-instruct": JudgeDefaults(weight=0.1, fusion="interpolate"),
          "qwen2.5-coder-0.5b": JudgeDefaults(weight=0.3, fusion="interpolate"),
          "qwen2.5-coder-1.5b": JudgeDefaults(weight=0.4, fusion="combsum")}
GENERAL = JudgeDefaults(weight=GENERAL_WEIGHT)


def judge_defaults(model_name: str) -> JudgeDefaults:
    """The fusion defaults of a model (a path or a hub id)."""
    return JUDGES.get(PurePath(model_name.rstrip("/")).name.lower(), GENERAL)


def judge_weight(model_name: str) -> float:
    """The judge's default share in a fusion, by model."""
    return judge_defaults(model_name).weight


def fusion_label(params: Any, model_name: str) -> tuple[str, float]:
    """What ran, as provenance shows it, and the judge's weight it ran with. A fusion the
    caller did not set is the model's default, else the method's."""
    defaults = judge_defaults(model_name)
    how = getattr(params, "fusion", "none")
    if "fusion" not in getattr(params, "model_fields_set", {"fusion"}) and defaults.fusion:
        how = defaults.fusion
    weight = params.fusion_weight if getattr(params, "fusion_weight", None) is not None \
        else defaults.weight
    if how == "none":
        return "none", weight
    if how == "rrf":
        return f"rrf(k={params.rrf_k}, judge weight {weight:g})", weight
    if how == "combsum":
        return f"combsum({params.fusion_norm})", weight
    return f"interpolate({params.fusion_norm}, judge weight {weight:g})", weight


def fusion_of(label: str) -> FusionHow:
    """The fusion a label names."""
    return cast(FusionHow, label.split("(")[0])


def fused_ranking(candidates: Sequence[Candidate], ranking: Sequence[ScoredDoc],
                  params: FusionParams, model_name: str) -> tuple[list[ScoredDoc], str]:
    """`ranking` fused with the candidates' first-stage order as `params` ask (else as
    the model's default), and the fusion's label. The graphs' fusion node and every bench
    that fuses saved rankings again come here."""
    label, weight = fusion_label(params, model_name)
    if label == "none" or not ranking:
        return list(ranking), label
    return fuse_with_first_stage(candidates, ranking, fusion_of(label), weight,
                                 params.fusion_norm, params.rrf_k), label


def fused_result(result: RerankResult, candidates: Sequence[Candidate], params: FusionParams,
                 model_name: str) -> RerankResult:
    """A finished result fused again from its judged ranking, with no call: its ranking
    and the fusion its provenance names."""
    ranking, label = fused_ranking(candidates, result.ranking, params, model_name)
    provenance = result.provenance
    return result.model_copy(update={
        "ranking": tuple(ranking),
        "provenance": provenance.model_copy(update={"fusion": label}) if provenance else None})


def fuse(state: dict[str, Any], runtime: Runtime[RerankContext]) -> dict[str, Any]:
    """The ranking fused with the candidates' first-stage order, and the fusion's label."""
    ranking, label = fused_ranking(state["candidates"], state.get("ranking") or [],
                                   runtime.context.params, runtime.context.engine.model_name)
    return {"ranking": ranking, "fusion": label} if label != "none" and ranking \
        else {"fusion": label}


def end_with_fusion(graph: Any, last: str) -> None:
    """Ends `graph` after node `last` with the fusion node (a pass-through for
    fusion=none). The graph's state needs the keys candidates, ranking and fusion."""
    graph.add_node("fuse", fuse)
    graph.add_edge(last, "fuse")
    graph.add_edge("fuse", END)
