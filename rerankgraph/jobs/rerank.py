"""A whole rerank job from files: read a BEIR folder and a first-stage run, rerank every
query with one method, write the reranked run and the provenance. What `rerankgraph
rerank` and `rerankgraph batch` do, as one function over typed settings.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from rerankgraph.data import (
    BeirFolder,
    build_job,
    load_beir,
    read_trec_run,
    run_lines,
    write_trec_run,
)
from rerankgraph.errors import InputError
from rerankgraph.jobs.runner import JobReport, run_job
from rerankgraph.jobs.store import CachingEngine, JobStore, iter_jsonl
from rerankgraph.registry import get_method
from rerankgraph.sdk import Reranker
from rerankgraph.serving.base import Engine
from rerankgraph.serving.factory import build_engine
from rerankgraph.simulation import SimulationSettings, simulated_judge
from rerankgraph.types import RerankRequest, RerankResult

BACKENDS = ("vllm", "ray")


@dataclass(frozen=True)
class JobSettings:
    """Everything a rerank job needs. `durable` makes it a batch job: finished queries
    and engine replies go to `state` (default OUT.state.sqlite) and a rerun resumes;
    `provenance` then defaults to OUT.provenance.jsonl. `simulate` names a qrels file
    that a simulated judge answers from instead of a model."""

    data: Path
    out: Path
    run: Path | None = None
    method: str = "pointwise"
    params: dict[str, Any] = field(default_factory=dict)
    queries: int | None = None
    depth: int = 20
    seed: int = 0
    strict: bool = False
    provenance: Path | None = None
    # the engine
    model: str | None = None
    base_url: str | None = None
    api_key: str | None = None
    max_concurrency: int = 64
    backend: str = "vllm"
    # batch jobs
    durable: bool = False
    state: Path | None = None
    fresh: bool = False
    # the simulated judge
    simulate: Path | None = None
    simulation: SimulationSettings = field(default_factory=SimulationSettings)

    @property
    def state_path(self) -> Path | None:
        """The SQLite state file, or None for a job that is not durable."""
        if not self.durable:
            return None
        return self.state or self.out.with_name(self.out.name + ".state.sqlite")

    @property
    def provenance_path(self) -> Path | None:
        """Where the per-query provenance JSONL goes, or None for none."""
        if self.provenance is not None or not self.durable:
            return self.provenance
        return self.out.with_name(self.out.name + ".provenance.jsonl")

    def engine_label(self) -> str:
        return self.base_url or self.model or "embedded judge"


@dataclass(frozen=True)
class JobProgress:
    """Progress of a running job: queries finished (resumed ones included) of `total`,
    and the tokens per second the engine has computed in this run."""

    done: int
    total: int
    tokens_per_s: float


def _ignore(message: str) -> None:
    return None


def run_rerank_job(settings: JobSettings,
                   on_progress: Callable[[JobProgress], None] | None = None,
                   log: Callable[[str], None] = _ignore) -> JobReport:
    """Reranks the run's top `depth` per query and writes the reranked run (then the
    rest of each first-stage list in its order) to `settings.out`, and the provenance
    file. Returns the report; failed queries are in `report.failures` and not in the
    run. Bad input raises InputError before any engine loads. `log` receives warnings
    and notices, one line each; `on_progress` is called when the run starts and after
    every query."""
    spec = get_method(settings.method)
    params = spec.make_params(settings.params)
    _check_backend(settings, spec.name)
    if settings.run is None:
        raise InputError("give --run: a first-stage TREC run to rerank")
    dataset = load_beir(settings.data)
    first_stage = read_trec_run(settings.run)
    job = build_job(dataset, first_stage, depth=settings.depth, queries=settings.queries)
    missing = sum(len(v) for v in job.missing_docs.values())
    if missing:
        log(f"warning: {missing} doc ids of the run are not in "
            f"{settings.data / 'corpus.jsonl'} ({len(job.missing_docs)} queries); "
            "they were skipped")
    for qid, why in job.skipped_queries.items():
        log(f"warning: query {qid!r} skipped: {why}")
    if not job.requests:
        raise InputError("no query is left to rerank after the skips above")

    store = _open_store(settings, spec.name, params)
    try:
        log(f"loading engine ({settings.engine_label()}) ...")
        if settings.backend == "ray":
            assert store is not None  # _check_backend: ray is for batch jobs
            report = _run_on_ray(settings, spec.name, params, job.requests, store)
        else:
            report = _run_on_engine(settings, spec.name, params, dataset, job.requests, store,
                                    on_progress, log)
    finally:
        if store is not None:
            store.close()
    simulated = any(r.provenance.simulated for r in report.results if r.provenance)
    tag = f"rerankgraph-{spec.name}" + ("-SIMULATED" if simulated else "")
    write_trec_run(settings.out, {r.query_id: run_lines(r, first_stage[r.query_id], tag)
                                  for r in report.results if r.ok})
    provenance = settings.provenance_path
    if provenance is not None:
        with provenance.open("w", encoding="utf-8") as sink:
            sink.writelines(iter_jsonl(report.results))
    return report


def _check_backend(settings: JobSettings, method: str) -> None:
    if settings.backend not in BACKENDS:
        raise InputError(f"--backend {settings.backend!r}: use vllm or ray")
    if settings.backend != "ray":
        return
    if not settings.durable:
        raise InputError("--backend ray is for `rerankgraph batch`")
    if settings.base_url or settings.simulate:
        raise InputError("--backend ray runs its own vLLM replicas; drop --base-url "
                         "and --simulate")
    from rerankgraph.jobs.ray import check_ray_method

    check_ray_method(method)


def _open_store(settings: JobSettings, method: str, params: BaseModel) -> JobStore | None:
    path = settings.state_path
    if path is None:
        return None
    if settings.fresh and path.exists():
        path.unlink()
    store = JobStore(path)
    # Checked before the engine loads. Adding queries or toggling --strict is fine (a
    # strict failure reruns from cached replies); changing what decides a query's
    # ranking is not.
    store.check_fingerprint({
        "method": method, "params": params.model_dump(mode="json"),
        "model": settings.model or settings.base_url or "embedded",
        "simulation": _simulation_label(settings),
        "data": str(Path(settings.data).resolve()),
        "run": str(Path(settings.run).resolve()) if settings.run else None,
        "depth": settings.depth, "seed": settings.seed})
    return store


def _simulation_label(settings: JobSettings) -> str | None:
    if not settings.simulate:
        return None
    sim = settings.simulation
    return f"{settings.simulate}:{sim.score_noise}:{sim.flip_prob}:{sim.position_bias}"


def _build_engine(settings: JobSettings, dataset: BeirFolder, log: Callable[[str], None]
                  ) -> Engine:
    if settings.simulate is None:
        return build_engine(settings.model, settings.base_url, settings.api_key,
                            settings.max_concurrency)
    log(f"SIMULATED JUDGE: answers come from {settings.simulate}, not from a model "
        f"({settings.simulation.label()})")
    return simulated_judge(settings.simulate, dataset, settings.simulation, seed=settings.seed)


def _run_on_engine(settings: JobSettings, method: str, params: BaseModel, dataset: BeirFolder,
                   requests: list[RerankRequest], store: JobStore | None,
                   on_progress: Callable[[JobProgress], None] | None,
                   log: Callable[[str], None]) -> JobReport:
    inner = _build_engine(settings, dataset, log)
    engine: Engine = CachingEngine(inner, store) if store is not None else inner
    try:
        reranker = Reranker(method, engine=engine, params=params, strict=settings.strict,
                            seed=settings.seed)
        return run_job(reranker, requests, store,
                       _progress_callback(inner, requests, store, on_progress))
    finally:
        engine.close()
        if engine is not inner:
            inner.close()


def _progress_callback(engine: Engine, requests: Sequence[RerankRequest],
                       store: JobStore | None,
                       on_progress: Callable[[JobProgress], None] | None
                       ) -> Callable[[RerankResult], None] | None:
    """Reports the start at once, then one step per finished query. Tokens/s counts
    what `engine` (the one under the reply cache) computed since the start."""
    if on_progress is None:
        return None
    total = len(requests)
    wanted = {r.query.id for r in requests}
    done = min(len(wanted & set(store.finished())) if store is not None else 0, total)
    started = time.perf_counter()
    base = engine.stats.prompt_tokens + engine.stats.completion_tokens
    on_progress(JobProgress(done=done, total=total, tokens_per_s=0.0))

    def on_result(result: RerankResult) -> None:
        nonlocal done
        done += 1
        tokens = engine.stats.prompt_tokens + engine.stats.completion_tokens - base
        on_progress(JobProgress(done=done, total=total,
                                tokens_per_s=tokens / max(time.perf_counter() - started, 1e-9)))

    return on_result


def _run_on_ray(settings: JobSettings, method: str, params: BaseModel,
                requests: list[RerankRequest], store: JobStore) -> JobReport:
    """Ray Data backend: the not-yet-finished queries go through one pipeline."""
    from rerankgraph.jobs.ray import rerank_with_ray_data
    from rerankgraph.serving.model_store import resolve_model

    done = store.finished()
    todo = [r for r in requests if r.query.id not in done]
    resumed = [done[r.query.id] for r in requests if r.query.id in done]
    started = time.perf_counter()
    fresh = rerank_with_ray_data(method, todo, resolve_model(settings.model),
                                 params.model_dump()) if todo else []
    for result in fresh:
        store.save_result(result)  # one pipeline: all its queries finish together
    return JobReport(results=sorted([*resumed, *fresh], key=lambda r: r.query_id),
                     resumed_ids=frozenset(r.query_id for r in resumed),
                     wall_time_s=time.perf_counter() - started,
                     failures={r.query_id: r.error for r in fresh if r.error is not None})
