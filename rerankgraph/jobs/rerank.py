"""A whole rerank job from files: read a BEIR folder and a first-stage run, rerank every
query with one method, write the reranked run and the provenance. What `rerankgraph
rerank` and `rerankgraph batch` do, as one function over typed settings.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, JsonValue

from rerankgraph.data import (
    BeirFolder,
    RunEntry,
    build_job,
    check_outputs,
    load_beir,
    read_trec_run,
    run_lines,
    write_atomic,
    write_trec_run,
)
from rerankgraph.errors import InputError, OutputError
from rerankgraph.index.corpus import CorpusIndex
from rerankgraph.index.tree import load_tree, tree_names
from rerankgraph.jobs.runner import JobReport, run_job
from rerankgraph.jobs.store import CachingEngine, JobStore, iter_jsonl
from rerankgraph.registry import get_method
from rerankgraph.retrievers.base import check_positive
from rerankgraph.retrievers.fusion import FOUND_BY, fuse_with_sightings
from rerankgraph.sdk import Reranker
from rerankgraph.serving.base import Engine, NoEngine
from rerankgraph.serving.factory import build_engine
from rerankgraph.simulation import (
    SimulatedJudge,
    SimulationSettings,
    load_profile,
    simulated_judge,
)
from rerankgraph.spec import MethodSpec
from rerankgraph.types import Query, RerankRequest, RerankResult, SearchRequest

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
    # further runs: all are fused by RRF into one candidate list, and each candidate
    # records which runs found it at which rank (what `vic` shows its judge)
    more_runs: tuple[Path, ...] = ()
    # a corpus index instead of a run: a rerank method retrieves its `depth` candidates
    # with `retriever`; a search method writes its top `k`
    index: Path | None = None
    retriever: str = "bm25"
    k: int = 100
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
    # a server without vLLM's extensions: a local tokenizer and the context length
    tokenizer: str | None = None
    max_model_len: int | None = None
    max_concurrency: int = 64
    backend: str = "vllm"
    # batch jobs
    durable: bool = False
    state: Path | None = None
    fresh: bool = False
    # the simulated judge
    simulate: Path | None = None
    simulation: SimulationSettings = field(default_factory=SimulationSettings)
    # a judge profile (`rerankgraph judge profile`): the simulator answers as that judge
    judge_profile: Path | None = None
    # write outputs even over one of the command's inputs
    force: bool = False

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
                   log: Callable[[str], None] = _ignore,
                   on_engine_load: Callable[[], None] | None = None) -> JobReport:
    """Reranks the run's top `depth` per query and writes the reranked run (then the
    rest of each first-stage list in its order) to `settings.out`, and the provenance
    file. Returns the report; failed queries are in `report.failures` and not in the
    run. Bad input raises InputError before any engine loads. `log` receives warnings
    and notices, one line each; `on_progress` is called when the run starts and after
    every query; `on_engine_load` just before a model (not the simulator) loads."""
    if settings.judge_profile is not None and settings.simulate is None:
        raise InputError("--judge-profile fits the simulated judge: give --simulate QRELS too")
    spec = get_method(settings.method)
    params = spec.make_params(settings.params)
    if spec.shaped_by_params:  # a cascade's stages are checked when its graph is built
        spec.graph(params, get_method)
    _check_backend(settings, spec.name)
    _check_sources(settings, spec)
    _check_output_paths(settings)
    dataset = load_beir(settings.data)
    requests: list[RerankRequest | SearchRequest]
    if settings.index is not None:
        index = CorpusIndex(settings.index)
        index.attach_corpus(settings.data)
        requests = list(_search_requests(settings, spec, dataset, log))
        first_stage: dict[str, list[RunEntry]] = {}
    else:
        assert settings.run is not None  # _check_sources
        index = None
        runs = [settings.run, *settings.more_runs]
        first_stage, found_by = fused_runs(runs) if len(runs) > 1 else (
            read_trec_run(settings.run), fused_runs(runs)[1] if spec.fuses else {})
        job = build_job(dataset, first_stage, depth=settings.depth, queries=settings.queries)
        missing = sum(len(v) for v in job.missing_docs.values())
        if missing:
            log(f"warning: {missing} doc ids of the run are not in "
                f"{settings.data / 'corpus.jsonl'} ({len(job.missing_docs)} queries); "
                "they were skipped")
        for qid, why in job.skipped_queries.items():
            log(f"warning: query {qid!r} skipped: {why}")
        source = "run:" + "+".join(p.name for p in runs)
        requests = [with_sightings(r, found_by.get(r.query.id, {}))
                    .model_copy(update={"candidates_from": source}) for r in job.requests]
    if not requests:
        raise InputError("no query is left to rerank after the skips above")

    store = _open_store(settings, spec.name, params)
    try:
        if spec.uses_engine:
            log(f"loading engine ({settings.engine_label()}) ...")
            if settings.simulate is None and on_engine_load is not None:
                on_engine_load()
        if settings.backend == "ray":
            assert store is not None  # _check_backend: ray is for batch jobs
            report = _run_on_ray(settings, spec.name, params,
                                 [r for r in requests if isinstance(r, RerankRequest)], store)
        else:
            report = _run_on_engine(settings, spec, params, dataset, index, requests, store,
                                    on_progress, log)
    finally:
        if store is not None:
            store.close()
    simulated = any(r.provenance.simulated for r in report.results if r.provenance)
    tag = f"rerankgraph-{spec.name}" + ("-SIMULATED" if simulated else "")
    _write_outputs(settings, report, {
        r.query_id: run_lines(r, first_stage.get(r.query_id, []), tag)
        for r in report.results if r.ok})
    if index is not None:
        wanted = settings.k if spec.kind == "search" else settings.depth
        short = [r for r in report.results if r.ok and len(r.ranking) < wanted]
        if short:
            log(f"note: {len(short)} of {len(report.results)} queries came back with fewer "
                f"than {wanted} documents (fewest: {min(len(r.ranking) for r in short)}): "
                "their terms match fewer documents in the corpus")
    return report


def source_names(paths: Sequence[Path]) -> list[str]:
    """Short distinct names for runs: file stems, else file names, else numbered."""
    for names in ([p.stem for p in paths], [p.name for p in paths]):
        if len(set(names)) == len(names):
            return names
    return [f"{i + 1}:{p.name}" for i, p in enumerate(paths)]


def fused_runs(paths: Sequence[Path]) -> tuple[dict[str, list[RunEntry]],
                                               dict[str, dict[str, list[dict[str, object]]]]]:
    """Several TREC runs fused by RRF into one, and per query the sightings of each
    document (which run found it at which rank). Queries in any run are kept, in the
    order they first appear."""
    runs = {name: read_trec_run(path) for name, path in zip(source_names(paths), paths,
                                                            strict=True)}
    fused: dict[str, list[RunEntry]] = {}
    found_by: dict[str, dict[str, list[dict[str, object]]]] = {}
    for qid in dict.fromkeys(q for run in runs.values() for q in run):
        lists = {name: [(e.doc_id, e.score) for e in run.get(qid, [])]
                 for name, run in runs.items()}
        hits, found_by[qid] = fuse_with_sightings(lists)
        fused[qid] = [RunEntry(doc_id=d, rank=i, score=s)
                      for i, (d, s) in enumerate(hits, start=1)]
    return fused, found_by


def with_sightings(request: RerankRequest, found_by: Mapping[str, list[dict[str, object]]]
                   ) -> RerankRequest:
    """The request with each candidate's sightings (which runs found it, at which rank)
    in its metadata, under FOUND_BY."""
    if not found_by:
        return request
    return request.model_copy(update={"candidates": tuple(
        c.model_copy(update={"metadata": {**c.metadata, FOUND_BY: found_by.get(c.doc_id, [])}})
        for c in request.candidates)})


def _write_outputs(settings: JobSettings, report: JobReport,
                   lines: dict[str, list[str]]) -> None:
    """The run, then the provenance, each atomically. A failed write says where the
    judged queries are kept."""
    targets: list[tuple[Path, Any]] = [(settings.out, lambda: write_trec_run(settings.out,
                                                                           lines))]
    provenance = settings.provenance_path
    if provenance is not None:
        targets.append((provenance, lambda: write_atomic(provenance,
                                                         iter_jsonl(report.results))))
    for path, write in targets:
        try:
            write()
        except OSError as exc:
            kept = (f"the judged queries are kept in {settings.state_path}: rerun the same "
                    "command with a writable path to write them without new LLM calls"
                    if settings.state_path else "nothing was kept (use `rerankgraph batch`, "
                    "which keeps judged queries in a state file)")
            raise OutputError(f"could not write {path} ({exc.strerror or exc}); {kept}"
                              ) from None


def _check_output_paths(settings: JobSettings) -> None:
    """Before any engine loads: every output writable, none of them an input."""
    data = Path(settings.data)
    check_outputs(
        {"--out": settings.out, "--provenance": settings.provenance_path,
         "--state": settings.state_path},
        [settings.run, *settings.more_runs, data / "corpus.jsonl", data / "queries.jsonl",
         settings.simulate],
        force=settings.force)


def _check_sources(settings: JobSettings, spec: MethodSpec) -> None:
    """A search method needs --index; a rerank method takes --run or --index, not both."""
    check_positive(settings.depth, "--depth")
    check_positive(settings.k, "--k")
    if spec.kind == "search" and not (spec.reranks and settings.run is not None):
        if settings.index is None:
            also = " or --run (to rerank a run's candidates)" if spec.reranks else ""
            raise InputError(f"method {spec.name!r} searches a corpus: give --index (built "
                             f"by `rerankgraph index build`){also}; --run is for rerank "
                             "methods")
        if settings.run is not None:
            raise InputError(f"method {spec.name!r} searches the index itself: drop --run")
        return
    if settings.run is None and settings.index is None:
        raise InputError(f"method {spec.name!r} reranks candidates: give --run (a TREC run) "
                         "or --index (to retrieve them)")
    if settings.run is not None and settings.index is not None:
        raise InputError("give --run or --index, not both: the candidates come from one")
    if settings.more_runs and settings.backend == "ray":
        raise InputError("--backend ray takes one --run; fuse runs with the vllm backend")
    if settings.index is not None and settings.backend == "ray":
        raise InputError("--backend ray takes --run; retrieve a run first with "
                         "`rerankgraph retrieve`")


def _search_requests(settings: JobSettings, spec: MethodSpec, dataset: BeirFolder,
                     log: Callable[[str], None]) -> list[SearchRequest]:
    """One request per query of queries.jsonl (the first `queries`), in file order."""
    if settings.queries is not None and settings.queries <= 0:
        raise InputError(f"--queries must be positive, got {settings.queries}")
    k = settings.k if spec.kind == "search" else settings.depth
    requests = []
    for qid, text in list(dataset.queries.items())[:settings.queries]:
        if not text.strip():
            log(f"warning: query {qid!r} skipped: empty query text in queries.jsonl")
            continue
        requests.append(SearchRequest(query=Query(id=qid, text=text), k=k))
    return requests


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
    store.check_fingerprint(JobFingerprint.of(settings, method, params).as_json())
    return store


class JobFingerprint(BaseModel):
    """What decides a batch job's rankings, recorded in its state file: a rerun with
    other values is another job. `more_runs` is left out when there is one run, so
    state files of one-run jobs keep their fingerprint."""

    model_config = ConfigDict(frozen=True)

    method: str
    params: dict[str, JsonValue]
    model: str
    simulation: str | None
    data: str
    run: str | None
    more_runs: tuple[str, ...] = ()
    index: str | None
    retriever: str | None
    k: int | None
    depth: int
    seed: int

    @classmethod
    def of(cls, settings: JobSettings, method: str, params: BaseModel) -> JobFingerprint:
        with_index = settings.index is not None
        return cls(
            method=method, params=params.model_dump(mode="json"),
            model=settings.model or settings.base_url or "embedded",
            simulation=_simulation_label(settings),
            data=str(Path(settings.data).resolve()),
            run=str(Path(settings.run).resolve()) if settings.run else None,
            more_runs=tuple(str(Path(p).resolve()) for p in settings.more_runs),
            index=str(Path(settings.index).resolve()) if settings.index else None,
            retriever=settings.retriever if with_index else None,
            k=settings.k if with_index else None,
            depth=settings.depth, seed=settings.seed)

    def as_json(self) -> dict[str, object]:
        """The fields as JSON values, as check_fingerprint records and compares them."""
        return self.model_dump(mode="json", exclude=set() if self.more_runs else {"more_runs"})


def _simulation_label(settings: JobSettings) -> str | None:
    if not settings.simulate:
        return None
    sim = settings.simulation
    if settings.judge_profile is not None:
        return f"{settings.simulate}:profile={Path(settings.judge_profile).resolve()}"
    return f"{settings.simulate}:{sim.score_noise}:{sim.flip_prob}:{sim.position_bias}"


def _build_engine(settings: JobSettings, dataset: BeirFolder, log: Callable[[str], None]
                  ) -> Engine:
    if settings.simulate is None:
        options = {k: v for k, v in (("tokenizer", settings.tokenizer),
                                     ("max_model_len", settings.max_model_len)) if v}
        engine = build_engine(settings.model, settings.base_url, settings.api_key,
                              settings.max_concurrency, options)
        if getattr(engine, "detected", ""):
            log(engine.detected)  # type: ignore[attr-defined]
        return engine
    profile = load_profile(settings.judge_profile) if settings.judge_profile else None
    judge = simulated_judge(settings.simulate, dataset, settings.simulation, seed=settings.seed,
                            profile=profile)
    log(f"SIMULATED JUDGE: answers come from {settings.simulate}, not from a model "
        f"({judge.model_name})")
    return judge


def _run_on_engine(settings: JobSettings, spec: MethodSpec, params: BaseModel,
                   dataset: BeirFolder, index: CorpusIndex | None,
                   requests: Sequence[RerankRequest | SearchRequest], store: JobStore | None,
                   on_progress: Callable[[JobProgress], None] | None,
                   log: Callable[[str], None]) -> JobReport:
    # A method that makes no LLM call (retrieve) loads no model.
    inner = _build_engine(settings, dataset, log) if spec.uses_engine else NoEngine()
    if isinstance(inner, SimulatedJudge) and index is not None:
        for name in tree_names(index):  # LATTICE: what each node description stands for
            inner.learn_tree(load_tree(index, name))
    engine: Engine = CachingEngine(inner, store) if store is not None else inner
    try:
        reranker = Reranker(spec.name, engine=engine, params=params, strict=settings.strict,
                            seed=settings.seed, index=index,
                            retriever=settings.retriever if index is not None else None,
                            depth=settings.depth)
        return run_job(reranker, requests, store,
                       _progress_callback(inner, requests, store, on_progress))
    finally:
        engine.close()
        if engine is not inner:
            inner.close()


def _progress_callback(engine: Engine, requests: Sequence[RerankRequest | SearchRequest],
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
