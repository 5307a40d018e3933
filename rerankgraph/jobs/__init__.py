"""Batch runs: the runner, the durable store and reply cache, and the Ray Data backend.

`run_job` reranks many requests with a Reranker, resumable from a JobStore;
`jobs.ray` (imported on use) streams single-pass methods through Ray Data.
"""

from rerankgraph.jobs.runner import JobReport, run_job
from rerankgraph.jobs.store import CachingEngine, JobStore

__all__ = ["CachingEngine", "JobReport", "JobStore", "run_job"]
