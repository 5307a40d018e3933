"""`retrieve`: the first stage alone, as a search method (no LLM call).

It reads the corpus through the retriever in the runtime context, so the same SDK, CLI
and batch paths that run LLM search methods can write a plain first-stage run, and a
user's graph can put retrieval in front of any rerank method as one more node.
"""

from __future__ import annotations

from typing import Any, TypedDict

from langgraph.graph import END, START, StateGraph
from langgraph.runtime import Runtime
from pydantic import BaseModel, ConfigDict, Field

from rerankgraph.context import RerankContext
from rerankgraph.errors import InputError
from rerankgraph.retrievers.base import asearch
from rerankgraph.spec import MethodSpec
from rerankgraph.types import Candidate, Judgment, Query, ScoredDoc


class RetrieveParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    k: int = Field(100, ge=1, description="documents to return per query")


class SearchState(TypedDict, total=False):
    """Input: query (candidates optional, unused). Output: ranking, judgments (none)."""

    query: Query
    candidates: list[Candidate]
    judgments: list[Judgment]
    ranking: list[ScoredDoc]


async def search(state: SearchState, runtime: Runtime[RerankContext[RetrieveParams]]) -> dict:
    context = runtime.context
    if context.retriever is None:
        raise InputError("method 'retrieve' needs a retriever or an index (--index INDEX)")
    query = state["query"]
    hits = await asearch(context.retriever, {query.id: query.text}, context.params.k)
    return {"ranking": [ScoredDoc(doc_id=d, score=s) for d, s in hits.get(query.id, [])],
            "judgments": []}


def build_graph() -> Any:
    """A fresh compiled retrieve graph."""
    graph = StateGraph(SearchState, context_schema=RerankContext)
    graph.add_node("search", search)
    graph.add_edge(START, "search")
    graph.add_edge("search", END)
    return graph.compile(name="retrieve")


METHOD = MethodSpec(
    name="retrieve", build_graph=build_graph, params=RetrieveParams, kind="search",
    uses_engine=False,
    description="the index's retriever alone (BM25, dense or hybrid); no LLM call",
    aliases=("first_stage",))
