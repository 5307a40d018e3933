"""`cascade`: rerank methods run one after another on shrinking heads of the list, as
one graph, as Retro* does (the top-100 with one sample, then the top-30 with more).

START -> stage_1_<method> -> stage_2_<method> -> ... -> fuse -> END

Each stage node runs its registered method's compiled graph as a subgraph over the top
N of the current order; the rest keep their order below. A stage's candidates carry the
earlier stages' scores in `metadata["stage_scores"]`, and every stage leaves a trace
step with its own calls, tokens, repairs and time.
"""

from __future__ import annotations

import json
import operator
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Annotated, Any, TypedDict

from langgraph.graph import START, StateGraph
from langgraph.runtime import Runtime
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from rerankgraph.context import RerankContext
from rerankgraph.errors import InputError
from rerankgraph.graphs.fusion import end_with_fusion
from rerankgraph.spec import MethodSpec
from rerankgraph.types import Candidate, Judgment, ParseStatus, Query, ScoredDoc

DEFAULT_STAGES = "100@rubric:samples=1 -> 30@rubric:samples=4 -> 10@listwise"
STAGE_SCORES = "stage_scores"  # Candidate.metadata key: earlier stages' scores


class Stage(BaseModel):
    """One stage: rerank the top `depth` of the current order with `method`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    depth: int = Field(ge=1)
    method: str = Field(min_length=1)
    params: dict[str, Any] = Field(default_factory=dict)

    def __str__(self) -> str:
        shown = ",".join(f"{k}={json.dumps(v) if not isinstance(v, str) else v}"
                         for k, v in self.params.items())
        return f"{self.depth}@{self.method}" + (f":{shown}" if shown else "")


def parse_stages(text: str) -> list[Stage]:
    """Stages written as `100@rubric:samples=1 -> 30@rubric:samples=4 -> 10@listwise`:
    depth@method, then optional name=value pairs after a colon, joined by commas."""
    stages = []
    for number, part in enumerate(text.split("->"), start=1):
        head, _, pairs = part.strip().partition(":")
        depth, at, method = head.partition("@")
        if not at or not depth.strip().isdigit() or not method.strip():
            raise ValueError(f"stage {number} {part.strip()!r} must look like "
                             "DEPTH@METHOD[:name=value,...], e.g. 30@rubric:samples=4")
        params: dict[str, Any] = {}
        for pair in filter(None, (p.strip() for p in pairs.split(","))):
            name, eq, value = pair.partition("=")
            if not eq:
                raise ValueError(f"stage {number}: {pair!r} must look like name=value")
            try:
                params[name.strip()] = json.loads(value)
            except json.JSONDecodeError:
                params[name.strip()] = value.strip()
        stages.append(Stage(depth=int(depth), method=method.strip(), params=params))
    return stages


class CascadeParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    stages: tuple[Stage, ...] = Field(
        tuple(parse_stages(DEFAULT_STAGES)),
        description="DEPTH@METHOD[:name=value,...] stages joined by ' -> '")

    @field_validator("stages", mode="before")
    @classmethod
    def _parse(cls, value: object) -> object:
        return parse_stages(value) if isinstance(value, str) else value

    @model_validator(mode="after")
    def _shrinking(self) -> CascadeParams:
        if not self.stages:
            raise ValueError("a cascade needs at least one stage")
        depths = [s.depth for s in self.stages]
        if any(b > a for a, b in zip(depths, depths[1:], strict=False)):
            raise ValueError(f"stage depths must not grow, got {' -> '.join(map(str, depths))}")
        return self


class CascadeState(TypedDict, total=False):
    query: Query
    candidates: list[Candidate]
    judgments: Annotated[list[Judgment], operator.add]
    ranking: list[ScoredDoc]
    trace: Annotated[list[dict[str, Any]], operator.add]
    stage_scores: dict[str, dict[str, float]]  # stage name -> doc id -> its score there
    unscored: Annotated[list[str], operator.add]  # docs a stage's judge left unscored
    fusion: str


def resolve_stages(stages: Sequence[Stage], resolve: Callable[[str], Any] | None,
                   owner: str = "cascade") -> list[tuple[str, Any, BaseModel]]:
    """Each stage's node name, method spec and checked parameters. A stage runs without
    fusion unless it asks for one: the cascade fuses once, at its end."""
    if resolve is None:
        raise InputError(f"{owner} needs the method registry to find its stages; build it "
                         "through the SDK or the CLI")
    built = []
    for number, stage in enumerate(stages, start=1):
        spec = resolve(stage.method)
        if spec.kind != "rerank" or spec.shaped_by_params:
            raise InputError(f"{owner} stage {number}: {stage.method!r} cannot be a stage; "
                             "choose a rerank method (not a search method or a cascade)")
        params = spec.make_params({"fusion": "none", **stage.params}
                                  if "fusion" in spec.params.model_fields else stage.params)
        built.append((f"stage_{number}_{spec.name}", spec, params))
    return built


def build_cascade_graph(stages: Sequence[Stage], resolve: Callable[[str], Any] | None,
                        name: str = "cascade") -> Any:
    """A fresh compiled graph that runs `stages` in order, each over the top of what the
    one before it left."""
    graph = StateGraph(CascadeState, context_schema=RerankContext)
    last = START
    for node, (step, spec, params) in enumerate(resolve_stages(stages, resolve, name)):
        graph.add_node(step, _stage_node(step, spec, params, stages[node].depth,
                                         resolve, len(stages)))
        graph.add_edge(last, step)
        last = step
    end_with_fusion(graph, last)
    return graph.compile(name=name)


def _stage_node(step: str, spec: Any, params: BaseModel, depth: int,
                resolve: Callable[[str], Any] | None, count: int) -> Callable[..., Any]:
    subgraph = spec.graph(params, resolve)

    async def run_stage(state: CascadeState, runtime: Runtime[RerankContext]) -> dict:
        started = time.perf_counter()
        by_id = {c.doc_id: c for c in state["candidates"]}
        order = [d.doc_id for d in state.get("ranking") or []] or list(by_id)
        earlier = state.get("stage_scores", {})
        head = [_with_scores(by_id[d], earlier) for d in order[:depth]]
        result = await subgraph.ainvoke(
            {"query": state["query"], "candidates": head},
            context=replace(runtime.context, params=params),
            config={"recursion_limit": 10_000})
        ranked = result["ranking"]
        judgments: list[Judgment] = result.get("judgments", [])
        # A head document the stage did not rank keeps its order below those it did.
        placed = {d.doc_id for d in ranked}
        new_order = ([d.doc_id for d in ranked]
                     + [c.doc_id for c in head if c.doc_id not in placed] + order[depth:])
        return {
            # Scores fall with rank over the whole list, so a TREC run stays ordered.
            "ranking": [ScoredDoc(doc_id=d, score=float(len(new_order) - i))
                        for i, d in enumerate(new_order)],
            "judgments": judgments,
            "stage_scores": {**earlier, step: {d.doc_id: d.score for d in ranked}},
            "unscored": list(result.get("unscored", [])),
            "trace": [_stage_trace(step, spec.name, params, len(head), count, judgments,
                                   result, time.perf_counter() - started)]}

    return run_stage


def _with_scores(candidate: Candidate, earlier: dict[str, dict[str, float]]) -> Candidate:
    if not earlier:
        return candidate
    seen = {step: scores[candidate.doc_id] for step, scores in earlier.items()
            if candidate.doc_id in scores}
    return candidate.model_copy(update={"metadata": {**candidate.metadata, STAGE_SCORES: seen}})


def _stage_trace(step: str, method: str, params: BaseModel, reranked: int, count: int,
                 judgments: Sequence[Judgment], result: dict[str, Any],
                 wall_s: float) -> dict[str, Any]:
    return {"phase": f"{step}: {method} over the top {reranked}", "stage": step,
            "method": method, "reranked": reranked, "of_stages": count,
            "params": params.model_dump(mode="json", exclude_unset=True),
            "llm_calls": sum(j.calls for j in judgments),
            "prompt_tokens": sum(j.prompt_tokens for j in judgments),
            "completion_tokens": sum(j.completion_tokens for j in judgments),
            "repaired": sum(j.status == ParseStatus.REPAIRED for j in judgments),
            "fallbacks": sum(j.status == ParseStatus.FALLBACK for j in judgments),
            "unscored": len(result.get("unscored", [])),
            "wall_s": round(wall_s, 3)}


def build_graph(params: CascadeParams | None = None,
                resolve: Callable[[str], Any] | None = None) -> Any:
    """A fresh compiled cascade graph for `params`' stages."""
    return build_cascade_graph((params or CascadeParams.model_validate({})).stages, resolve)


METHOD = MethodSpec(
    name="cascade",
    build_graph=build_graph, params=CascadeParams, shaped_by_params=True,
    description="rerank methods in stages over shrinking heads of the list, as one graph "
                f"(default {DEFAULT_STAGES})")
