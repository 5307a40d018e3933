"""Method table: every registered method on the same DL19 queries and depth, one engine.

    python bench/methods.py --queries 10 --depth 20 [--methods pointwise,listwise]

Writes nDCG@10, calls/query, prompt and completion tokens/query, wall time and
repairs/fallbacks per method into docs/benchmarks.md (section `methods`).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import DL19, DOC, load_job, write_section  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--queries", type=int, default=10)
    parser.add_argument("--depth", type=int, default=20)
    parser.add_argument("--methods", default="")
    parser.add_argument("--data", type=Path, default=DL19)
    args = parser.parse_args()
    os.environ.setdefault("VLLM_LOGGING_LEVEL", "WARNING")

    from rerankgraph.data import (
        first_stage_lines,
        run_lines,
        write_trec_run,
    )
    from rerankgraph.evaluation import evaluate_run
    from rerankgraph.registry import list_methods
    from rerankgraph.sdk import Reranker
    from rerankgraph.serving.model_store import pull_embedded_model
    from rerankgraph.serving.vllm_local import VllmEngine

    # vic fuses several runs; this table reranks one (its rows are in the rvr section).
    names = (args.methods.split(",") if args.methods else
             [m.name for m in list_methods() if m.kind == "rerank" and not m.fuses])
    job, first_stage = load_job(args.data, args.queries, args.depth)
    qids = [r.query.id for r in job.requests]
    out = Path(tempfile.mkdtemp(prefix="rerankgraph-methods-"))
    qrels = args.data / "qrels.tsv"
    bm25 = out / "bm25.trec"
    write_trec_run(bm25, {q: first_stage_lines(q, first_stage[q], "bm25") for q in qids})
    rows = [("bm25 (first stage)", evaluate_run(qrels, bm25, ["nDCG@10"])["nDCG@10"],
             0, 0, 0, 0.0, 0, 0, "", "")]
    engine = VllmEngine(str(pull_embedded_model()))
    try:
        for name in names:
            reranker = Reranker(name, engine=engine)
            started = time.perf_counter()
            results = reranker.rerank_batch(job.requests)
            wall = time.perf_counter() - started
            failed = [r for r in results if not r.ok]
            if failed:
                raise SystemExit(f"{name}: {len(failed)} queries failed: {failed[0].error}")
            path = out / f"{name}.trec"
            write_trec_run(path, {r.query_id: run_lines(r, first_stage[r.query_id], name)
                                  for r in results})
            n = len(results)
            p = [r.provenance for r in results]
            rows.append((name, evaluate_run(qrels, path, ["nDCG@10"])["nDCG@10"],
                         sum(x.llm_calls for x in p) / n, sum(x.prompt_tokens for x in p) / n,
                         sum(x.completion_tokens for x in p) / n, wall,
                         sum(x.repaired for x in p), sum(x.fallbacks for x in p),
                         f"{sum(x.unchanged for x in p)} of {sum(x.llm_calls for x in p)}",
                         _top10_moved(results, first_stage)))
            print(rows[-1], flush=True)
    finally:
        engine.close()
    lines = [f"DL19, first {len(qids)} queries of the BM25 run, top-{args.depth} reranked, "
             f"embedded judge SmolLM2-135M-Instruct (float32, in-process vLLM, CPU), default "
             "parameters of each method. All queries of a method run concurrently.\n",
             "| method | nDCG@10 | calls/query | prompt tok/query | completion tok/query "
             "| wall s (all queries) | repaired | fallbacks | unchanged calls | top-10 moved |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for name, ndcg, calls, prompt, completion, wall, repaired, fallbacks, unchanged, moved in rows:
        lines.append(f"| {name} | {ndcg:.4f} | {calls:.1f} | {prompt:,.0f} | {completion:,.1f} "
                     f"| {wall:.1f} | {repaired} | {fallbacks} | {unchanged} | {moved} |")
    lines.append("\n`unchanged calls`: windows, sets or groups whose order the judge left as "
                 "shown (provenance `unchanged`). `top-10 moved`: queries whose top 10 differs "
                 "from BM25's. A method that moved nothing scores BM25's nDCG@10 by "
                 "construction; such a figure says nothing of the method.")
    write_section("methods", "\n".join(lines))
    # Machine-readable copy, read by bench/simulation.py to match noise to the real judge.
    (DOC.parent / "methods.json").write_text(json.dumps(
        {"queries": args.queries, "depth": args.depth,
         "ndcg": {name: ndcg for name, ndcg, *_ in rows},
         "calls_per_query": {name: calls for name, _, calls, *_ in rows}}, indent=1) + "\n")
    print("\n".join(lines))


def _top10_moved(results, first_stage) -> str:
    moved = sum(r.doc_ids[:10] != [e.doc_id for e in first_stage[r.query_id]][:10]
                for r in results)
    return f"{moved} of {len(results)}"


if __name__ == "__main__":
    main()
