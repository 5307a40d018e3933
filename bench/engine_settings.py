"""CPU engine settings: KV block size and prefix priming, on a real job.

    python bench/engine_settings.py --method pointwise --block-sizes 128,64,32

Each configuration runs the method as a batch job on a fresh in-process engine (cold
caches) over the same DL19 queries and reports wall time and the prefix-cache hit rate.
Writes docs/benchmarks.md section `engine-settings-METHOD`.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import DL19, load_job, write_section  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--method", default="pointwise")
    parser.add_argument("--block-sizes", default="128,64,32")
    parser.add_argument("--queries", type=int, default=10)
    parser.add_argument("--depth", type=int, default=20)
    args = parser.parse_args()
    os.environ.setdefault("VLLM_LOGGING_LEVEL", "WARNING")

    from rerankgraph.jobs import run_job
    from rerankgraph.sdk import Reranker
    from rerankgraph.serving.model_store import pull_embedded_model
    from rerankgraph.serving.vllm_local import VllmEngine

    job, _ = load_job(DL19, args.queries, args.depth)
    sizes = [int(s) for s in args.block_sizes.split(",")]
    settings = [(size, True) for size in sizes] + [(sizes[-1], False)]
    lines = [f"`{args.method}`, DL19 first {args.queries} queries, BM25 top-{args.depth}, a "
             "fresh in-process engine per row.\n",
             "| KV block size | prefix priming | wall s | prompt tokens | prefix-cache hit rate |",
             "|---|---|---|---|---|"]
    for block_size, prime in settings:
        engine = VllmEngine(str(pull_embedded_model()), block_size=block_size)
        engine.prime_prefix = prime
        report = run_job(Reranker(args.method, engine=engine), job.requests)
        engine.close()
        hits, queried = report.prefix_cache or (0, 0)
        rate = f"{hits / queried:.1%}" if queried else "n/a"
        lines.append(f"| {block_size} | {'on' if prime else 'off'} | {report.wall_time_s:.1f} | "
                     f"{queried:,} | {rate} |")
        print(lines[-1], flush=True)
    write_section(f"engine-settings-{args.method}", "\n".join(lines))


if __name__ == "__main__":
    main()
