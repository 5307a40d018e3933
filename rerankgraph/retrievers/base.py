"""The retriever protocol every first stage implements, and what they share.

A retriever answers a batch of queries at once: `search({query_id: text}, k)` returns
`{query_id: [(doc_id, score), ...]}`, best first. Anything with that method and a
`name` is a retriever, so a user's own search service plugs in without subclassing.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from typing import Protocol, runtime_checkable

from rerankgraph.errors import InputError

Hits = list[tuple[str, float]]
SearchResults = dict[str, Hits]


@runtime_checkable
class Retriever(Protocol):
    """Batch search over one corpus. `search` may block (it runs on a worker thread
    when called through `asearch`)."""

    name: str

    def search(self, queries: Mapping[str, str], k: int) -> SearchResults: ...


async def asearch(retriever: Retriever, queries: Mapping[str, str], k: int) -> SearchResults:
    """`retriever.search` off the event loop, for async graph nodes. A retriever with its
    own `asearch` coroutine (an HTTP client, say) is awaited directly."""
    native = getattr(retriever, "asearch", None)
    if native is not None and asyncio.iscoroutinefunction(native):
        return await native(queries, k)
    return await asyncio.to_thread(retriever.search, queries, k)


def check_positive(value: int, name: str) -> int:
    """Raises InputError unless `value` is a positive whole number."""
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise InputError(f"{name} must be a positive number of documents, got {value!r}")
    return value


def short_queries(results: SearchResults, k: int) -> dict[str, int]:
    """Queries that came back with fewer than `k` hits, and how many they got."""
    return {qid: len(hits) for qid, hits in results.items() if len(hits) < k}


def document_reader(sources: Sequence[object]) -> Callable[[str], tuple[str, str]]:
    """How to read a retrieved document's (title, text): from the first of `sources` (a
    corpus index, retrievers) that has a `document(doc_id)` method, trying the next ones
    when it does not know the id. Raises InputError when none has one."""
    readers = [s.document for s in sources  # type: ignore[attr-defined]
               if s is not None and callable(getattr(s, "document", None))]
    if not readers:
        raise InputError("retrieving candidates needs their texts: give an index, or a "
                         "retriever with a document(doc_id) method (as LangChainRetriever)")

    def read(doc_id: str) -> tuple[str, str]:
        for reader in readers[:-1]:
            try:
                return reader(doc_id)  # type: ignore[no-any-return]
            except (InputError, KeyError):
                continue
        return readers[-1](doc_id)  # type: ignore[no-any-return]

    return read
