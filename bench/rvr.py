"""Retrieve-verify-refine and Vote-in-Context benchmarks on full corpora.

    python bench/rvr.py simulate --data ../shared/data/cranfield --index out/idx-cranfield
    python bench/rvr.py real --data ../shared/data/cranfield --index out/idx-cranfield \
        --queries 12

Rows: BM25 alone, dense alone, RRF and CombSUM of both (no LLM); vic over the same two
lists, with the paper's round-robin pool (each list's top `--vic-depth` / 2, repeats
kept, one call) and with the RRF pool (the RRF top `--vic-depth` in windows), the RRF
tail kept below; and rvr with its default confidence-weighted fusion and with plain RRF. `simulate` answers every judged
query with the simulated judge (qrels with noise): a SIMULATION, to study the loop's
stopping behaviour at scale. `real` runs the embedded SmolLM2-135M judge on the first
`--queries` judged queries.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import write_section  # noqa: E402

from rerankgraph.data import load_beir, read_qrels, write_trec_run  # noqa: E402
from rerankgraph.evaluation import evaluate_run  # noqa: E402
from rerankgraph.index.corpus import CorpusIndex  # noqa: E402
from rerankgraph.retrievers.fusion import fuse  # noqa: E402
from rerankgraph.sdk import Reranker  # noqa: E402
from rerankgraph.serving.base import Engine  # noqa: E402
from rerankgraph.simulation import SimulatedJudge, SimulationSettings  # noqa: E402

MEASURES = ["nDCG@10", "R@100"]
HEADER = ["| method | judge | rounds/query | LLM calls/query | tokens/query | s/query | "
          "stopped confident | repaired / fallback replies | top-10 differs from RRF | "
          "nDCG@10 | R@100 |",
          "|---|---|---|---|---|---|---|---|---|---|---|"]


def judged_queries(data: Path, limit: int | None) -> dict[str, str]:
    judged = read_qrels(data / "qrels.tsv")
    queries = {q: t for q, t in load_beir(data).queries.items() if q in judged}
    return dict(list(queries.items())[:limit])


def score(runs: dict[str, list[tuple[str, float]]], qrels: Path, folder: Path, tag: str
          ) -> dict[str, float]:
    out = folder / f"{tag}.trec"
    write_trec_run(out, {q: [f"{q} Q0 {d} {i} {s:.6f} {tag}" for i, (d, s) in
                             enumerate(hits[:100], start=1)] for q, hits in runs.items()})
    return evaluate_run(qrels, out, MEASURES, only_run_queries=False)


def row(method: str, judge: str, scores: dict[str, float], results: list | None = None,
        seconds: float | None = None, moved: float | None = None) -> str:
    if not results:
        return (f"| {method} | - | - | - | - | - | - | - | - | {scores['nDCG@10']:.4f} | "
                f"{scores['R@100']:.4f} |")
    ok = [r for r in results if r.ok]
    stops = [next((s for s in r.provenance.trace if s.get("phase") == "stop"), {}) for r in ok]
    rounds = statistics.mean(s.get("rounds", 1) for s in stops) if any(stops) else 1
    confident = (f"{100 * statistics.mean(str(s.get('reason', '')).startswith('confident') for s in stops):.0f}%"
                 if any(stops) else "-")
    calls = statistics.mean(r.provenance.llm_calls for r in ok)
    tokens = statistics.mean(r.provenance.prompt_tokens + r.provenance.completion_tokens
                             for r in ok)
    fallbacks = sum(r.provenance.fallbacks for r in ok)
    repaired = sum(r.provenance.repaired for r in ok)
    moved_share = f"{100 * moved:.0f}% of queries" if moved is not None else "-"
    per_query = f"{seconds / len(results):.1f}" if seconds is not None else "-"
    return (f"| {method} | {judge} | {rounds:.2f} | {calls:.1f} | {tokens:,.0f} | {per_query} | "
            f"{confident} | {repaired} / {fallbacks} | {moved_share} | {scores['nDCG@10']:.4f} | "
            f"{scores['R@100']:.4f} |")


def compare(data: Path, index_path: Path, queries: dict[str, str], engine: Engine, judge: str,
            vic_depth: int, folder: Path, methods: tuple[str, ...] = ("vic", "rvr"),
            pools: tuple[str, ...] = ("round-robin", "rrf"),
            fusions: tuple[str, ...] = ("weighted", "rrf")) -> list[str]:
    # Measured over exactly these queries: a query that fails or finds nothing scores 0.
    qrels = folder / "qrels.tsv"
    judged = read_qrels(data / "qrels.tsv")
    qrels.write_text("query-id\tcorpus-id\tscore\n" + "".join(f"{q}\t{d}\t{g}\n" for q in queries for d, g in judged[q].items()))
    index = CorpusIndex(index_path)
    index.attach_corpus(data)
    lists = {name: index.retriever(name).search(queries, 100) for name in ("bm25", "dense")}
    rows = [row(name, "-", score(hits, qrels, folder, name)) for name, hits in lists.items()]
    fused = {how: {q: fuse({n: lists[n][q] for n in lists}, how)[:100] for q in queries}
             for how in ("rrf", "combsum")}
    rows += [row(f"{how.upper()} of bm25 + dense", "-", score(fused[how], qrels, folder, how))
             for how in fused]
    print("\n".join(rows), flush=True)
    if "vic" in methods:
        rows += [vic_row(index, queries, engine, judge, vic_depth, fused, qrels, folder, pool)
                 for pool in pools]
    if "rvr" in methods:
        rows += [rvr_row(index, queries, engine, judge, fused, qrels, folder, fusion)
                 for fusion in fusions]
    return rows


def vic_row(index: CorpusIndex, queries: dict[str, str], engine: Engine, judge: str,
            vic_depth: int, fused: dict, qrels: Path, folder: Path, pool: str) -> str:
    """vic over bm25 + dense: the paper's pool (each list's top vic_depth / 2, with
    repeats, in one call, over the RRF top 100), or the RRF top vic_depth in windows."""
    depth = 100 if pool == "round-robin" else vic_depth
    started = time.perf_counter()
    with Reranker("vic", engine=engine, index=index, retriever="bm25,dense", depth=depth,
                  params={"pool": pool, "window": vic_depth}) as reranker:
        results = reranker.search_batch(queries, k=depth)
    seconds = time.perf_counter() - started
    vic_runs = {}
    for result in results:  # the vic order above the RRF tail, to 100
        head = [d.doc_id for d in result.ranking]
        tail = [d for d, _ in fused["rrf"][result.query_id] if d not in set(head)]
        order = head + tail
        vic_runs[result.query_id] = [(d, float(len(order) - i)) for i, d in enumerate(order)]
    # A judge that leaves the order as given changes nothing: count where it did not.
    moved = statistics.mean(
        [d for d, _ in vic_runs[q][:10]] != [d for d, _ in fused["rrf"][q][:10]]
        for q in vic_runs)
    label = (f"vic, round-robin pool of {vic_depth} (each list's top {vic_depth // 2})"
             if pool == "round-robin" else f"vic over the RRF top {vic_depth} (pool=rrf)")
    line = row(label, judge, score(vic_runs, qrels, folder, f"vic-{pool}"), results, seconds,
               moved)
    print(line, flush=True)
    return line


RVR_ROWS = {"weighted": "rvr (defaults: 2 variants, bm25 + dense, 3 rounds, threshold 70, "
                        "confidence-weighted RRF)",
            "rrf": "rvr, fusion=rrf (plain RRF of the active paths)"}


def rvr_row(index: CorpusIndex, queries: dict[str, str], engine: Engine, judge: str,
            fused: dict, qrels: Path, folder: Path, fusion: str) -> str:
    started = time.perf_counter()
    with Reranker("rvr", engine=engine, index=index, params={"fusion": fusion}) as reranker:
        results = reranker.search_batch(queries, k=100)
    seconds = time.perf_counter() - started
    rvr_runs = {r.query_id: [(d.doc_id, d.score) for d in r.ranking] for r in results if r.ok}
    moved = statistics.mean(
        [d for d, _ in rvr_runs.get(q, [])[:10]] != [d for d, _ in fused["rrf"][q][:10]]
        for q in queries)
    line = row(RVR_ROWS[fusion], judge, score(rvr_runs, qrels, folder, f"rvr-{fusion}"),
               results, seconds, moved)
    print(line, flush=True)
    return line


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("mode", choices=["simulate", "real"])
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--index", type=Path, required=True)
    parser.add_argument("--queries", type=int, default=None)
    parser.add_argument("--noise", type=float, nargs="+", default=[0.0, 0.2])
    parser.add_argument("--vic-depth", type=int, default=20)
    parser.add_argument("--methods", nargs="+", default=["vic", "rvr"], choices=["vic", "rvr"],
                        help="the LLM rows to run (the others are left out)")
    parser.add_argument("--pools", nargs="+", default=["round-robin", "rrf"],
                        choices=["round-robin", "rrf"], help="vic rows: the pools to run")
    parser.add_argument("--fusions", nargs="+", default=["weighted", "rrf"],
                        choices=["weighted", "rrf"], help="rvr rows: the fusions to run")
    parser.add_argument("--model", default="smollm2-135m",
                        help="real: the judge (an alias of `rerankgraph models list`)")
    args = parser.parse_args()
    queries = judged_queries(args.data, args.queries)
    body = []
    with tempfile.TemporaryDirectory() as temp:
        if args.mode == "simulate":
            dataset = load_beir(args.data)
            qrels = read_qrels(args.data / "qrels.tsv")
            body.append(f"SIMULATION: the judge answers from the qrels with Gaussian noise on "
                        f"relevance; all {len(queries)} judged queries of {args.data.name}.")
            for noise in args.noise:
                judge = SimulatedJudge(qrels, dataset.queries, dataset.corpus,
                                       SimulationSettings(score_noise=noise), seed=0)
                rows = compare(args.data, args.index, queries, judge,
                               f"simulated, noise {noise:g}", args.vic_depth, Path(temp),
                               tuple(args.methods), tuple(args.pools), tuple(args.fusions))
                body += ["", *HEADER, *(rows if noise == args.noise[0] else rows[4:])]
        else:
            from rerankgraph.serving.factory import build_engine
            from rerankgraph.serving.model_store import EMBEDDED_ALIASES, resolve_model

            engine = build_engine(resolve_model(args.model))
            judge = "SmolLM2-135M" if args.model in EMBEDDED_ALIASES else args.model
            try:
                body.append(f"Judge {judge}, the first {len(queries)} judged "
                            f"queries of {args.data.name} (all in flight together).")
                body += ["", *HEADER, *compare(args.data, args.index, queries, engine,
                                               judge, args.vic_depth, Path(temp),
                                               tuple(args.methods), tuple(args.pools),
                                               tuple(args.fusions))]
            finally:
                engine.close()
    suffix = ("" if set(args.methods) == {"vic", "rvr"} else "-" + "-".join(args.methods)) \
        + ("" if args.mode == "simulate" or args.model == "smollm2-135m" else f"-{args.model}")
    write_section(f"rvr-{args.mode}-{args.data.name}{suffix}", "\n".join(body))


if __name__ == "__main__":
    main()
