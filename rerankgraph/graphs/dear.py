"""`dear`: DeAR's dual-stage reranking (Abdallah et al., 2025): a pointwise yes/no
judge over the top N, then a listwise judge that may reason before its permutation
over the top M of that order.

Default sizes: N=100, the depth DeAR's first stage reranks; M=20, one listwise window,
so the second stage costs one call per query and no passage is judged by a sliding
window that cannot see the whole head. What we changed: both stages use one model
(DeAR distils two), and the reasoning is one bounded line.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from rerankgraph.graphs.cascade import Stage, build_cascade_graph
from rerankgraph.spec import MethodSpec


class DearParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    pointwise_depth: int = Field(100, ge=1, description="N: documents the yes/no stage scores")
    listwise_depth: int = Field(20, ge=2, le=100,
                                description="M: documents the listwise stage orders (one window)")
    reasoning_tokens: int = Field(96, ge=0, le=2048,
                                  description="reasoning before the permutation (0: none)")

    @model_validator(mode="after")
    def _listwise_within_pointwise(self) -> DearParams:
        if self.listwise_depth > self.pointwise_depth:
            raise ValueError(f"listwise_depth {self.listwise_depth} is larger than "
                             f"pointwise_depth {self.pointwise_depth}")
        return self

    def stages(self) -> list[Stage]:
        return [Stage(depth=self.pointwise_depth, method="pointwise"),
                Stage(depth=self.listwise_depth, method="listwise",
                      params={"window": self.listwise_depth, "stride": self.listwise_depth,
                              "reasoning_tokens": self.reasoning_tokens})]


def build_graph(params: DearParams | None = None,
                resolve: Callable[[str], Any] | None = None) -> Any:
    """A fresh compiled dear graph: the two stages as a cascade."""
    return build_cascade_graph((params or DearParams.model_validate({})).stages(), resolve,
                               name="dear")


METHOD = MethodSpec(
    name="dear",
    build_graph=build_graph, params=DearParams, shaped_by_params=True,
    description="DeAR: pointwise yes/no over the top 100, then listwise with reasoning "
                "over the top 20")
