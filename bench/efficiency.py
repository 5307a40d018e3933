"""Orchestration efficiency: a job's wall time against vLLM's own offline `generate` on
the identical prompts, in the same process.

    python bench/efficiency.py --methods pointwise,groupwise --queries 10 --depth 20

Runs each method as a batch job on the in-process engine, recording every prompt and
sampling setting it sent; then closes that engine, loads vLLM's offline `LLM` with the
same settings and times `generate` on the recorded list. Ratio = job / raw (goal <= 1.05).
Writes docs/benchmarks.md section `efficiency`.
"""

from __future__ import annotations

import argparse
import gc
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import DL19, load_job, write_section  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--methods", default="pointwise,groupwise")
    parser.add_argument("--queries", type=int, default=10)
    parser.add_argument("--depth", type=int, default=20)
    args = parser.parse_args()
    os.environ.setdefault("VLLM_LOGGING_LEVEL", "WARNING")

    from rerankgraph.jobs import run_job
    from rerankgraph.sdk import Reranker
    from rerankgraph.serving.model_store import pull_embedded_model
    from rerankgraph.serving.platform import default_engine_settings
    from rerankgraph.serving.vllm_local import DEFAULT_MAX_MODEL_LEN, VllmEngine

    job, _ = load_job(DL19, args.queries, args.depth)
    model = str(pull_embedded_model())
    rows = []
    for name in args.methods.split(","):
        engine = VllmEngine(model)
        engine.sent = []
        report = run_job(Reranker(name, engine=engine), job.requests)
        assert report.ok, report.failures
        sent = list(engine.sent)
        hit = report.prefix_cache
        engine.close()
        del engine
        gc.collect()

        from vllm import LLM
        from vllm.inputs import TokensPrompt

        llm = LLM(model=model, max_model_len=DEFAULT_MAX_MODEL_LEN, enable_prefix_caching=True,
                  **default_engine_settings())
        prompts = [TokensPrompt(prompt_token_ids=ids) for ids, _ in sent]
        started = time.perf_counter()
        llm.generate(prompts, [sampling for _, sampling in sent], use_tqdm=False)
        raw = time.perf_counter() - started
        llm.llm_engine.engine_core.shutdown()
        del llm
        gc.collect()
        tokens = sum(len(ids) for ids, _ in sent)
        rate = f"{hit[0] / hit[1]:.1%}" if hit and hit[1] else "n/a"
        rows.append((name, len(sent), tokens, report.wall_time_s, raw, rate))
        print(rows[-1], flush=True)
    lines = [f"DL19, first {args.queries} queries, BM25 top-{args.depth}, embedded judge, "
             "in-process vLLM (float32, eager, prefix caching on), fresh engine for each "
             "side. Raw = `LLM.generate` on the identical prompt list in one call.\n",
             "| method | calls | prompt tokens | job wall s | raw vLLM s | job / raw | "
             "prefix-cache hit rate (job) |", "|---|---|---|---|---|---|---|"]
    for name, calls, tokens, job_s, raw_s, rate in rows:
        lines.append(f"| {name} | {calls} | {tokens:,} | {job_s:.1f} | {raw_s:.1f} | "
                     f"{job_s / raw_s:.2f} | {rate} |")
    write_section("efficiency", "\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
