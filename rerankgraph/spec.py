"""What a method is: a graph factory, its parameter model and its kind.

Graph modules declare a `METHOD = MethodSpec(...)`; the registry collects them, so
graphs never import the registry that sits above them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model, model_validator

from rerankgraph.errors import InputError
from rerankgraph.retrievers.fusion import FusionHow, Normalization

# rerank: reorders the candidates it is given. search: reaches the corpus through the
# retriever or index in its context; candidates are optional.
MethodKind = Literal["rerank", "search"]


class FusionParams(BaseModel):
    """What every rerank method takes besides its own parameters: how its ranking is
    fused with the first stage at the end of its graph (graphs/fusion.py)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    fusion: FusionHow = Field("none", description="fuse the ranking with the first stage: "
                                                  "none, interpolate, rrf or combsum")
    fusion_weight: float | None = Field(
        None, ge=0, le=1, description="the judge's share for interpolate and rrf (default: "
                                      "per model, graphs/fusion.py)")
    fusion_norm: Normalization = Field("minmax", description="score normalisation for "
                                                             "interpolate and combsum")
    rrf_k: int = Field(60, ge=0, description="the RRF constant")

    @model_validator(mode="after")
    def _combsum_has_no_weight(self) -> FusionParams:
        if self.fusion == "combsum" and self.fusion_weight is not None:
            raise ValueError("fusion=combsum sums the two lists unweighted; use "
                             "fusion=interpolate for a weight")
        return self


@dataclass(frozen=True)
class MethodSpec:
    """A registered method: a graph factory, its parameter model and its kind."""

    name: str
    build_graph: Callable[..., Any]
    params: type[BaseModel]
    description: str
    aliases: tuple[str, ...] = field(default=())
    kind: MethodKind = "rerank"
    uses_engine: bool = True  # False: no LLM call, so no model is loaded for it
    reranks: bool = False  # a search method that also reranks candidates it is given
    fuses: bool = False  # a rerank method over several runs' fused candidates (vic)
    # A rerank method's fusion with the first stage when neither the caller nor the
    # model's defaults (graphs/fusion.py) ask for one.
    default_fusion: FusionHow = "none"
    # True when the graph's shape depends on the parameters (a cascade's stages): then
    # build_graph(params, resolve) is called with them and the registry's lookup.
    shaped_by_params: bool = False

    def __post_init__(self) -> None:
        if self.kind == "rerank" and not issubclass(self.params, FusionParams):
            # Every rerank method takes the fusion parameters, with its own default.
            object.__setattr__(self, "params", create_model(
                self.params.__name__,
                __base__=(FusionParams, self.params) if self.params is not BaseModel
                else FusionParams,
                __module__=self.params.__module__,
                fusion=(FusionHow, Field(self.default_fusion,
                                         description=FusionParams.model_fields[
                                             "fusion"].description))))

    def graph(self, params: Mapping[str, object] | BaseModel | None = None,
              resolve: Callable[[str], MethodSpec] | None = None) -> Any:
        """A fresh compiled graph of this method, built for `params` when its shape
        depends on them (`resolve` finds the methods it embeds)."""
        if self.shaped_by_params:
            return self.build_graph(self.make_params(params), resolve)
        return self.build_graph()

    def make_params(self, values: Mapping[str, object] | BaseModel | None) -> BaseModel:
        """Validates user parameters; unknown names and bad values raise InputError."""
        if isinstance(values, self.params):
            return values
        if isinstance(values, BaseModel):  # the method's own parameter model
            values = values.model_dump(exclude_unset=True)
        try:
            return self.params.model_validate(dict(values or {}))
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            if not where:  # a rule across parameters: its message names them
                message = str(first["msg"]).removeprefix("Value error, ")
                raise InputError(f"method {self.name!r}: {message}") from None
            known = ", ".join(self.params.model_fields)
            raise InputError(f"method {self.name!r} parameter {where!r}: {first['msg']} "
                             f"(known parameters: {known})") from None
