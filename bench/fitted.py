"""The simulator fitted to a judge profile against that real judge, on queries the
profile was not fitted on.

    python bench/fitted.py --profile out/profiles/qwen2.5-coder-1.5b.json \\
        --real docs/methods-qwen2.5-coder-1.5b.json [--seeds 5]

`--real` is the machine-readable table bench/methods.py wrote for the same judge (its
queries, depth, rows and each row's nDCG@10 with fusion=none; a table written before it
kept its rows has them read back from their labels, the one-line form). Every row of it
that the profile covers runs again under the fitted simulator, once per seed, on the
same queries; the table puts the two nDCG@10 side by side, with the spread over seeds,
and says whether the simulator orders the methods as the real judge does. Writes
docs/benchmarks.md section `fitted-MODEL`. Everything on the fitted side is a
SIMULATION from qrels.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import DL19, load_job, parse_rows, read_rows, write_section  # noqa: E402

GOAL = 0.03  # the tolerance on nDCG@10


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--profile", type=Path, required=True)
    parser.add_argument("--real", type=Path, required=True)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--data", type=Path, default=DL19)
    args = parser.parse_args()

    from scipy.stats import kendalltau

    from rerankgraph.data import load_beir, read_qrels, run_lines, write_trec_run
    from rerankgraph.errors import InputError
    from rerankgraph.evaluation import evaluate_run
    from rerankgraph.sdk import Reranker
    from rerankgraph.simulation import SimulatedJudge, load_profile

    profile = load_profile(args.profile)
    judge_name = Path(profile.model).name  # a local model's name is its folder's
    real = json.loads(args.real.read_text())
    skip = real.get("skip", 0)
    job, first_stage = load_job(args.data, skip + real["queries"], real["depth"])
    job.requests = job.requests[skip:]
    checked = [r.query.id for r in job.requests]
    overlap = sorted(set(checked) & set(profile.query_ids))
    if overlap:
        raise SystemExit(f"the profile was fitted on {len(overlap)} of the checked queries "
                         f"(first {overlap[0]}): profile with --skip {real['queries']}")
    data, qrels_path = load_beir(args.data), args.data / "qrels.tsv"
    qrels = read_qrels(qrels_path)
    out = Path(tempfile.mkdtemp(prefix="rerankgraph-fitted-"))

    def ndcg(results: list) -> float:
        path = out / "run.trec"
        write_trec_run(path, {r.query_id: run_lines(r, first_stage[r.query_id], "fitted")
                              for r in results})
        return evaluate_run(qrels_path, path, ["nDCG@10"])["nDCG@10"]

    rows, skipped = [], []
    labels = [label for label in real["ndcg"] if not label.startswith("bm25")
              and "+" not in label]
    try:
        asked = (read_rows(real["rows"], str(args.real)) if "rows" in real
                 else parse_rows(";".join(labels), str(args.real)))
    except InputError as error:
        raise SystemExit(str(error)) from None
    for label, name, params in (row for row in asked if row.label in labels):
        scores = []
        try:
            for seed in range(args.seeds):
                judge = SimulatedJudge(qrels, data.queries, data.corpus, seed=seed,
                                       profile=profile)
                results = Reranker(name, engine=judge, params={**params, "fusion": "none"},
                                   seed=seed).rerank_batch(job.requests)
                failed = [r for r in results if not r.ok]
                if failed:
                    raise InputError(failed[0].error or "failed")
                scores.append(ndcg(results))
        except InputError as error:
            skipped.append(f"{label}: {error}")
            continue
        rows.append((label, real["ndcg"][label], statistics.mean(scores),
                     statistics.stdev(scores) if len(scores) > 1 else 0.0))
        print(rows[-1], flush=True)
    bm25 = real["ndcg"].get("bm25 (first stage)")
    within = sum(abs(fit - r) <= GOAL for _, r, fit, _ in rows)
    tau = kendalltau([r for _, r, _, _ in rows], [f for _, _, f, _ in rows]).statistic \
        if len(rows) > 1 else None
    same = sorted(rows, key=lambda x: -x[1]) == sorted(rows, key=lambda x: -x[2])
    lines = [f"Judge {judge_name}: profile fitted on DL19 queries "
             f"{', '.join(profile.query_ids)} (top-{profile.depth}); checked on queries "
             f"{skip + 1}-{skip + len(checked)} of the BM25 run at top-{real['depth']}, which the "
             f"profile never saw. Real: bench/methods.py's figures for this judge "
             f"({args.real.name}), fusion=none. Fitted: the SIMULATED judge answering from "
             f"qrels with the profile, mean and spread (sd) over {args.seeds} seeds. BM25 "
             f"alone: {bm25:.4f}.\n" if bm25 is not None else "",
             "| method | real nDCG@10 | fitted simulator | sd | fitted − real | within "
             f"±{GOAL} |", "|---|---|---|---|---|---|"]
    for label, r, fit, sd in rows:
        lines.append(f"| {label} | {r:.4f} | {fit:.4f} | {sd:.4f} | {fit - r:+.4f} | "
                     f"{'yes' if abs(fit - r) <= GOAL else '**no**'} |")
    order = (f"order of methods {'the same' if same else 'not the same'} (Kendall tau "
             f"{tau:.2f})" if len(rows) > 1 else "one method, so no order to compare")
    lines.append(f"\n{within} of {len(rows)} methods within ±{GOAL}; {order}.")
    if skipped:
        lines.append("Not predicted (the profile lacks the agent): " + "; ".join(skipped))
    write_section(f"fitted-{judge_name}" + (f"-skip{skip}" if skip else ""), "\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
