"""Method table: methods on the same DL19 queries and depth, one engine, each alone and
fused with the first stage.

    python bench/methods.py --queries 10 --depth 20 [--model qwen2.5-coder-1.5b] \\
        [--rows bench/rows/dl19-methods.toml | --methods "first;rubric:samples=4"]

`--rows` takes a TOML or JSON file of rows, each a method with its parameters (nested
tables allowed, so a cascade's stages may carry several parameters each; see
bench/rows/dl19-methods.toml). `--methods` takes the same rows on one line, separated by
";", each a method name with optional `:name=value,...` parameters. Without either, each
rerank method but vic runs with its defaults. Every row runs with fusion=none (the judge alone); its
fused rows are then computed from the same rankings with the library's fusion
(`graphs.fusion.fused_result`), so they cost no call. Writes nDCG@10, calls/query, tokens/query,
wall time, repairs/fallbacks and the fusion sweep into docs/benchmarks.md (section
`methods`, or `methods-MODEL` for a judge other than the embedded one), and the runs and
judged rankings into out/bench-methods/ (out/bench-methods-MODEL/), named by row label. With `--reuse`, rows
whose rankings are saved there are re-read and only the others run on the engine.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (  # noqa: E402
    DL19,
    DOC,
    ROOT,
    Row,
    load_job,
    load_rows,
    parse_rows,
    write_section,
)

# The fusions swept for every row: (how, judge weight); combsum takes no weight.
SWEEP = [("interpolate", 0.1), ("interpolate", 0.2), ("interpolate", 0.3),
         ("interpolate", 0.4), ("interpolate", 0.6), ("rrf", 0.5), ("rrf", 0.2),
         ("combsum", None)]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--queries", type=int, default=10)
    parser.add_argument("--skip", type=int, default=0,
                        help="leave out the run's first SKIP queries: a second query set, "
                             "to check fusion defaults chosen on the first")
    parser.add_argument("--depth", type=int, default=20)
    rows = parser.add_mutually_exclusive_group()
    rows.add_argument("--rows", type=Path,
                      help="a TOML or JSON file of rows: methods with their parameters")
    rows.add_argument("--methods", default="",
                      help='rows on one line: "name[:name=value,...];..."')
    parser.add_argument("--data", type=Path, default=DL19)
    parser.add_argument("--model", default="smollm2-135m",
                        help="a judge alias of `rerankgraph models list`, or a model folder")
    parser.add_argument("--reuse", action="store_true",
                        help="read each row's judged rankings from out/bench-methods/ where "
                             "a run saved them, and run the engine only for the other rows")
    args = parser.parse_args()
    os.environ.setdefault("VLLM_LOGGING_LEVEL", "WARNING")

    from rerankgraph.data import first_stage_lines, run_lines, write_trec_run
    from rerankgraph.errors import InputError
    from rerankgraph.evaluation import evaluate_run
    from rerankgraph.graphs.fusion import fusion_label, judge_defaults
    from rerankgraph.registry import get_method, list_methods
    from rerankgraph.sdk import Reranker, left_as_given
    from rerankgraph.serving.model_store import EMBEDDED_ALIASES, resolve_model
    from rerankgraph.serving.vllm_local import VllmEngine
    from rerankgraph.types import RerankResult

    try:  # every row is checked before the engine loads
        if args.rows:
            rows_asked = load_rows(args.rows)
        elif args.methods:
            rows_asked = parse_rows(args.methods)
        else:  # vic fuses several runs; this table reranks one (its rows are in the rvr section)
            rows_asked = [Row(m.name, m.name, {}) for m in list_methods()
                          if m.kind == "rerank" and not m.fuses]
    except InputError as error:
        raise SystemExit(str(error)) from None
    job, first_stage = load_job(args.data, args.skip + args.queries, args.depth)
    job.requests = job.requests[args.skip:]
    qids = [r.query.id for r in job.requests]
    embedded = args.model in EMBEDDED_ALIASES
    model = resolve_model(args.model)
    suffix = ("" if embedded else f"-{Path(model).name}") + \
        (f"-skip{args.skip}" if args.skip else "")
    out = ROOT / "out" / f"bench-methods{suffix}"
    out.mkdir(parents=True, exist_ok=True)
    qrels = args.data / "qrels.tsv"

    def ndcg(name: str, results: list[RerankResult]) -> float:
        path = out / f"{_file_name(name)}.trec"
        write_trec_run(path, {r.query_id: run_lines(r, first_stage[r.query_id], "bench")
                              for r in results})
        return evaluate_run(qrels, path, ["nDCG@10"])["nDCG@10"]

    bm25 = out / "bm25.trec"
    write_trec_run(bm25, {q: first_stage_lines(q, first_stage[q], "bm25") for q in qids})
    bm25_ndcg = evaluate_run(qrels, bm25, ["nDCG@10"])["nDCG@10"]
    table = [("bm25 (first stage)", bm25_ndcg, 0, 0, 0, 0.0, 0, 0, "", "", "")]
    sweep: dict[str, list[float]] = {}
    default_rows = []
    saved_rows = {label for label, _, _ in rows_asked
                  if (out / f"{_file_name(label)}.results.jsonl").exists()}
    needs_engine = not args.reuse or any(label not in saved_rows for label, _, _ in rows_asked)
    engine = VllmEngine(model) if needs_engine else None
    try:
        for label, name, params in rows_asked:
            spec = get_method(name)
            saved = out / f"{_file_name(label)}.results.jsonl"
            if args.reuse and label in saved_rows:
                results = [RerankResult.model_validate_json(line)
                           for line in saved.read_text().splitlines()]
                wall = json.loads((saved.with_suffix(".wall")).read_text())
            else:
                assert engine is not None
                reranker = Reranker(name, engine=engine, params={**params, "fusion": "none"})
                started = time.perf_counter()
                results = reranker.rerank_batch(job.requests)
                wall = time.perf_counter() - started
                saved.write_text("".join(r.model_dump_json() + "\n" for r in results))
                saved.with_suffix(".wall").write_text(json.dumps(wall))
            failed = [r for r in results if not r.ok]
            if failed:
                raise SystemExit(f"{label}: {len(failed)} queries failed: {failed[0].error}")
            n = len(results)
            p = [r.provenance for r in results]
            counts = (sum(x.llm_calls for x in p) / n, sum(x.prompt_tokens for x in p) / n,
                      sum(x.completion_tokens for x in p) / n, wall,
                      sum(x.repaired for x in p), sum(x.fallbacks for x in p))
            table.append((label, ndcg(label, results), *counts,
                          # Counted again from the judgments, so saved rows follow
                          # the current rule.
                          f"{sum(left_as_given(j) for x in p for j in x.judgments)} of "
                          f"{sum(x.llm_calls for x in p)}",
                          _top10_moved(results, first_stage), "none"))
            print(table[-1], flush=True)
            sweep[label] = [ndcg(f"{label}+{how}{weight}", _fused(
                results, job.requests, spec.make_params(
                    {**params, "fusion": how,
                     **({"fusion_weight": weight} if weight is not None else {})}), model))
                for how, weight in SWEEP]
            # The row with the default fusion (the model's, else the method's) and weight.
            defaults = spec.make_params(params)
            fused_label, _ = fusion_label(defaults, model)
            if fused_label != "none":
                fused = _fused(results, job.requests, defaults, model)
                default_rows.append((f"{label} + {fused_label}",
                                     ndcg(f"{label}+default", fused), *counts, "",
                                     _top10_moved(fused, first_stage), fused_label))
    finally:
        if engine is not None:
            engine.close()
    table += default_rows
    reused = ("With --reuse, rows whose rankings an earlier run of this bench saved are "
              "re-read (their wall times are that run's); the others ran now.\n"
              if args.reuse else "")
    judge = ("embedded judge SmolLM2-135M-Instruct" if embedded else
             f"judge {Path(model).name} (`rerankgraph models pull {args.model}`)")
    which = (f"queries {args.skip + 1}-{args.skip + len(qids)}" if args.skip else
             f"first {len(qids)} queries")
    lines = [reused + f"DL19, {which} of the BM25 run, top-{args.depth} reranked, "
             f"{judge} (float32, in-process vLLM, CPU). Each "
             "method runs with its default parameters and fusion=none; a `+` row is the "
             "same rankings fused with BM25 by the default fusion (the model's, else the "
             "method's; no extra call, "
             "so calls, tokens and time are those of the row it fuses). All queries of a "
             "row run concurrently.\n",
             "| method | nDCG@10 | calls/query | prompt tok/query | completion tok/query "
             "| wall s (all queries) | repaired | fallbacks | unchanged calls | top-10 moved |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for label, score, calls, prompt, completion, wall, repaired, fallbacks, unchanged, moved, \
            _ in table:
        lines.append(f"| {label} | {score:.4f} | {calls:.1f} | {prompt:,.0f} | "
                     f"{completion:,.1f} | {wall:.1f} | {repaired} | {fallbacks} | "
                     f"{unchanged} | {moved} |")
    lines += ["\n`unchanged calls`: windows, sets or groups whose order the judge left as "
              "shown, and pairs whose first-shown passage it preferred (provenance "
              "`unchanged`). `top-10 moved`: queries whose top 10 differs "
              "from BM25's. A method that moved nothing scores BM25's nDCG@10 by "
              "construction; such a figure says nothing of the method.\n",
              f"Fusion sweep on the same rankings (BM25 alone: {bm25_ndcg:.4f}); the judge's "
              "weight is its share. `rrf w=0.5` orders as classic RRF (k=60).\n",
              "| method | " + " | ".join(_sweep_name(h, w) for h, w in SWEEP) + " |",
              "|---|" + "---|" * len(SWEEP)]
    for label, scores in sweep.items():
        lines.append(f"| {label} | " + " | ".join(
            f"**{s:.4f}**" if s < bm25_ndcg - 0.01 else f"{s:.4f}" for s in scores) + " |")
    defaults = judge_defaults(model)
    default_fusion = (f"{defaults.fusion}, judge weight {defaults.weight:g}" if defaults.fusion
                      else f"each method's own, judge weight {defaults.weight:g}")
    lines.append(f"\nBold: more than 0.01 below BM25. This judge's default fusion "
                 f"(graphs/fusion.py): {default_fusion}.")
    write_section(f"methods{suffix}", "\n".join(lines))
    # Machine-readable copy, read by bench/simulation.py to match noise to the real judge.
    (DOC.parent / f"methods{suffix}.json").write_text(json.dumps(
        {"model": Path(model).name, "queries": args.queries, "skip": args.skip,
         "query_ids": qids, "depth": args.depth,
         # Each row's method and parameters, read back by bench/fitted.py.
         "rows": [{"label": label, "method": name, "params": params}
                  for label, name, params in rows_asked],
         "ndcg": {row[0]: row[1] for row in table},
         "calls_per_query": {row[0]: row[2] for row in table},
         "fusion_sweep": {label: dict(zip(map(lambda hw: _sweep_name(*hw), SWEEP), scores,
                                          strict=True)) for label, scores in sweep.items()}},
        indent=1) + "\n")
    print("\n".join(lines))


def _file_name(label: str) -> str:
    return "".join(c if c.isalnum() or c in "-_=.+" else "_" for c in label)


def _sweep_name(how: str, weight: float | None) -> str:
    return how if weight is None else f"{how} w={weight:g}"


def _fused(results, requests, params, model):
    """Each query's saved ranking fused with its candidates' first stage, no call."""
    from rerankgraph.graphs.fusion import fused_result

    by_query = {r.query.id: r.candidates for r in requests}
    return [fused_result(r, by_query[r.query_id], params, model) for r in results]


def _top10_moved(results, first_stage) -> str:
    moved = sum(r.doc_ids[:10] != [e.doc_id for e in first_stage[r.query_id]][:10]
                for r in results)
    return f"{moved} of {len(results)}"


if __name__ == "__main__":
    main()
