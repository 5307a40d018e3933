"""BM25 on bm25s, with Lucene's scoring (k1=0.9, b=0.4 by default) and analyzer."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from rerankgraph.errors import InputError
from rerankgraph.retrievers.analysis import EnglishAnalyzer
from rerankgraph.retrievers.base import SearchResults, check_positive

ProgressFn = Callable[[int, int], None]
_ANALYZER_FILE = "analyzer.json"


class BM25Retriever:
    """Sparse BM25 over a fixed corpus. Build it from texts, or load a saved one
    (memory-mapped). Documents that share no term with a query are never returned, so
    a query can come back with fewer than k hits."""

    name = "bm25"

    def __init__(self, model: Any, doc_ids: Sequence[str], analyzer: EnglishAnalyzer) -> None:
        self._model = model
        self.doc_ids = list(doc_ids)
        self.analyzer = analyzer

    @classmethod
    def build(cls, doc_ids: Sequence[str], texts: Sequence[str], *, k1: float = 0.9,
              b: float = 0.4, analyzer: EnglishAnalyzer | None = None,
              progress: ProgressFn | None = None, chunk: int = 2000) -> BM25Retriever:
        """Indexes `texts` (one per doc id, same order). `progress(done, total)` is
        called as documents are analysed."""
        import bm25s

        if len(doc_ids) != len(texts):
            raise ValueError("doc_ids and texts differ in length")
        if not texts:
            raise InputError("cannot build a BM25 index over an empty corpus")
        analyzer = analyzer or EnglishAnalyzer()
        # Terms become ids as they are analysed: a large corpus never holds every
        # document's term strings at once.
        vocab: dict[str, int] = {}
        token_ids: list[list[int]] = []
        if progress is not None:
            progress(0, len(texts))
        for start in range(0, len(texts), chunk):
            for terms in analyzer.terms_many(texts[start:start + chunk]):
                token_ids.append([vocab.setdefault(t, len(vocab)) for t in terms])
            if progress is not None:
                progress(len(token_ids), len(texts))
        model = bm25s.BM25(method="lucene", k1=k1, b=b)
        model.index((token_ids, vocab), show_progress=False)
        return cls(model, doc_ids, analyzer)

    def save(self, folder: str | Path) -> None:
        folder = Path(folder)
        self._model.save(str(folder), show_progress=False)
        (folder / _ANALYZER_FILE).write_text(json.dumps(self.analyzer.settings()))

    @classmethod
    def load(cls, folder: str | Path, doc_ids: Sequence[str], *, mmap: bool = True
             ) -> BM25Retriever:
        """Loads a saved index; a missing or unreadable file raises InputError naming it."""
        import bm25s

        folder = Path(folder)
        for name in ("data.csc.index.npy", "indices.csc.index.npy", "indptr.csc.index.npy",
                     "vocab.index.json", "params.index.json", _ANALYZER_FILE):
            if not (folder / name).is_file():
                raise InputError(f"{folder / name}: missing; rebuild the index with "
                                 "`rerankgraph index build --rebuild`")
        try:
            settings = json.loads((folder / _ANALYZER_FILE).read_text())
            model = bm25s.BM25.load(str(folder), mmap=mmap, show_progress=False)
        except (ValueError, OSError) as exc:
            raise InputError(f"{folder}: BM25 index is unreadable ({exc}); rebuild it with "
                             "`rerankgraph index build --rebuild`") from None
        if model.scores["num_docs"] != len(doc_ids):
            raise InputError(f"{folder}: BM25 index holds {model.scores['num_docs']} documents "
                             f"but the index lists {len(doc_ids)}; rebuild it")
        return cls(model, doc_ids, EnglishAnalyzer(**settings))

    def search(self, queries: Mapping[str, str], k: int) -> SearchResults:
        check_positive(k, "k")
        if not queries:
            return {}
        query_ids = list(queries)
        terms = self.analyzer.terms_many(queries[q] for q in query_ids)
        depth = min(k, len(self.doc_ids))
        indices, scores = self._model.retrieve(terms, k=depth, show_progress=False,
                                               n_threads=0)
        results: SearchResults = {}
        for row, qid in enumerate(query_ids):
            keep = np.asarray(scores[row]) > 0  # no shared term: not a hit
            results[qid] = [(self.doc_ids[int(i)], float(s))
                            for i, s in zip(indices[row][keep], scores[row][keep], strict=True)]
        return results
