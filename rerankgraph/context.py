"""Runtime context handed to every graph: the engine, the method's typed settings and,
for search methods, the retriever and the corpus index.

It travels as LangGraph runtime context, not state, so state stays serializable.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from pydantic import BaseModel

from rerankgraph.serving.base import Engine

if TYPE_CHECKING:
    from rerankgraph.index.corpus import CorpusIndex
    from rerankgraph.retrievers.base import Retriever

P = TypeVar("P", bound=BaseModel)


@dataclass(frozen=True)
class RerankContext(Generic[P]):
    """`RerankContext[PointwiseParams]` lets a node read `runtime.context.params.batch_size`
    with its type. `retriever` and `index` are set for search methods (and for rerank
    methods that retrieve their own candidates); None otherwise."""

    engine: Engine
    params: P
    seed: int = 0
    strict: bool = False
    retriever: Retriever | None = None
    index: CorpusIndex | None = None
    # name -> MethodSpec, for a method that embeds another (lattice's final rerank);
    # passed down by the face, since graphs sit below the registry.
    resolve_method: Callable[[str], Any] | None = None
