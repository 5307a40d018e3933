"""Durable job state in SQLite: the job's fingerprint, finished queries, and a cache of
engine replies keyed by everything that decides them.

The reply cache key is a hash of the model, the rendered chat messages and the sampling
settings. The rendered prompt holds the template text (so its version), the query and
the documents, so a changed template, query or document is a miss, and a rerun, a
resumed job or an overlapping method replays identical calls for free.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from dataclasses import asdict
from pathlib import Path

from rerankgraph.errors import InputError
from rerankgraph.serving.base import ChatRequest, Completion, Engine
from rerankgraph.types import RerankResult

SCHEMA = """
CREATE TABLE IF NOT EXISTS job (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS results (query_id TEXT PRIMARY KEY, result TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS replies (key TEXT PRIMARY KEY, completion TEXT NOT NULL);
"""


class JobStore:
    """One SQLite file per job. Writes are committed at once (WAL), so a job killed at
    any point keeps every finished query and every reply it received."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(SCHEMA)
        self._lock = threading.Lock()

    def check_fingerprint(self, fingerprint: dict[str, object]) -> None:
        """Records the job's settings, or checks them against those already recorded.
        Resuming with different settings would mix two jobs, so it raises InputError."""
        encoded = json.dumps(fingerprint, sort_keys=True)
        with self._lock:
            row = self._db.execute("SELECT value FROM job WHERE key='fingerprint'").fetchone()
            if row is None:
                self._db.execute("INSERT INTO job VALUES ('fingerprint', ?)", (encoded,))
                return
        recorded = json.loads(row[0])
        changed = sorted(k for k in set(recorded) | set(fingerprint)
                         if recorded.get(k) != fingerprint.get(k))
        if changed:
            raise InputError(f"state file {self.path} belongs to a job with other settings "
                             f"({', '.join(changed)}); pass --fresh to start over or --state "
                             "to use another file")

    def finished(self) -> dict[str, RerankResult]:
        with self._lock:
            rows = self._db.execute("SELECT query_id, result FROM results").fetchall()
        return {qid: RerankResult.model_validate_json(text) for qid, text in rows}

    def save_result(self, result: RerankResult) -> None:
        """Stores a finished query; failed ones are not stored, so a rerun retries them."""
        if not result.ok:
            return
        with self._lock:
            self._db.execute("INSERT OR REPLACE INTO results VALUES (?, ?)",
                             (result.query_id, result.model_dump_json()))

    def get_replies(self, keys: Sequence[str]) -> dict[str, Completion]:
        found: dict[str, Completion] = {}
        with self._lock:
            for start in range(0, len(keys), 500):
                chunk = list(keys[start:start + 500])
                marks = ",".join("?" * len(chunk))
                for key, text in self._db.execute(
                        f"SELECT key, completion FROM replies WHERE key IN ({marks})", chunk):
                    found[key] = _completion_from_json(text)
        return found

    def put_replies(self, items: Sequence[tuple[str, Completion]]) -> None:
        with self._lock:
            self._db.executemany("INSERT OR REPLACE INTO replies VALUES (?, ?)",
                                 [(k, json.dumps(asdict(c))) for k, c in items])

    def reply_count(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT COUNT(*) FROM replies").fetchone()[0])

    def close(self) -> None:
        with self._lock:
            self._db.close()


def _completion_from_json(text: str) -> Completion:
    data = json.loads(text)
    return Completion(texts=tuple(data["texts"]),
                      logprobs=tuple(tuple(dict(p) for p in s) for s in data["logprobs"]),
                      prompt_tokens=data["prompt_tokens"],
                      completion_tokens=data["completion_tokens"],
                      finish_reasons=tuple(data["finish_reasons"]), cached=True)


_TAGS = ("purpose", "query_id", "doc_ids")  # fields the engine never sees


def request_key(model: str, request: ChatRequest) -> str:
    """The cache key of a request: everything the engine sees (its tags are left out,
    so keys made before a tag existed still match)."""
    sent = {k: v for k, v in asdict(request).items() if k not in _TAGS}
    payload = json.dumps({"model": model, **sent}, sort_keys=True, default=list)
    return hashlib.sha256(payload.encode()).hexdigest()


def is_cacheable(request: ChatRequest) -> bool:
    """Only replies that a rerun would reproduce: greedy, or sampled with a seed."""
    return request.temperature == 0 or request.seed is not None


class CachingEngine(Engine):
    """Wraps an engine: answers repeated requests from the store and forwards the rest
    in one batch. Tokens of cached replies still count in provenance (they are the
    method's cost); `stats.cache_hits` says how many calls were replayed."""

    def __init__(self, inner: Engine, store: JobStore) -> None:
        super().__init__()
        self.inner = inner
        self.store = store
        self.model_name = inner.model_name
        self.max_model_len = inner.max_model_len
        self.simulated = inner.simulated
        self.cache_hits = 0

    async def _chat(self, requests: list[ChatRequest]) -> list[Completion]:
        keys = [request_key(self.model_name, r) if is_cacheable(r) else None for r in requests]
        cached = self.store.get_replies([k for k in keys if k is not None])
        missing = [i for i, k in enumerate(keys) if k is None or k not in cached]
        fresh = await self.inner.chat([requests[i] for i in missing]) if missing else []
        self.store.put_replies([(key, c) for i, c in zip(missing, fresh, strict=True)
                                if (key := keys[i]) is not None])
        by_index = dict(zip(missing, fresh, strict=True))
        self.cache_hits += len(requests) - len(missing)
        return [by_index[i] if i in by_index else cached[keys[i]]  # type: ignore[index]
                for i in range(len(requests))]

    async def _tokenize(self, text: str) -> list[int]:
        return await self.inner._on_home(self.inner._tokenize(text))

    async def _detokenize(self, token_ids: list[int]) -> str:
        return await self.inner._on_home(self.inner._detokenize(token_ids))

    async def _fit_texts(self, texts: list[str], max_tokens: int) -> list[tuple[str, bool]]:
        return await self.inner.fit_texts(texts, max_tokens)

    def prefix_cache_counts(self) -> tuple[int, int] | None:
        return self.inner.prefix_cache_counts()


def iter_jsonl(results: Sequence[RerankResult]) -> Iterator[str]:
    for result in sorted(results, key=lambda r: r.query_id):
        yield result.model_dump_json(exclude={"ranking"}) + "\n"

