"""A judge's default fusion: chosen on one query set's sweep, checked on another.

    python bench/fusion_defaults.py --choose docs/methods-qwen2.5-coder-1.5b.json \\
        --check docs/methods-qwen2.5-coder-1.5b-skip15.json

Both files are bench/methods.py's machine-readable tables for one judge (the second run
with `--skip`, so its queries are others). The choice is the fusion of the sweep (or none)
with the best mean nDCG@10 over the methods of the first file; the check reports, for the
methods of the second, that choice beside no fusion and BM25 alone. Writes
docs/benchmarks.md section `fusion-defaults-MODEL`.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import write_section  # noqa: E402

BM25 = "bm25 (first stage)"


def candidates(table: dict, label: str) -> dict[str, float]:
    """nDCG@10 of one method under each fusion of the sweep, and alone ("none")."""
    return {"none": table["ndcg"][label], **table["fusion_sweep"][label]}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--choose", type=Path, required=True)
    parser.add_argument("--check", type=Path, required=True)
    args = parser.parse_args()
    choose, check = (json.loads(p.read_text()) for p in (args.choose, args.check))
    if choose["model"] != check["model"]:
        raise SystemExit(f"{args.choose} is of {choose['model']}, {args.check} of "
                         f"{check['model']}: give two tables of one judge")
    shared = set(choose.get("query_ids", [])) & set(check.get("query_ids", []))
    if shared:
        raise SystemExit(f"the two tables share {len(shared)} queries: run the check with "
                         "--skip past the first table's queries")
    methods = list(choose["fusion_sweep"])
    fusions = list(candidates(choose, methods[0]))
    means = {how: statistics.mean(candidates(choose, m)[how] for m in methods)
             for how in fusions}
    chosen = max(fusions, key=lambda how: (round(means[how], 4), how == "none"))
    lines = [f"Judge {choose['model']}. Chosen on {args.choose.name} (queries "
             f"{choose.get('skip', 0) + 1}-{choose.get('skip', 0) + choose['queries']}, "
             f"methods {', '.join(methods)}; BM25 alone {choose['ndcg'][BM25]:.4f}): the "
             "fusion with the best mean nDCG@10 over those methods.\n",
             "| fusion | mean nDCG@10 over the methods | " +
             " | ".join(methods) + " |", "|---|---|" + "---|" * len(methods)]
    for how in sorted(fusions, key=lambda h: -means[h]):
        mark = " (chosen)" if how == chosen else ""
        lines.append(f"| {how}{mark} | {means[how]:.4f} | " + " | ".join(
            f"{candidates(choose, m)[how]:.4f}" for m in methods) + " |")
    lines += [f"\nChecked on {args.check.name} (queries {check.get('skip', 0) + 1}-"
              f"{check.get('skip', 0) + check['queries']}, BM25 alone "
              f"{check['ndcg'][BM25]:.4f}):\n",
              f"| method | alone | {chosen} (chosen) | chosen − BM25 |", "|---|---|---|---|"]
    for method in check["fusion_sweep"]:
        row = candidates(check, method)
        lines.append(f"| {method} | {row['none']:.4f} | {row[chosen]:.4f} | "
                     f"{row[chosen] - check['ndcg'][BM25]:+.4f} |")
    write_section(f"fusion-defaults-{choose['model']}", "\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
