"""Run evaluation through ir-measures (no metric is computed by hand)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import ir_measures

from rerankgraph.data import read_qrels, read_trec_run

DEFAULT_MEASURES = ("nDCG@10", "R@100")


def evaluate_run(qrels_path: str | Path, run_path: str | Path,
                 measures: Sequence[str] = DEFAULT_MEASURES, rel: int = 1,
                 only_run_queries: bool = True) -> dict[str, float]:
    """Mean of each measure over the run's queries. `rel` is the minimum grade that
    counts as relevant for binary measures (use 2 on TREC DL)."""
    qrels = read_qrels(qrels_path)
    run = {qid: {e.doc_id: e.score for e in entries}
           for qid, entries in read_trec_run(run_path).items()}
    if only_run_queries:
        qrels = {qid: docs for qid, docs in qrels.items() if qid in run}
    parsed = [ir_measures.parse_measure(_with_rel(m, rel)) for m in measures]
    scores = ir_measures.calc_aggregate(parsed, qrels, run)
    return {name: float(scores[measure]) for name, measure in zip(measures, parsed, strict=True)}


def per_query_scores(qrels: dict[str, dict[str, int]], run: dict[str, dict[str, float]],
                     measures: Sequence[str], rel: int = 1) -> dict[str, dict[str, float]]:
    """{measure name: {query id: value}} for every query of `run`, through ir-measures.
    A query with no judged document scores 0 (ir-measures leaves it out)."""
    parsed = [ir_measures.parse_measure(_with_rel(m, rel)) for m in measures]
    names = dict(zip(parsed, measures, strict=True))
    scores: dict[str, dict[str, float]] = {name: dict.fromkeys(run, 0.0) for name in measures}
    judged = {qid: docs for qid, docs in qrels.items() if qid in run}
    for metric in ir_measures.iter_calc(parsed, judged, run):
        scores[names[metric.measure]][metric.query_id] = float(metric.value)
    return scores


@dataclass(frozen=True)
class RunScores:
    """Each run's mean of each measure: `rows` in the order the runs were given, each
    with its scores by measure name, in the order of `measures`."""

    measures: tuple[str, ...]
    rows: tuple[tuple[Path, dict[str, float]], ...]


def evaluate_runs(qrels_path: str | Path, run_paths: Sequence[Path],
                  measures: Sequence[str] | None = None, rel: int = 1) -> RunScores:
    """`evaluate_run` of each run (default measures: DEFAULT_MEASURES)."""
    wanted = tuple(measures or DEFAULT_MEASURES)
    return RunScores(wanted, tuple((path, evaluate_run(qrels_path, path, wanted, rel=rel))
                                   for path in run_paths))


def _with_rel(measure: str, rel: int) -> str:
    # Graded measures (nDCG) use grades as they are; binary ones need a threshold.
    if rel == 1 or measure.lower().startswith("ndcg") or "(" in measure:
        return measure
    name, _, cutoff = measure.partition("@")
    return f"{name}(rel={rel})@{cutoff}" if cutoff else f"{name}(rel={rel})"
