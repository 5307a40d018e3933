"""`make demo`: rerank a few DL19 queries with the embedded judge on this machine's CPU and
print nDCG@10 before (BM25) and after.

    python bench/demo.py [--queries 5] [--depth 20] [--method pointwise]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import DL19, load_job  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--queries", type=int, default=5)
    parser.add_argument("--depth", type=int, default=20)
    parser.add_argument("--method", default="pointwise")
    parser.add_argument("--data", type=Path, default=DL19)
    parser.add_argument("-v", "--verbose", action="store_true", help="show vLLM's log too")
    args = parser.parse_args()
    out_dir = Path(tempfile.mkdtemp(prefix="rerankgraph-demo-"))
    import contextlib

    from rerankgraph.serving.platform import route_engine_logs, stderr_to_file

    log_file = str(out_dir / "engine.log")
    route_engine_logs(log_file, echo=args.verbose)
    print(f"engine log: {log_file}")
    quiet = contextlib.nullcontext() if args.verbose else stderr_to_file(log_file)

    from rerankgraph.data import (
        first_stage_lines,
        run_lines,
        write_trec_run,
    )
    from rerankgraph.evaluation import evaluate_run
    from rerankgraph.sdk import Reranker

    started = time.perf_counter()
    job, first_stage = load_job(args.data, args.queries, args.depth)
    with quiet, Reranker(args.method) as reranker:
        load_started = time.perf_counter()
        engine = reranker.engine
        load_s = time.perf_counter() - load_started
        rerank_started = time.perf_counter()
        results = reranker.rerank_batch(job.requests)
        rerank_s = time.perf_counter() - rerank_started
    failed = [r for r in results if not r.ok]
    if failed:
        raise SystemExit(f"{len(failed)} queries failed: {failed[0].error}")
    bm25_path, reranked_path = out_dir / "bm25.trec", out_dir / f"{args.method}.trec"
    qids = [r.query.id for r in job.requests]
    write_trec_run(bm25_path, {q: first_stage_lines(q, first_stage[q], "bm25") for q in qids})
    write_trec_run(reranked_path, {r.query_id: run_lines(r, first_stage[r.query_id], args.method)
                                   for r in results})
    qrels = args.data / "qrels.tsv"
    before = evaluate_run(qrels, bm25_path, ["nDCG@10"])["nDCG@10"]
    after = evaluate_run(qrels, reranked_path, ["nDCG@10"])["nDCG@10"]
    tokens = sum(r.provenance.prompt_tokens + r.provenance.completion_tokens for r in results)
    calls = sum(r.provenance.llm_calls for r in results)
    fallbacks = sum(r.provenance.fallbacks + r.provenance.repaired for r in results)
    print(f"\nDL19, {len(qids)} queries, BM25 top-{args.depth} reranked by '{args.method}' "
          f"with {engine.model_name}")
    print(f"  nDCG@10 before (BM25): {before:.4f}")
    print(f"  nDCG@10 after        : {after:.4f}")
    print(f"  engine load {load_s:.1f} s; rerank {rerank_s:.1f} s for {calls} LLM calls, "
          f"{tokens} tokens ({tokens / rerank_s:,.0f} tok/s); repaired or fallback replies: "
          f"{fallbacks}")
    print(f"  total wall time {time.perf_counter() - started:.1f} s; runs in {out_dir}")


if __name__ == "__main__":
    main()
