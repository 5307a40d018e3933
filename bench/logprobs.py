"""Which first-token logprobs rank better: under the structured-output constraint, or free?

    python bench/logprobs.py --queries 10 --depth 20

vLLM 0.32 computes logprobs after the grammar bitmask, so with `choice=` only the allowed
tokens have finite logprobs. pointwise and first read their scores from those. This
runs each of them twice on the same DL19 queries with the embedded judge: as shipped
(constrained), and with the choice constraint removed from every request (free: the
model's unmasked top-20 at the answer token, where case and space variants of a label
can appear and a label can be missing). Writes docs/benchmarks.md section `logprobs`.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import DL19, load_job, write_section  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--queries", type=int, default=10)
    parser.add_argument("--depth", type=int, default=20)
    args = parser.parse_args()
    os.environ.setdefault("VLLM_LOGGING_LEVEL", "WARNING")

    from rerankgraph.data import first_stage_lines, run_lines, write_trec_run
    from rerankgraph.evaluation import evaluate_run
    from rerankgraph.sdk import Reranker
    from rerankgraph.serving.base import ChatRequest, Completion, Engine
    from rerankgraph.serving.model_store import pull_embedded_model
    from rerankgraph.serving.vllm_local import VllmEngine

    class Unconstrained(Engine):
        """Forwards every request without its choice constraint."""

        def __init__(self, inner: Engine) -> None:
            super().__init__()
            self.inner, self.model_name = inner, inner.model_name
            self.max_model_len = inner.max_model_len

        async def _chat(self, requests: list[ChatRequest]) -> list[Completion]:
            return await self.inner.chat([dataclasses.replace(r, choice=None)
                                          for r in requests])

        async def _tokenize(self, text: str) -> list[int]:
            return await self.inner._on_home(self.inner._tokenize(text))

        async def _detokenize(self, token_ids: list[int]) -> str:
            return await self.inner._on_home(self.inner._detokenize(token_ids))

    job, first_stage = load_job(DL19, args.queries, args.depth)
    qrels = DL19 / "qrels.tsv"
    out = Path(tempfile.mkdtemp(prefix="rerankgraph-logprobs-"))
    bm25 = out / "bm25.trec"
    write_trec_run(bm25, {r.query.id: first_stage_lines(r.query.id, first_stage[r.query.id],
                                                        "bm25") for r in job.requests})
    rows = [f"| bm25 (first stage) | | {evaluate_run(qrels, bm25, ['nDCG@10'])['nDCG@10']:.4f} "
            "| | | |"]
    engine = VllmEngine(str(pull_embedded_model()))
    try:
        for method in ("pointwise", "first"):
            for mode, judge in (("constrained", engine), ("free", Unconstrained(engine))):
                results = Reranker(method, engine=judge).rerank_batch(job.requests)
                path = out / f"{method}-{mode}.trec"
                write_trec_run(path, {r.query_id: run_lines(r, first_stage[r.query_id], mode)
                                      for r in results})
                p = [r.provenance for r in results if r.provenance is not None]
                ndcg = evaluate_run(qrels, path, ["nDCG@10"])["nDCG@10"]
                rows.append(f"| {method} | {mode} | {ndcg:.4f} | {sum(x.llm_calls for x in p)} "
                            f"| {sum(x.repaired for x in p)} | {sum(x.fallbacks for x in p)} |")
                print(rows[-1], flush=True)
    finally:
        engine.close()
    write_section("logprobs", "\n".join([
        f"DL19, first {args.queries} queries, BM25 top-{args.depth}, embedded judge "
        "(SmolLM2-135M-Instruct, in-process vLLM, CPU), default parameters. `constrained`: "
        "as shipped, logprobs read under the choice constraint (vLLM 0.32 masks before "
        "computing them); `free`: the same requests without the constraint, reading the "
        "unmasked top-20.\n",
        "| method | logprobs | nDCG@10 | calls | repaired | fallbacks |",
        "|---|---|---|---|---|---|", *rows]))


if __name__ == "__main__":
    main()
