"""Command line: each command parses its options (declared once, in options.py), builds
one settings record and calls one job or SDK function; console.py shows the results.

A new command follows the same three steps: compose options from `opt`, build the
settings record of the function it calls, hand the result to a `console` printer.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from rerankgraph import console
from rerankgraph import options as opt

if TYPE_CHECKING:
    from rerankgraph.jobs.rerank import JobSettings

parse_params = opt.parse_params  # kept importable here for callers of the old name

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


@app.callback()
def _options(verbose: Annotated[bool, typer.Option(
        "--verbose", "-v", help="show the traceback of an unexpected error")] = False,
        version: Annotated[bool, typer.Option(
            "--version", callback=console.print_version, is_eager=True,
            help="print the version and exit")] = False) -> None:
    console.flags.verbose = verbose


@app.command()
def rerank(
    data: opt.Data, out_path: opt.Out, run: opt.Run = None, index: opt.Index = None,
    retriever: opt.Retriever = "bm25", k: opt.K = 100, method: opt.Method = "pointwise",
    queries: opt.Queries = None, depth: opt.Depth = 20, model: opt.Model = None,
    base_url: opt.BaseUrl = None, api_key: opt.ApiKey = None, param: opt.Param = None,
    seed: opt.Seed = 0, strict: opt.Strict = False, force: opt.Force = False,
    provenance: opt.Provenance = None, tokenizer: opt.Tokenizer = None,
    max_model_len: opt.MaxLen = None,
) -> None:
    """Rerank a TREC run's top-K and write a TREC run (the rest keeps first-stage order);
    with --index, retrieve the candidates first, or run a search method."""
    from rerankgraph.jobs.rerank import JobSettings

    _rerank(JobSettings(
        data=data, out=out_path, run=opt.first(run), more_runs=opt.rest(run), index=index,
        retriever=retriever, k=k, method=method, params=opt.parse_params(param),
        queries=queries, depth=depth, seed=seed, strict=strict, provenance=provenance,
        model=model, base_url=base_url, api_key=api_key, force=force, tokenizer=tokenizer,
        max_model_len=max_model_len))


@app.command()
def batch(
    data: opt.Data, out_path: opt.Out, run: opt.Run = None, index: opt.Index = None,
    retriever: opt.Retriever = "bm25", k: opt.K = 100, method: opt.Method = "pointwise",
    queries: opt.Queries = None, depth: opt.Depth = 20, model: opt.Model = None,
    base_url: opt.BaseUrl = None, api_key: opt.ApiKey = None, param: opt.Param = None,
    seed: opt.Seed = 0, strict: opt.Strict = False, force: opt.Force = False,
    provenance: opt.BatchProvenance = None, tokenizer: opt.Tokenizer = None,
    max_model_len: opt.MaxLen = None, state: opt.State = None, fresh: opt.Fresh = False,
    max_concurrency: opt.MaxConcurrency = 64, backend: opt.Backend = "vllm",
    simulate: opt.Simulate = None, sim_noise: opt.SimNoise = 0.0, sim_flip: opt.SimFlip = 0.0,
    sim_position_bias: opt.SimPositionBias = 0.0, judge_profile: opt.JudgeProfile = None,
) -> None:
    """Durable batch job: resumable after a crash (finished queries and engine replies
    are kept in a SQLite state file), with a per-query provenance JSONL and a summary."""
    from rerankgraph.jobs.rerank import JobSettings
    from rerankgraph.simulation import SimulationSettings

    _rerank(JobSettings(
        data=data, out=out_path, run=opt.first(run), more_runs=opt.rest(run), index=index,
        retriever=retriever, k=k, method=method, params=opt.parse_params(param),
        queries=queries, depth=depth, seed=seed, strict=strict, provenance=provenance,
        model=model, base_url=base_url, api_key=api_key, max_concurrency=max_concurrency,
        tokenizer=tokenizer, max_model_len=max_model_len,
        backend=backend, durable=True, state=state, fresh=fresh, simulate=simulate, force=force,
        simulation=SimulationSettings(score_noise=sim_noise, flip_prob=sim_flip,
                                      position_bias=sim_position_bias),
        judge_profile=judge_profile))


def _rerank(settings: JobSettings) -> None:
    """`rerank` and `batch`: the job under a progress bar, then its summary; exits 1
    when a query failed, 130 on Ctrl-C (saying what was kept)."""
    from rerankgraph.jobs.rerank import run_rerank_job

    bar = console.JobBar()
    with console.engine_run(bar, console.interrupted_line(settings.state_path)) as log:
        report = run_rerank_job(settings, on_progress=bar.update, log=console.say,
                                on_engine_load=log.announce)
    console.job_outcome(report, settings.out)


@app.command()
def assess(
    data: opt.Data, pool: opt.Pool, out_path: opt.LabelsOut, method: opt.AssessMethod = "pointwise",
    depth: opt.AssessDepth = 20, qrels: opt.HumanQrels = None, runs: opt.AgreementRuns = None,
    binary_threshold: opt.BinaryThreshold = 2, queries: opt.Queries = None,
    model: opt.Model = None, base_url: opt.BaseUrl = None, api_key: opt.ApiKey = None,
    param: opt.Param = None, seed: opt.Seed = 0, strict: opt.Strict = False,
    force: opt.Force = False, provenance: opt.BatchProvenance = None,
    tokenizer: opt.Tokenizer = None, max_model_len: opt.MaxLen = None, state: opt.State = None,
    fresh: opt.Fresh = False, max_concurrency: opt.MaxConcurrency = 64,
    simulate: opt.Simulate = None, sim_noise: opt.SimNoise = 0.0, sim_flip: opt.SimFlip = 0.0,
    sim_position_bias: opt.SimPositionBias = 0.0, judge_profile: opt.JudgeProfile = None,
) -> None:
    """Label every (query, document) pair of the pool's top-K with a relevance grade 0-3
    (UMBRELA-style) and write TREC qrels; a durable batch job like `batch`. With
    --qrels, print the agreement with them and write LABELS.agreement.json."""
    from rerankgraph.jobs.assess import AssessSettings, run_assess_job
    from rerankgraph.simulation import SimulationSettings

    settings = AssessSettings.make(
        method, out_path, human=qrels, runs=tuple(runs or ()), data=data, run=pool,
        params=opt.parse_params(param), queries=queries, depth=depth, seed=seed, strict=strict,
        provenance=provenance, model=model, base_url=base_url, api_key=api_key,
        max_concurrency=max_concurrency, tokenizer=tokenizer, max_model_len=max_model_len,
        state=state, fresh=fresh, simulate=simulate, force=force,
        simulation=SimulationSettings(score_noise=sim_noise, flip_prob=sim_flip,
                                      position_bias=sim_position_bias),
        judge_profile=judge_profile)
    bar = console.JobBar()
    with console.engine_run(bar, console.interrupted_line(settings.job.state_path)) as log:
        report = run_assess_job(settings, on_progress=bar.update, log=console.say,
                                on_engine_load=log.announce)
    console.say(report.summary_line(out_path))
    if report.missing_docs:
        console.print_lines([f"skipped {report.missing_docs} pool documents missing from "
                             f"{data / 'corpus.jsonl'}"])
    if qrels is not None:
        from rerankgraph.report.agreement import measure_agreement

        console.print_lines(measure_agreement(report.labels, qrels, out_path,
                                              runs=tuple(runs or ()),
                                              binary_threshold=binary_threshold,
                                              skipped=report.missing_docs))
    console.job_outcome(report.job, out_path, summary=False)


@index_app.command("build")
def index_build(
    data: opt.Data, out_path: opt.IndexOut, dense: opt.Dense = True,
    model: opt.Embedder = None, rebuild: opt.IndexRebuild = False,
) -> None:
    """Build (or complete) the index of DATA/corpus.jsonl: BM25, embeddings, manifest.
    Parts already built over the same corpus are reused."""
    from rerankgraph.index.corpus import build_index

    with console.DocsBar() as bar:
        index, report = build_index(data, out_path, dense=dense, model=model, rebuild=rebuild,
                                    progress=bar.update)
    console.say(report.summary_line(index.path))


@app.command()
def retrieve(
    index: opt.BuiltIndex, data: opt.Data, out_path: opt.Out,
    retriever: opt.Retriever = "bm25", k: opt.RetrieveK = 100,
    queries: opt.FirstQueries = None, rrf_k: opt.RrfK = 60, force: opt.Force = False,
) -> None:
    """Write a first-stage TREC run of DATA's queries from the index."""
    from rerankgraph.jobs.retrieve import RetrieveSettings, run_retrieve

    report = run_retrieve(RetrieveSettings(
        index=index, data=data, out=out_path, retriever=retriever, k=k, queries=queries,
        rrf_k=rrf_k, force=force))
    console.say(report.summary_line())


@tree_app.command("build")
def tree_build(
    index: opt.TreeIndex, strategy: opt.Strategy = "bottom-up", branching: opt.Branching = 10,
    max_leaf: opt.MaxLeaf = 20, summary_item_tokens: opt.SummaryItemTokens = 32,
    summary_words: opt.SummaryWords = 30, seed: opt.Seed = 0, model: opt.Model = None,
    base_url: opt.BaseUrl = None, api_key: opt.ApiKey = None,
    rebuild: opt.TreeRebuild = False,
) -> None:
    """Cluster the index's embeddings into a tree and have the LLM describe every node,
    bottom-up. A killed build resumes; a finished one is reused."""
    from rerankgraph.index.tree import TreeSettings
    from rerankgraph.jobs.tree import TreeJobSettings, run_tree_job

    settings = TreeJobSettings(
        index=index, model=model, base_url=base_url, api_key=api_key, rebuild=rebuild,
        tree=TreeSettings(strategy=strategy, branching=branching, max_leaf=max_leaf,
                          seed=seed, summary_item_tokens=summary_item_tokens,
                          summary_words=summary_words))
    bar = console.TreeBar()
    with console.engine_run(bar) as log:  # bad input fails before a model loads
        report = run_tree_job(settings, on_progress=bar.update, on_engine_load=log.announce)
    console.say(report.summary_line())


@app.command("eval")
def evaluate(runs: opt.EvalRuns, qrels: opt.Qrels, measure: opt.Measure = None,
             rel: opt.Rel = 1) -> None:
    """nDCG@10 and Recall@100 (or --measure ...) of each run, through ir-measures."""
    from rerankgraph.evaluation import evaluate_runs

    console.print_scores(evaluate_runs(qrels, runs, measure, rel=rel))


@app.command()
def report(runs: opt.ReportRuns, qrels: opt.Qrels, out_path: opt.ReportOut,
           provenance: opt.ReportProvenance = None, baseline: opt.Baseline = None,
           shared: opt.Shared = False, agreement: opt.Agreement = None,
           data: opt.ReportData = None, rel: opt.Rel = 1) -> None:
    """Compare runs in one self-contained HTML file: scores and costs, paired
    significance against the baseline, per-query wins and losses, cost against quality
    and a drill-down per query; the summary goes to stdout."""
    from rerankgraph.report import ReportSettings, build_report

    console.print_report(build_report(ReportSettings(
        runs=runs, qrels=qrels, out=out_path, provenance=tuple(provenance or ()),
        baseline=baseline, shared=shared, agreement=agreement, data=data, rel=rel),
        log=console.say))


@app.command()
def methods(model: opt.Model = None) -> None:
    """List the registered methods and their parameters, with the defaults that run on
    --model (default: the embedded judge), its fusion included."""
    from rerankgraph.registry import list_methods, running_defaults

    console.print_methods(list_methods(), lambda spec: running_defaults(spec, model))


@app.command()
def graph(method: opt.MethodName, param: opt.Param = None) -> None:
    """Print the Mermaid diagram of a method's compiled LangGraph graph (LangGraph's own
    drawing; paste it into any Mermaid viewer, or a Markdown file). A cascade is drawn
    for the stages its --param gives."""
    from rerankgraph.sdk import draw_mermaid

    typer.echo(draw_mermaid(method, opt.parse_params(param)), nl=False)


@app.command("api")
def api_command(
    method: opt.Method = "pointwise", model: opt.Model = None, base_url: opt.BaseUrl = None,
    index: opt.Index = None, param: opt.Param = None, tokenizer: opt.Tokenizer = None,
    max_model_len: opt.MaxLen = None, host: opt.Host = "127.0.0.1", port: opt.ApiPort = 8080,
    api_key: opt.ServiceKey = None, max_documents: opt.MaxDocuments = 1000,
    max_bytes: opt.MaxBytes = 4 * 1024 * 1024, max_in_flight: opt.MaxInFlight = 32,
    request_timeout: opt.RequestTimeout = 300.0, shutdown_grace: opt.ShutdownGrace = 30.0,
    max_query_tokens: opt.MaxQueryTokens = 256,
) -> None:
    """Serve POST /v1/rerank (Cohere/Jina request and response shape), GET /health,
    GET /metrics (Prometheus) and the OpenAPI spec at /openapi.json; every request
    shares one engine. SIGTERM drains: nothing new is taken, and requests in flight
    finish or are answered 503 when the grace period ends."""
    from rerankgraph.api import ServiceSettings, run_service

    log = console.engine_log()
    log.announce()
    run_service(ServiceSettings(
        method=method, model=model, base_url=base_url, index=index,
        params=opt.parse_params(param), tokenizer=tokenizer, max_model_len=max_model_len,
        host=host, port=port, api_key=api_key, max_documents=max_documents,
        max_bytes=max_bytes, max_in_flight=max_in_flight, request_timeout_s=request_timeout,
        shutdown_grace_s=shutdown_grace, max_query_tokens=max_query_tokens),
        log=console.say, while_loading=log.quiet)


@app.command()
def serve(
    model: opt.Model = None, host: opt.Host = "127.0.0.1", port: opt.ServerPort = 8000,
    api_key: opt.ApiKey = None, max_model_len: opt.ServedLen = 4096,
    vllm_arg: opt.VllmArg = None,
) -> None:
    """Start a vLLM OpenAI-compatible server for the judge and print its base URL."""
    from rerankgraph.serving.server import ServerSettings, serve_until_stopped

    serve_until_stopped(ServerSettings(
        model=model, host=host, port=port, api_key=api_key, max_model_len=max_model_len,
        extra_args=tuple(vllm_arg or ())), on_ready=console.server_ready)


@models_app.command("pull")
def models_pull(name: opt.JudgeName = "smollm2-135m", force: opt.Reconvert = False) -> None:
    """Download, check and convert a judge model once; print its folder."""
    from rerankgraph.serving.model_store import pull_model

    console.pulling(name)
    console.out.print(str(pull_model(name, force=force)))


@models_app.command("list")
def models_list() -> None:
    """The judges `models pull` knows, and where each one is cached."""
    console.print_judges()


@judge_app.command("profile")
def judge_profile(
    data: opt.Data, out_path: opt.ProfileOut, run: opt.ProfileRun,
    qrels: opt.ProfileQrels = None, queries: opt.ProfileQueries = 5, skip: opt.Skip = 0,
    depth: opt.Depth = 20, model: opt.Model = None, base_url: opt.BaseUrl = None,
    api_key: opt.ApiKey = None,
    methods: opt.ProfileMethods = "pointwise,rubric,listwise,setwise,pairwise",
) -> None:
    """Measure a judge: score distributions per qrels grade, order-keeping and
    first-position rates, cost per call. Writes a profile JSON for `batch --simulate
    QRELS --judge-profile`, and prints it as a short table."""
    from rerankgraph.jobs.profile import ProfileSettings, profile_judge

    settings = ProfileSettings(
        data=data, run=run, qrels=qrels, out=out_path, model=model, base_url=base_url,
        api_key=api_key, queries=queries, skip=skip, depth=depth, methods=opt.names(methods))
    with console.engine_run():  # a missing --qrels fails before any engine loads
        profile = profile_judge(settings, log=console.say)
    console.print_profile(profile, out_path)


def main() -> None:
    """Entry point. Exit codes: 0 done; 1 failed queries, engine errors or any unexpected
    error (one line; -v shows the traceback); 2 bad input; 130 interrupted."""
    console.run(app)


if __name__ == "__main__":
    main()
