"""Judge profiles side by side: one table of every profile given, and a copy of each in
docs/profiles/ for `batch --simulate QRELS --judge-profile`.

    python bench/profiles.py out/profiles/smollm2-135m.json \\
        out/profiles/qwen2.5-coder-0.5b.json out/profiles/qwen2.5-coder-1.5b.json

Each profile comes from `rerankgraph judge profile` (its command is rebuilt from the
file: model, queries, depth, agents). Its choice models are fitted again by this code's
fitter from the layouts and rates it stored (`refit`, no call), and the copy in
docs/profiles/ holds those fits. Writes docs/benchmarks.md section `judge-profiles`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import ROOT, write_section  # noqa: E402

from rerankgraph.simulation import load_profile  # noqa: E402
from rerankgraph.simulation.profile import OrderProfile, ScoreProfile, refit  # noqa: E402


def score_cells(entry: ScoreProfile) -> str:
    means = " / ".join(f"{entry.mean[g]:.2f}" for g in sorted(entry.mean))
    aucs = " / ".join(f"{entry.auc_vs_grade0[g]:.2f}" for g in sorted(entry.auc_vs_grade0))
    return f"mean by grade 0-3: {means}; AUC g1/g2/g3 vs g0: {aucs}"


def order_cells(entry: OrderProfile) -> str:
    def rate(value: float | None) -> str:
        return "-" if value is None else f"{value:.2f}"

    fit = entry.fitted
    parts = [f"kept as shown {entry.kept_rate:.2f}", f"first picked {entry.first_pick_rate:.2f}"
             f" (equal grades {rate(entry.first_pick_rate_equal)}, different "
             f"{rate(entry.first_pick_rate_different)})",
             f"best grade picked {rate(entry.top_pick_accuracy)}"]
    if entry.full_order:
        parts.append(f"concordance {rate(entry.concordance)}")
    parts.append(f"fitted keep {fit.keep:.3f}, noise {fit.noise:g}, position bias "
                 f"{fit.position_bias:g}, label weight {fit.label_weight:g}")
    return "; ".join(parts)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("profiles", type=Path, nargs="+")
    args = parser.parse_args()
    keep = ROOT / "docs" / "profiles"
    keep.mkdir(parents=True, exist_ok=True)
    commands, rows = [], []
    for path in args.profiles:
        profile = refit(load_profile(path))
        name = path.stem
        (keep / path.name).write_text(profile.model_dump_json(indent=1) + "\n")
        commands.append(
            f"- {name}: `rerankgraph judge profile --data ../shared/data/trec-dl19-passage "
            "--run ../shared/data/trec-dl19-passage/bm25.trec --qrels "
            "../shared/data/trec-dl19-passage/qrels.tsv --skip 10 "
            f"--queries {len(profile.query_ids)} --depth {profile.depth} --model {name} "
            f"--methods {','.join(sorted(profile.agents))} --out out/profiles/{name}.json` "
            f"(queries {', '.join(profile.query_ids)}; code {profile.code_version}); kept as "
            f"docs/profiles/{path.name}")
        for agent, entry in sorted(profile.agents.items()):
            cost = entry.cost
            measured = score_cells(entry) if isinstance(entry, ScoreProfile) else \
                order_cells(entry)
            flag = ""
            if isinstance(entry, OrderProfile) and entry.kept_rate >= 0.95:
                flag = " **changes nothing: answers as shown**"
            if isinstance(entry, ScoreProfile) and entry.auc_vs_grade0 and \
                    max(entry.auc_vs_grade0.values()) < 0.6:
                flag = " **no better than chance**"
            rows.append(f"| {name} | {agent} | {measured}{flag} | {cost.calls} | "
                        f"{cost.prompt_tokens:.0f} + {cost.completion_tokens:.1f} | "
                        f"{cost.seconds:.2f} | {cost.repaired} / {cost.fallbacks} |")
    body = "\n".join([
        "Commands (DL19, BM25 top-20, the 5 queries after the run's first 10, so the "
        "methods table's 10 queries stay unseen):", *commands, "",
        "| judge | agent | measured | calls | tokens per call (prompt + reply) | s per call "
        "| repaired / fallbacks |", "|---|---|---|---|---|---|---|", *rows])
    write_section("judge-profiles", body)
    print(body)


if __name__ == "__main__":
    main()
