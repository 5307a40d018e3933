"""LATTICE benchmarks: tree builds, then search with the simulated and the embedded judge.

    python bench/lattice.py tree --index out/idx-cranfield --strategy bottom-up top-down
    python bench/lattice.py simulate --data ../shared/data/beir-scifact --index out/idx-scifact
    python bench/lattice.py real --data ../shared/data/beir-scifact --index out/idx-scifact \
        --queries 10

`rerank` runs rerank mode on DL19's BM25 run (`--queries 10 --depth 20`, as the methods
table). `tree` builds both strategies with the embedded judge writing the summaries. `simulate`
builds its own simulated-summary tree in a temporary copy of the index (the judge must
know which documents each description stands for) and walks it for every query at each
noise level and iteration budget. `real` walks the index's bottom-up tree with the
embedded judge; shorter budgets replay the longest run's replies from a cache, which is
exact at temperature 0 (a shorter walk is a prefix of a longer one).
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import write_section  # noqa: E402

from rerankgraph.data import load_beir, read_qrels, write_trec_run  # noqa: E402
from rerankgraph.evaluation import evaluate_run  # noqa: E402
from rerankgraph.index.corpus import CorpusIndex  # noqa: E402
from rerankgraph.index.tree import STRATEGIES, TreeSettings, load_tree  # noqa: E402
from rerankgraph.jobs.store import CachingEngine, JobStore  # noqa: E402
from rerankgraph.jobs.tree import build_tree  # noqa: E402
from rerankgraph.sdk import Reranker  # noqa: E402
from rerankgraph.simulation import SimulatedJudge, SimulationSettings  # noqa: E402

MEASURES = ["nDCG@10", "R@100"]


def tree_rows(indexes: list[Path], strategies: list[str]) -> str:
    from rerankgraph.serving.factory import build_engine

    engine = build_engine()
    rows = ["| corpus | strategy | docs | nodes | depth | LLM calls | tokens | fallbacks | "
            "cluster s | summaries s | children per internal node | docs per leaf |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    try:
        for path in indexes:
            index = CorpusIndex(path)
            for strategy in strategies:
                report = build_tree(index, TreeSettings(strategy=strategy), engine,
                                    rebuild=True)
                meta = report.tree.meta
                hist = report.tree.branching_histogram()
                rows.append(
                    f"| {path.name} | {strategy} | {meta['documents']} | {meta['nodes']} | "
                    f"{meta['depth']} | {meta['llm_calls']} | "
                    f"{meta['prompt_tokens'] + meta['completion_tokens']:,} | "
                    f"{meta['fallbacks']} | {report.seconds['cluster']:.1f} | "
                    f"{report.seconds['summaries']:.0f} | {_spread(hist['internal'])} | "
                    f"{_spread(hist['leaf'])} |")
                print(rows[-1], flush=True)
    finally:
        engine.close()
    return "\n".join(rows)


def _spread(histogram: dict[int, int]) -> str:
    """min-median-max of a {size: count} histogram."""
    sizes = sorted(s for s, c in histogram.items() for _ in range(c))
    return f"{sizes[0]}-{statistics.median(sizes):g}-{sizes[-1]}" if sizes else "-"


def evaluate(results: list, qrels: Path, out: Path) -> dict[str, float]:
    """Means over exactly the queries asked (a query that failed or found nothing counts
    0), not over every judged query of the qrels."""
    write_trec_run(out, {r.query_id: [f"{r.query_id} Q0 {d.doc_id} {i} {d.score:.6f} lattice"
                                      for i, d in enumerate(r.ranking, start=1)]
                         for r in results if r.ok})
    asked = qrels_of(qrels, {r.query_id for r in results}, out.with_suffix(".qrels"))
    return evaluate_run(asked, out, MEASURES, only_run_queries=False)


def qrels_of(qrels: Path, queries: set[str] | dict[str, str], out: Path) -> Path:
    """A qrels file holding only `queries`' judgments."""
    judged = read_qrels(qrels)
    out.write_text("query-id\tcorpus-id\tscore\n" + "".join(
        f"{q}\t{d}\t{g}\n" for q in queries for d, g in judged.get(q, {}).items()))
    return out


def baselines(index: CorpusIndex, queries: dict[str, str], qrels: Path, folder: Path) -> str:
    rows = []
    for name in ("bm25", "dense"):
        hits = index.retriever(name).search(queries, 100)
        out = folder / f"{name}.trec"
        write_trec_run(out, {q: [f"{q} Q0 {d} {i} {s:.6f} {name}"
                                 for i, (d, s) in enumerate(h, start=1)]
                             for q, h in hits.items()})
        asked = qrels_of(qrels, queries, folder / f"{name}.qrels")
        scores = evaluate_run(asked, out, MEASURES, only_run_queries=False)
        rows.append(f"| {name} (no LLM) | - | - | - | {scores['nDCG@10']:.4f} | "
                    f"{scores['R@100']:.4f} |")
    return "\n".join(rows)


def queries_with_qrels(data: Path, limit: int | None) -> tuple[dict[str, str], Path]:
    qrels_path = data / "qrels.tsv"
    judged = read_qrels(qrels_path)
    dataset = load_beir(data)
    queries = {q: t for q, t in dataset.queries.items() if q in judged}
    return dict(list(queries.items())[:limit]), qrels_path


def simulate(data: Path, index_path: Path, noises: list[float], budgets: list[int],
             limit: int | None, settings: list[dict] | None = None) -> str:
    """Each of `settings` (LatticeParams values; default: the defaults) at each noise
    and iteration budget."""
    queries, qrels_path = queries_with_qrels(data, limit)
    dataset = load_beir(data)
    qrels = read_qrels(qrels_path)
    with tempfile.TemporaryDirectory() as temp:
        copy = Path(temp) / "index"
        shutil.copytree(index_path, copy, ignore=shutil.ignore_patterns("derived"))
        index = CorpusIndex(copy)
        index.manifest.pop("derived", None)
        writer = SimulatedJudge(qrels, dataset.queries, dataset.corpus)
        build_tree(index, TreeSettings(strategy="bottom-up"), writer)
        tree = load_tree(CorpusIndex(copy))
        rows = [f"Simulated judge, {len(queries)} queries of {data.name}, bottom-up tree "
                f"({len(tree.nodes)} nodes, depth {tree.depth}), beam 2.", "",
                "| judge | settings | iterations | LLM calls/query | nDCG@10 | R@100 |",
                "|---|---|---|---|---|---|", baselines(CorpusIndex(copy), queries, qrels_path,
                                                        Path(temp))]
        for setting, noise, budget in ((s, n, b) for s in settings or [{}] for n in noises
                                   for b in budgets):
            judge = SimulatedJudge(qrels, dataset.queries, dataset.corpus,
                                   SimulationSettings(score_noise=noise), seed=0)
            judge.learn_tree(tree)
            started = time.perf_counter()
            with Reranker("lattice", engine=judge, index=CorpusIndex(copy),
                          params={"iterations": budget, **setting}) as reranker:
                results = reranker.search_batch(queries, k=100)
            calls = statistics.mean(r.provenance.llm_calls for r in results if r.ok)
            scores = evaluate(results, qrels_path, Path(temp) / "run.trec")
            label = ", ".join(f"{k}={v}" for k, v in setting.items()) or "defaults"
            rows.append(f"| simulated noise {noise:g} | {label} | {budget} | {calls:.1f} | "
                        f"{scores['nDCG@10']:.4f} | {scores['R@100']:.4f} |")
            print(rows[-1], f"({time.perf_counter() - started:.0f} s)", flush=True)
    return "\n".join(rows)


def real(data: Path, index_path: Path, budgets: list[int], limit: int, model: str) -> str:
    from rerankgraph.serving.factory import build_engine
    from rerankgraph.serving.model_store import EMBEDDED_ALIASES, resolve_model

    queries, qrels_path = queries_with_qrels(data, limit)
    index = CorpusIndex(index_path)
    tree = load_tree(index, "bottom-up")
    judge = "SmolLM2-135M" if model in EMBEDDED_ALIASES else model
    rows = [f"Judge {judge}, first {len(queries)} judged queries of "
            f"{data.name}, the index's bottom-up tree ({len(tree.nodes)} nodes, written by "
            f"{tree.meta['summary_model']}), beam 2.", "",
            "| judge | iterations | LLM calls/query | tokens/query | s/query | unreadable "
            "slates | nDCG@10 | R@100 |", "|---|---|---|---|---|---|---|---|"]
    with tempfile.TemporaryDirectory() as temp:
        # the baselines' three dashes (settings, iterations, calls) become five
        rows.append(baselines(index, queries, qrels_path, Path(temp)).replace(
            "| - | - | - |", "| - | - | - | - | - |"))
        store = JobStore(Path(temp) / "replies.sqlite")
        inner = build_engine(resolve_model(model))
        engine = CachingEngine(inner, store)
        try:
            for budget in sorted(budgets, reverse=True):
                started = time.perf_counter()
                with Reranker("lattice", engine=engine, index=index,
                              params={"iterations": budget, "tree": "bottom-up"}) as reranker:
                    results = reranker.search_batch(queries, k=100)
                seconds = time.perf_counter() - started
                ok = [r for r in results if r.ok]
                calls = statistics.mean(r.provenance.llm_calls for r in ok)
                tokens = statistics.mean(r.provenance.prompt_tokens
                                         + r.provenance.completion_tokens for r in ok)
                unreadable = sum(r.provenance.fallbacks for r in ok)
                scores = evaluate(results, qrels_path, Path(temp) / "run.trec")
                fresh = "" if budget == max(budgets) else " (replayed)"
                rows.append(f"| {judge} | {budget} | {calls:.1f} | {tokens:,.0f} | "
                            f"{seconds / len(queries):.1f}{fresh} | {unreadable} | "
                            f"{scores['nDCG@10']:.4f} | {scores['R@100']:.4f} |")
                print(rows[-1], flush=True)
        finally:
            engine.close()
            inner.close()
            store.close()
    return "\n".join(rows)


def rerank_mode(queries: int, depth: int) -> str:
    """Rerank mode on DL19 (same queries and reading as bench/methods.py's table)."""
    from common import DL19, load_job

    from rerankgraph.data import first_stage_lines, run_lines

    job, first_stage = load_job(DL19, queries, depth)
    started = time.perf_counter()
    with Reranker("lattice") as reranker:
        results = reranker.rerank_batch(job.requests)
    seconds = time.perf_counter() - started
    ok = [r for r in results if r.ok]
    with tempfile.TemporaryDirectory() as temp:
        run, bm25 = Path(temp) / "lattice.trec", Path(temp) / "bm25.trec"
        write_trec_run(run, {r.query_id: run_lines(r, first_stage[r.query_id], "lattice")
                             for r in ok})
        write_trec_run(bm25, {q: first_stage_lines(q, first_stage[q], "bm25")
                              for q in (r.query_id for r in ok)})
        scores = {name: evaluate_run(DL19 / "qrels.tsv", path, ["nDCG@10"])["nDCG@10"]
                  for name, path in (("bm25", bm25), ("lattice", run))}
    calls = statistics.mean(r.provenance.llm_calls for r in ok)
    summaries = statistics.mean(r.provenance.trace[0]["llm_calls"] for r in ok)
    prompt = statistics.mean(r.provenance.prompt_tokens for r in ok)
    completion = statistics.mean(r.provenance.completion_tokens for r in ok)
    repaired = sum(r.provenance.repaired for r in ok)
    fallbacks = sum(r.provenance.fallbacks for r in ok)
    return "\n".join([
        f"DL19, first {len(ok)} queries of the BM25 run, top-{depth} reranked by lattice's "
        "rerank mode (a tree over each query's candidates, descriptions and slates by the "
        "embedded SmolLM2-135M judge), default parameters; the methods table's reading "
        "(nDCG@10 of the reranked head, then the BM25 tail).", "",
        "| method | nDCG@10 | calls/query (summaries) | prompt tok/query | completion "
        "tok/query | wall s (all queries) | repaired | fallbacks |",
        "|---|---|---|---|---|---|---|---|",
        f"| bm25 (first stage) | {scores['bm25']:.4f} | 0 | 0 | 0 | 0 | 0 | 0 |",
        f"| lattice (rerank mode) | {scores['lattice']:.4f} | {calls:.1f} ({summaries:.1f}) | "
        f"{prompt:,.0f} | {completion:,.0f} | {seconds:.0f} | {repaired} | {fallbacks} |"])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=["tree", "simulate", "real", "rerank"])
    parser.add_argument("--index", type=Path, action="append")
    parser.add_argument("--depth", type=int, default=20)
    parser.add_argument("--data", type=Path)
    parser.add_argument("--queries", type=int)
    parser.add_argument("--noise", type=float, nargs="+", default=[0.0, 0.25, 0.5])
    parser.add_argument("--iterations", type=int, nargs="+", default=[5, 10, 20, 40])
    parser.add_argument("--strategy", nargs="+", default=list(STRATEGIES))
    parser.add_argument("--settings", nargs="+", type=json.loads, default=[{}],
                        help='simulate: LatticeParams per row group, as JSON, e.g. \'{}\' '
                             '\'{"ranking": "calibrated"}\'')
    parser.add_argument("--model", default="smollm2-135m",
                        help="real: the judge (an alias of `rerankgraph models list`)")
    args = parser.parse_args()
    if args.mode == "rerank":
        write_section("lattice-rerank-dl19", rerank_mode(args.queries or 10, args.depth))
    elif args.mode == "tree":
        write_section(f"lattice-tree-{'-'.join(i.name for i in args.index)}",
                      tree_rows(args.index, args.strategy))
    elif args.mode == "simulate":
        write_section(f"lattice-simulated-{args.data.name}",
                      simulate(args.data, args.index[0], args.noise, args.iterations,
                               args.queries, args.settings))
    else:
        suffix = "" if args.model == "smollm2-135m" else f"-{args.model}"
        write_section(f"lattice-real-{args.data.name}{suffix}",
                      real(args.data, args.index[0], args.iterations, args.queries or 10,
                           args.model))


if __name__ == "__main__":
    main()
