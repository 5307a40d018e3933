"""Simulated judge against the real one, and algorithm curves at full scale.

    python bench/simulation.py

1. On the same DL19 queries and depth as bench/methods.py (read from docs/methods.json),
   nDCG@10 of each method under the simulated judge at several noise levels, next to the
   real embedded judge's figure, and the noise level that matches it best.
2. Exactness: at noise 0 on all 43 DL19 queries at top-100, every method against the
   oracle (the same candidates sorted by qrels grade).
3. Calls against nDCG@10 on those queries for setwise and pairwise (k = 5, 10, 20, and
   their bubblesort variants, and pairwise's mean rule) and groupwise (rounds = 1, 2, 4,
   6), at one noise level: the kind of study the 135M model would take hours for.
4. Test-time scaling at that noise level: rubric with K=1 and K=4 samples, cascades,
   dear, and every method alone and fused with BM25.
Everything here is a SIMULATION from qrels. Writes docs/benchmarks.md section `simulation`.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import DATA, DOC, write_section  # noqa: E402

NOISES = (0.0, 0.25, 0.5, 1.0, 2.0, 4.0)
NO_FUSION = {"fusion": "none"}  # the judge alone, whatever a method's default fusion


def main() -> None:
    import argparse

    parser = argparse.ArgumentParser()
    parser.add_argument("--scaling", action="store_true",
                        help="only part 4 (test-time scaling and fusion), into its own "
                             "section `simulation-scaling`")
    scaling_only = parser.parse_args().scaling
    from rerankgraph.data import (
        build_job,
        load_beir,
        read_qrels,
        read_trec_run,
        run_lines,
        write_trec_run,
    )
    from rerankgraph.evaluation import evaluate_run
    from rerankgraph.registry import list_methods
    from rerankgraph.sdk import Reranker
    from rerankgraph.simulation import SimulatedJudge, SimulationSettings

    folder = DATA / "trec-dl19-passage"
    data, first_stage = load_beir(folder), read_trec_run(folder / "bm25.trec")
    qrels_path = folder / "qrels.tsv"
    qrels = read_qrels(qrels_path)
    real = json.loads((DOC.parent / "methods.json").read_text())
    out = Path(tempfile.mkdtemp(prefix="rerankgraph-sim-"))

    def ndcg_and_calls(method, params, settings, requests):
        judge = SimulatedJudge(qrels, data.queries, data.corpus, settings, seed=7)
        results = Reranker(method, engine=judge, params=params).rerank_batch(requests)
        path = out / f"{method}.trec"
        write_trec_run(path, {r.query_id: run_lines(r, first_stage[r.query_id], "sim")
                              for r in results})
        calls = sum(r.provenance.llm_calls for r in results) / len(results)
        return evaluate_run(qrels_path, path, ["nDCG@10"])["nDCG@10"], calls

    def scaling_rows(lines, full, settings):
        bm25_full = out / "bm25-full.trec"
        write_trec_run(bm25_full, {r.query.id: [f"{r.query.id} Q0 {c.doc_id} {c.rank} {c.score} "
                                                "bm25" for c in r.candidates] for r in full})
        lines += ["", "Test-time scaling and fusion: all 43 DL19 queries, BM25 top-100, "
                  "simulated noise 0.25, flips 0.1, position bias 0.05. BM25 alone: "
                  f"{evaluate_run(qrels_path, bm25_full, ['nDCG@10'])['nDCG@10']:.4f}. A "
                  "simulated judge is not the embedded model, so fusion uses the general judge "
                  "weight (0.6, GroupRank's).\n",
                  "| method | setting | LLM calls/query | nDCG@10 |", "|---|---|---|---|"]
        scaling = [("rubric", {"samples": 1}), ("rubric", {"samples": 4}), ("cascade", {}),
                   ("cascade", {"stages": "100@pointwise -> 30@rubric:samples=4 -> 10@listwise"}),
                   ("dear", {})]
        scaling += [(spec.name, {"fusion": how}) for spec in rerank_methods
                    if spec.name not in ("cascade", "dear")
                    for how in ("none", "interpolate", "rrf")]
        for method, params in scaling:
            ndcg, calls = ndcg_and_calls(method, {**NO_FUSION, **params}, settings, full)
            shown = ",".join(f"{k}={v}" for k, v in params.items()) or "defaults"
            lines.append(f"| {method} | {shown} | {calls:.1f} | {ndcg:.4f} |")
            print(lines[-1], flush=True)

    rerank_methods = [s for s in list_methods() if s.kind == "rerank" and not s.fuses]
    full = build_job(data, first_stage, depth=100).requests
    settings = SimulationSettings(score_noise=0.25, flip_prob=0.1, position_bias=0.05)
    if scaling_only:
        lines = ["**SIMULATION** from DL19 qrels (not a model)."]
        scaling_rows(lines, full, settings)
        write_section("simulation-scaling", "\n".join(lines))
        return
    small = build_job(data, first_stage, depth=real["depth"], queries=real["queries"]).requests
    lines = [f"**SIMULATION** from DL19 qrels (not a model). Part 1: the {real['queries']} "
             f"queries at top-{real['depth']} of the method table; noise = std-dev of Gaussian "
             "noise on relevance scaled to [0, 1], with comparison flips at half that rate and "
             "a 0.05 first-position bias.\n",
             "| method | real judge nDCG@10 | " + " | ".join(f"sim noise {n:g}" for n in NOISES)
             + " | closest noise |", "|---|---|" + "---|" * len(NOISES) + "---|"]
    for spec in rerank_methods:
        scores = []
        for noise in NOISES:
            settings = SimulationSettings(score_noise=noise, flip_prob=noise / 2,
                                          position_bias=0.05)
            scores.append(ndcg_and_calls(spec.name, NO_FUSION, settings, small)[0])
        target = real["ndcg"].get(spec.name)
        closest = (min(range(len(NOISES)), key=lambda i: abs(scores[i] - target))
                   if target is not None else None)
        lines.append(f"| {spec.name} | {target:.4f} | " if target is not None else
                     f"| {spec.name} | n/a | ")
        lines[-1] += " | ".join(f"{s:.4f}" for s in scores)
        lines[-1] += f" | {NOISES[closest]:g} |" if closest is not None else " | n/a |"
        print(lines[-1], flush=True)

    oracle = out / "oracle.trec"
    write_trec_run(oracle, {r.query.id: oracle_lines(r, qrels) for r in full})
    lines += ["", f"Part 2: exactness. All {len(full)} DL19 queries, BM25 top-100, noise 0 "
              "(no flips, no bias), default parameters. The simulator knows each passage by "
              "the doc ids the request carries, so every method must reach the oracle: the "
              "same top-100 sorted by qrels grade, ties in BM25 order, nDCG@10 "
              f"{evaluate_run(qrels_path, oracle, ['nDCG@10'])['nDCG@10']:.4f}.\n",
              "| method | LLM calls/query | nDCG@10 |", "|---|---|---|"]
    exact = SimulationSettings()
    for spec in rerank_methods:
        ndcg, calls = ndcg_and_calls(spec.name, NO_FUSION, exact, full)
        lines.append(f"| {spec.name} | {calls:.1f} | {ndcg:.4f} |")
        print(lines[-1], flush=True)
    lines += ["", f"Part 3: all {len(full)} DL19 queries, BM25 top-100, simulated noise 0.25, "
              "flips 0.1, position bias 0.05.\n", "| method | setting | LLM calls/query | "
              "nDCG@10 |", "|---|---|---|---|"]
    sweeps = [("setwise", "k", [5, 10, 20]), ("pairwise", "k", [5, 10, 20]),
              ("groupwise", "rounds", [1, 2, 4, 6]), ("listwise", "passes", [1, 2]),
              ("setwise", "sort", ["bubblesort"]), ("pairwise", "sort", ["bubblesort"]),
              ("pairwise", "rule", ["mean"])]
    for method, name, values in sweeps:
        for value in values:
            ndcg, calls = ndcg_and_calls(method, {name: value, **NO_FUSION}, settings, full)
            lines.append(f"| {method} | {name}={value} | {calls:.1f} | {ndcg:.4f} |")
            print(lines[-1], flush=True)
    scaling_rows(lines, full, settings)
    write_section("simulation", "\n".join(lines))


def oracle_lines(request, qrels) -> list[str]:
    """The request's candidates by qrels grade, ties in first-stage order, as TREC lines."""
    grades = qrels.get(request.query.id, {})
    order = sorted(request.candidates, key=lambda c: (-grades.get(c.doc_id, 0), c.rank))
    return [f"{request.query.id} Q0 {c.doc_id} {i} {len(order) - i + 1} oracle"
            for i, c in enumerate(order, start=1)]


if __name__ == "__main__":
    main()
