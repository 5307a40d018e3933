"""Orchestration efficiency: a job's wall time against vLLM's own offline `generate` on
the identical prompts.

    python bench/efficiency.py --methods pointwise,groupwise --queries 10 --depth 20 --repeats 3

Each measurement runs in a fresh process, so neither side inherits the other's prefix
cache, allocator or compiled kernels. Per method: one job run records every prompt and
sampling setting it sends (and warms the OS page cache for the model files); one raw run
on those prompts warms the same for vLLM's `LLM`; neither is counted. Then `--repeats`
pairs run interleaved, job then raw (A B A B A B), each timing only its own work (the
engine is loaded before the clock starts). Reported: the median and range of each side,
and job / raw of the medians. Writes docs/benchmarks.md section `efficiency`.
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import DL19, load_job, write_section  # noqa: E402


def job_side(method: str, queries: int, depth: int, record: Path | None) -> dict:
    from rerankgraph.jobs import run_job
    from rerankgraph.sdk import Reranker
    from rerankgraph.serving.model_store import pull_embedded_model
    from rerankgraph.serving.vllm_local import VllmEngine

    job, _ = load_job(DL19, queries, depth)
    engine = VllmEngine(str(pull_embedded_model()))
    engine.sent = []
    report = run_job(Reranker(method, engine=engine), job.requests)
    assert report.ok, report.failures
    if record is not None:
        record.write_bytes(pickle.dumps(engine.sent))
    hit = report.prefix_cache
    calls, tokens = len(engine.sent), sum(len(ids) for ids, _ in engine.sent)
    engine.close()
    return {"seconds": report.wall_time_s, "calls": calls, "tokens": tokens,
            "prefix_hit": hit[0] / hit[1] if hit and hit[1] else None}


def raw_side(prompts: Path) -> dict:
    from vllm import LLM
    from vllm.inputs import TokensPrompt

    from rerankgraph.serving.model_store import pull_embedded_model
    from rerankgraph.serving.platform import apply_cpu_env_defaults, default_engine_settings
    from rerankgraph.serving.vllm_local import DEFAULT_MAX_MODEL_LEN

    apply_cpu_env_defaults()  # the CPU settings our engine sets up before it loads
    sent = pickle.loads(prompts.read_bytes())
    llm = LLM(model=str(pull_embedded_model()), max_model_len=DEFAULT_MAX_MODEL_LEN,
              enable_prefix_caching=True, **default_engine_settings(DEFAULT_MAX_MODEL_LEN))
    started = time.perf_counter()
    llm.generate([TokensPrompt(prompt_token_ids=ids) for ids, _ in sent],
                 [sampling for _, sampling in sent], use_tqdm=False)
    seconds = time.perf_counter() - started
    llm.llm_engine.engine_core.shutdown()
    return {"seconds": seconds}


def measure(*side: str) -> dict:
    """One side in a fresh process; its last stdout line is the JSON result."""
    done = subprocess.run([sys.executable, __file__, *side], capture_output=True, text=True,
                          check=False)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(side)} failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def spread(values: list[float]) -> str:
    return f"{statistics.median(values):.1f} ({min(values):.1f}-{max(values):.1f})"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--methods", default="pointwise,groupwise")
    parser.add_argument("--queries", type=int, default=10)
    parser.add_argument("--depth", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--side", choices=["job", "raw"], help=argparse.SUPPRESS)
    parser.add_argument("--method", help=argparse.SUPPRESS)
    parser.add_argument("--record", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--prompts", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    os.environ.setdefault("VLLM_LOGGING_LEVEL", "WARNING")
    if args.side == "job":
        print(json.dumps(job_side(args.method, args.queries, args.depth, args.record)))
        return
    if args.side == "raw":
        print(json.dumps(raw_side(args.prompts)))
        return

    shape = ["--queries", str(args.queries), "--depth", str(args.depth)]
    rows = []
    for method in args.methods.split(","):
        prompts = Path(tempfile.mkdtemp(prefix="rerankgraph-eff-")) / "sent.pkl"
        first = measure("--side", "job", "--method", method, *shape, "--record", str(prompts))
        measure("--side", "raw", "--prompts", str(prompts))  # warm-up, not counted
        job_s, raw_s = [], []
        for _ in range(args.repeats):
            job_s.append(measure("--side", "job", "--method", method, *shape)["seconds"])
            raw_s.append(measure("--side", "raw", "--prompts", str(prompts))["seconds"])
            print(method, job_s[-1], raw_s[-1], flush=True)
        rate = f"{first['prefix_hit']:.1%}" if first["prefix_hit"] is not None else "n/a"
        rows.append(f"| {method} | {first['calls']} | {first['tokens']:,} | {spread(job_s)} | "
                    f"{spread(raw_s)} | {statistics.median(job_s) / statistics.median(raw_s):.2f} "
                    f"| {min(j / r for j, r in zip(job_s, raw_s, strict=True)):.2f}-"
                    f"{max(j / r for j, r in zip(job_s, raw_s, strict=True)):.2f} | {rate} |")
        print(rows[-1], flush=True)
    lines = [f"DL19, first {args.queries} queries, BM25 top-{args.depth}, embedded judge, "
             "in-process vLLM (float32, eager, prefix caching on). Raw = `LLM.generate` on the "
             "job's own prompt list in one call. Every run is a fresh process; after one "
             f"uncounted warm-up of each side, {args.repeats} pairs ran interleaved (job, raw, "
             "job, raw, ...). Times exclude engine start-up. Median (min-max) of the runs; "
             "a ratio under 1 is within this machine's noise unless the ranges separate.\n",
             "| method | calls | prompt tokens | job s | raw vLLM s | job / raw (medians) | "
             "job / raw (pairs) | prefix-cache hit rate (job) |",
             "|---|---|---|---|---|---|---|---|", *rows]
    write_section("efficiency", "\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
