"""What search graphs share: the state keys every one of them has, and running another
registered method inside a graph, as they do for their final rerank (lattice, rvr)."""

from __future__ import annotations

import operator
from collections.abc import Sequence
from dataclasses import replace
from typing import Annotated, Any, TypedDict

from rerankgraph.context import RerankContext
from rerankgraph.errors import InputError
from rerankgraph.types import Candidate, Judgment, Query, ScoredDoc


class TracedState(TypedDict, total=False):
    """Input: query (candidates optional). Output: ranking, every judgment, and the
    trace of steps that provenance shows."""

    query: Query
    candidates: list[Candidate]
    judgments: Annotated[list[Judgment], operator.add]
    ranking: list[ScoredDoc]
    trace: Annotated[list[dict[str, Any]], operator.add]


async def rerank_head(context: RerankContext, method: str, owner: str, query: Query,
                      head: Sequence[Candidate], tail: Sequence[ScoredDoc]) -> dict[str, Any]:
    """Reranks `head` with the rerank method `method`, run as a subgraph, and puts it
    above `tail`. Returns the state update: ranking, judgments and a trace step."""
    if context.resolve_method is None:
        raise InputError(f"{owner}'s rerank_method needs the method registry; run {owner} "
                         "through the SDK or the CLI")
    spec = context.resolve_method(method)
    if spec.kind != "rerank":
        raise InputError(f"rerank_method {method!r} is a {spec.kind} method; choose a rerank "
                         "method")
    if not head:
        return {}
    # The head is the search method's own ranking, not a first stage: no fusion with it.
    params = spec.make_params({"fusion": "none"} if "fusion" in spec.params.model_fields
                              else {})
    result = await spec.graph(params, context.resolve_method).ainvoke(
        {"query": query, "candidates": list(head)}, context=replace(context, params=params))
    top = result["ranking"]
    # The reranked head keeps scores above the tail's, so a TREC run stays ordered.
    floor = tail[0].score if tail else 0.0
    ranking = [ScoredDoc(doc_id=d.doc_id, score=floor + len(top) - i)
               for i, d in enumerate(top)] + list(tail)
    judgments = result.get("judgments", [])
    return {"ranking": ranking, "judgments": judgments,
            "trace": [{"phase": f"rerank {len(top)} with {spec.name}",
                       "llm_calls": sum(j.calls for j in judgments)}]}
