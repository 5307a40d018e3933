"""LangChain in both directions.

- `RerankgraphCompressor`: a document compressor, so any registered method reranks
  inside LangChain's `ContextualCompressionRetriever`.
- `LangChainRetriever`: any LangChain `BaseRetriever` (so any vector store LangChain
  fronts) as a rerankgraph first stage, for rerank methods and for `rvr`.

Needs `pip install 'rerankgraph[langchain]'`.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Mapping, Sequence
from typing import Any

from rerankgraph.errors import InputError
from rerankgraph.retrievers.base import SearchResults
from rerankgraph.sdk import Reranker
from rerankgraph.types import Candidate, Provenance

try:
    from langchain_core.callbacks import Callbacks
    from langchain_core.documents import BaseDocumentCompressor, Document
    from langchain_core.retrievers import BaseRetriever
    from pydantic import ConfigDict, PrivateAttr
except ImportError as exc:  # pragma: no cover - depends on the install
    raise ImportError("rerankgraph.integrations.langchain needs langchain-core: "
                      "pip install 'rerankgraph[langchain]'") from exc

SCORE_KEY = "relevance_score"
PROVENANCE_KEY = "rerankgraph"


def _candidates(documents: Sequence[Document]) -> list[Candidate]:
    return [Candidate(doc_id=str(i), text=doc.page_content, rank=i + 1)
            for i, doc in enumerate(documents)]


class RerankgraphCompressor(BaseDocumentCompressor):
    """Reranks LangChain `Document`s with a registered method and keeps the best `top_n`
    (all by default). Each returned document is a copy with its metadata kept, plus
    `relevance_score` and `rerankgraph` (method, rank, model, and the query's calls,
    repairs and fallbacks). `reranker_options` are `Reranker`'s keyword arguments
    (model, base_url, engine, params, strict, ...); or pass a built `reranker`."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    method: str = "pointwise"
    top_n: int | None = None
    reranker_options: dict[str, Any] = {}
    _reranker: Reranker = PrivateAttr()

    def __init__(self, method: str = "pointwise", *, top_n: int | None = None,
                 reranker: Reranker | None = None, **reranker_options: Any) -> None:
        super().__init__(method=method, top_n=top_n,  # type: ignore[call-arg]
                         reranker_options=reranker_options)
        if top_n is not None and top_n < 1:
            raise InputError(f"top_n must be 1 or more, got {top_n}")
        self._reranker = reranker or Reranker(method, **reranker_options)

    @property
    def reranker(self) -> Reranker:
        return self._reranker

    def compress_documents(self, documents: Sequence[Document], query: str,
                           callbacks: Callbacks | None = None) -> Sequence[Document]:
        if not documents:
            return []
        result = self._reranker.rerank(query, _candidates(documents))
        return self._reordered(documents, result.ranking, result.provenance)

    async def acompress_documents(self, documents: Sequence[Document], query: str,
                                  callbacks: Callbacks | None = None) -> Sequence[Document]:
        if not documents:
            return []
        result = await self._reranker.arerank(query, _candidates(documents))
        return self._reordered(documents, result.ranking, result.provenance)

    def _reordered(self, documents: Sequence[Document], ranking: Sequence[Any],
                   provenance: Provenance | None) -> list[Document]:
        kept = []
        for rank, scored in enumerate(ranking[:self.top_n], start=1):
            original = documents[int(scored.doc_id)]
            details = {"method": self._reranker.spec.name, "rank": rank}
            if provenance is not None:
                details |= {"model": provenance.model, "llm_calls": provenance.llm_calls,
                            "repaired": provenance.repaired, "fallbacks": provenance.fallbacks}
            kept.append(original.model_copy(update={"metadata": {
                **original.metadata, SCORE_KEY: scored.score, PROVENANCE_KEY: details}}))
        return kept


class LangChainRetriever:
    """A LangChain retriever as a rerankgraph `Retriever`. Document ids are
    `Document.id`, else `metadata[id_key]`, else the SHA-1 of the text; the score is the
    retriever's `metadata[score_key]` when it gives one, else 1/rank. The texts it
    returned are kept, so rerank methods and `rvr` can show them to the judge
    (`document(doc_id)`). The retriever decides how many documents it returns; `k`
    cuts that list."""

    def __init__(self, retriever: BaseRetriever, name: str = "langchain",
                 id_key: str = "id", score_key: str = "score") -> None:
        self.retriever = retriever
        self.name = name
        self.id_key = id_key
        self.score_key = score_key
        self._texts: dict[str, tuple[str, str]] = {}

    def search(self, queries: Mapping[str, str], k: int) -> SearchResults:
        return {qid: self._hits(self.retriever.invoke(text), k) for qid, text in queries.items()}

    async def asearch(self, queries: Mapping[str, str], k: int) -> SearchResults:
        # The queries concurrently: a remote vector store answers them in parallel.
        found = await asyncio.gather(*(self.retriever.ainvoke(text)
                                       for text in queries.values()))
        return {qid: self._hits(documents, k)
                for qid, documents in zip(queries, found, strict=True)}

    def document(self, doc_id: str) -> tuple[str, str]:
        """(title, text) of a document this retriever returned."""
        if doc_id not in self._texts:
            raise InputError(f"document {doc_id!r} was never returned by retriever "
                             f"{self.name!r}")
        return self._texts[doc_id]

    def _hits(self, documents: Sequence[Document], k: int) -> list[tuple[str, float]]:
        hits = []
        for rank, doc in enumerate(documents[:k], start=1):
            doc_id = str(doc.id or doc.metadata.get(self.id_key) or
                         hashlib.sha1(doc.page_content.encode()).hexdigest()[:16])
            self._texts[doc_id] = (str(doc.metadata.get("title", "")), doc.page_content)
            score = doc.metadata.get(self.score_key)
            hits.append((doc_id, float(score) if isinstance(score, int | float) else 1 / rank))
        return hits
