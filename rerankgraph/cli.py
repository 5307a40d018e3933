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


@app.command()
def rerank(
    method: MethodOpt = "pointwise",
    data: Annotated[Path, typer.Option(help="BEIR folder: corpus.jsonl, queries.jsonl")] = ...,  # type: ignore[assignment]
    run: Annotated[Path, typer.Option(help="first-stage TREC run")] = ...,  # type: ignore[assignment]
    out_path: Annotated[Path, typer.Option("--out", help="TREC run to write")] = ...,  # type: ignore[assignment]
    queries: Annotated[int | None, typer.Option(help="rerank only the run's first N queries")] = None,
    depth: Annotated[int, typer.Option(help="rerank each query's top K candidates")] = 20,
    model: ModelOpt = None,
    base_url: BaseUrlOpt = None,
    api_key: ApiKeyOpt = None,
    param: Annotated[list[str] | None, typer.Option(help="method parameter name=value")] = None,
    seed: Annotated[int, typer.Option(help="seed for methods that sample or shuffle")] = 0,
    strict: Annotated[bool, typer.Option(help="fail a query on any repaired or fallback reply")] = False,
    provenance: Annotated[Path | None, typer.Option(help="JSONL of per-query provenance")] = None,
) -> None:
    """Rerank a TREC run's top-K and write a TREC run (the rest keeps first-stage order)."""
    from rerankgraph.data import build_job, load_beir, read_trec_run, run_lines, write_trec_run
    from rerankgraph.registry import get_method
    from rerankgraph.sdk import Reranker

    spec = get_method(method)
    params = spec.make_params(parse_params(param or []))
    dataset = load_beir(data)
    first_stage = read_trec_run(run)
    job = build_job(dataset, first_stage, depth=depth, queries=queries)
    missing = sum(len(v) for v in job.missing_docs.values())
    if missing:
        err.print(f"warning: {missing} doc ids of the run are not in {data / 'corpus.jsonl'} "
                  f"({len(job.missing_docs)} queries); they were skipped")
    for qid, why in job.skipped_queries.items():
        err.print(f"warning: query {qid!r} skipped: {why}")
    if not job.requests:
        raise RerankgraphError("no query is left to rerank after the skips above")

    _quiet_vllm()
    reranker = Reranker(spec.name, model=model, base_url=base_url, api_key=api_key,
                        params=params, strict=strict, seed=seed)
    err.print(f"loading engine ({base_url or model or 'embedded judge'}) ...")
    engine = reranker.engine
    tag = f"rerankgraph-{spec.name}"
    lines: dict[str, list[str]] = {}
    failures: dict[str, str] = {}
    started = time.perf_counter()
    with _progress() as bar:
        task = bar.add_task("rerank", total=len(job.requests), tps="0")

        def on_result(result: Any) -> None:
            if result.ok:
                lines[result.query_id] = run_lines(result, first_stage[result.query_id], tag)
            else:
                failures[result.query_id] = result.error
            tokens = engine.stats.prompt_tokens + engine.stats.completion_tokens
            rate = tokens / max(time.perf_counter() - started, 1e-9)
            bar.update(task, advance=1, tps=f"{rate:,.0f}")

        results = reranker.rerank_batch(job.requests, on_result=on_result)
    reranker.close()
    write_trec_run(out_path, lines)
    if provenance is not None:
        with provenance.open("w", encoding="utf-8") as sink:
            for result in results:
                sink.write(result.model_dump_json(exclude={"ranking"}) + "\n")
    _print_summary(results, time.perf_counter() - started, out_path)
    if failures:
        for qid, error in failures.items():
            err.print(f"failed: query {qid!r}: {error}")
        err.print(f"{len(failures)} of {len(results)} queries failed; their lines are not in "
                  f"{out_path}. Rerun the same command to retry them.")
        raise typer.Exit(1)


def _progress() -> Progress:
    return Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TextColumn("queries, {task.fields[tps]} tok/s"), TimeRemainingColumn(),
                    console=err, transient=False)


def _print_summary(results: list[Any], wall_s: float, out_path: Path) -> None:
    done = [r.provenance for r in results if r.ok]
    prompt = sum(p.prompt_tokens for p in done)
    completion = sum(p.completion_tokens for p in done)
    err.print(
        f"wrote {out_path}: {len(done)} queries reranked, {len(results) - len(done)} failed, "
        f"{sum(p.llm_calls for p in done)} LLM calls, {prompt} prompt + {completion} "
        f"completion tokens, {sum(p.repaired for p in done)} repaired, "
        f"{sum(p.fallbacks for p in done)} fallbacks, "
        f"{sum(p.truncated_docs for p in done)} truncated docs, {wall_s:.1f} s, "
        f"{(prompt + completion) / max(wall_s, 1e-9):,.0f} tok/s", highlight=False, soft_wrap=True)


@app.command("eval")
def evaluate(
    runs: Annotated[list[Path], typer.Argument(help="TREC runs to evaluate")],
    qrels: Annotated[Path, typer.Option(help="qrels (TSV with header, or TREC format)")] = ...,  # type: ignore[assignment]
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
        help="extra vLLM server argument, repeatable (e.g. --vllm-arg=--data-parallel-size=2)")] = None,
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
        app(standalone_mode=False)
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
