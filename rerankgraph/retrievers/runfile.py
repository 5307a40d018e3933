"""A TREC run file as a retriever: the first stage was computed elsewhere."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from rerankgraph.data import RunEntry, read_trec_run
from rerankgraph.retrievers.base import SearchResults, check_positive


class RunFileRetriever:
    """Answers from a run's lines, best first. A query absent from the run gets no hits
    (and is counted short by the caller)."""

    def __init__(self, run: str | Path | dict[str, list[RunEntry]]) -> None:
        if isinstance(run, dict):
            self.run, self.name = run, "run"
        else:
            self.run, self.name = read_trec_run(run), f"run:{Path(run).name}"

    def search(self, queries: Mapping[str, str], k: int) -> SearchResults:
        check_positive(k, "k")
        return {qid: [(e.doc_id, e.score) for e in self.run.get(qid, [])[:k]]
                for qid in queries}
