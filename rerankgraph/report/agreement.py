"""Agreement between LLM relevance labels and human qrels: Cohen's kappa (graded and
binarised), the 4x4 confusion matrix, per-grade precision, and Kendall's tau between the
system orderings the two sets of labels give.

The sums are scikit-learn's (cohen_kappa_score, confusion_matrix), the tau scipy's
(kendalltau) and nDCG ir-measures' (through rerankgraph.evaluation); nothing is computed
by hand. The JSON written is the schema `rerankgraph report --agreement` reads.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from rerankgraph.data import read_trec_run, write_atomic
from rerankgraph.errors import InputError
from rerankgraph.evaluation import per_query_scores

GRADES = (0, 1, 2, 3)
TAU_MEASURE = "nDCG@10"


class TauUndefined(InputError):
    """Kendall's tau has no value: one side gives every run the same score."""


@dataclass(frozen=True)
class Tau:
    """Kendall's tau-b between the runs' orderings by `measure` under the two qrels."""

    value: float
    p: float
    measure: str
    runs: tuple[str, ...]
    human_scores: tuple[float, ...] = ()
    llm_scores: tuple[float, ...] = ()


@dataclass(frozen=True)
class Agreement:
    """Agreement over the `pairs` pairs both sides graded; `skipped` pairs of the
    assessed pool were left out (no human label, or missing from the corpus).
    `kappa_graded` is unweighted Cohen's kappa over the grades 0-3 (every disagreement
    counts alike); `kappa_binary` is over grade >= `binary_threshold`. `confusion[h][l]`
    counts pairs with human grade h and LLM grade l; `precision_by_grade[g]` is the share
    of the pairs the LLM graded g that the human graded g too (None where the LLM never
    gave g)."""

    labels: str
    human: str
    pairs: int
    skipped: int
    kappa_graded: float
    kappa_binary: float
    binary_threshold: int
    confusion: tuple[tuple[int, ...], ...]
    precision_by_grade: dict[str, float | None]
    tau: Tau | None = None

    def as_json(self) -> dict[str, Any]:
        """The agreement file's fields, exactly as `report --agreement` reads them."""
        tau = None if self.tau is None else {
            "value": self.tau.value, "p": self.tau.p, "measure": self.tau.measure,
            "runs": list(self.tau.runs)}
        return {"labels": self.labels, "human": self.human, "pairs": self.pairs,
                "skipped": self.skipped, "kappa_graded": self.kappa_graded,
                "kappa_binary": self.kappa_binary, "binary_threshold": self.binary_threshold,
                "confusion": [list(row) for row in self.confusion],
                "precision_by_grade": dict(self.precision_by_grade), "tau": tau}

    def lines(self) -> list[str]:
        """What stdout shows: the counts, both kappas, the matrix, precision and tau."""
        out = [f"agreement of {self.labels} with {self.human}: {self.pairs} pairs "
               f"({self.skipped} skipped)",
               f"Cohen's kappa, graded 0-3 (unweighted): {self.kappa_graded:.4f}",
               f"Cohen's kappa, binary (grade >= {self.binary_threshold}): "
               f"{self.kappa_binary:.4f}",
               "confusion (rows human 0-3, columns LLM 0-3):"]
        out += ["  " + " ".join(f"{n:6d}" for n in row) for row in self.confusion]
        out.append("precision by LLM grade: " + ", ".join(
            f"{g}: {'-' if p is None else f'{p:.3f}'}" for g, p in self.precision_by_grade.items()))
        if self.tau is not None:
            out.append(f"Kendall's tau of {len(self.tau.runs)} runs by {self.tau.measure}, "
                       f"human vs LLM labels: {self.tau.value:.4f} (p = {self.tau.p:.4g})")
            out += [f"  {run}: {self.tau.measure} {h:.4f} human, {g:.4f} LLM" for run, h, g
                    in zip(self.tau.runs, self.tau.human_scores, self.tau.llm_scores,
                           strict=False)]
        return out


def _clip(grade: int) -> int:
    # Qrels on other scales (a -1 or a 4) go to the nearest end of 0-3.
    return min(max(grade, GRADES[0]), GRADES[-1])


def agreement(labels: Mapping[str, Mapping[str, int]], human: Mapping[str, Mapping[str, int]],
              *, labels_name: str, human_name: str, binary_threshold: int = 2,
              skipped: int = 0) -> Agreement:
    """Agreement over the labelled pairs that `human` also judges; the others are
    added to `skipped`. Raises InputError when no pair is judged by both."""
    if binary_threshold not in GRADES[1:]:
        raise InputError(f"--binary-threshold must be 1, 2 or 3, got {binary_threshold}")
    from sklearn.metrics import cohen_kappa_score, confusion_matrix

    llm, people = [], []
    for qid, docs in labels.items():
        for doc, grade in docs.items():
            judged = human.get(qid, {}).get(doc)
            if judged is None:
                skipped += 1
                continue
            llm.append(_clip(grade))
            people.append(_clip(judged))
    if not llm:
        raise InputError(f"{human_name} judges none of the pairs in {labels_name}")
    matrix = confusion_matrix(people, llm, labels=list(GRADES))
    precision: dict[str, float | None] = {}
    for grade in GRADES:
        given = int(matrix[:, grade].sum())
        precision[str(grade)] = int(matrix[grade, grade]) / given if given else None
    binary_llm = [int(g >= binary_threshold) for g in llm]
    binary_people = [int(g >= binary_threshold) for g in people]
    return Agreement(
        labels=labels_name, human=human_name, pairs=len(llm), skipped=skipped,
        kappa_graded=_kappa(cohen_kappa_score, people, llm),
        kappa_binary=_kappa(cohen_kappa_score, binary_people, binary_llm),
        binary_threshold=binary_threshold,
        confusion=tuple(tuple(int(n) for n in row) for row in matrix),
        precision_by_grade=precision)


def _kappa(score: Any, a: Sequence[int], b: Sequence[int]) -> float:
    # When both sides give one and the same label throughout, chance agreement is 1 and
    # kappa is 0/0; the two agree perfectly, so it is 1.
    if len(set(a)) == 1 and list(a) == list(b):
        return 1.0
    return float(score(a, b))


def ranking_tau(runs: Mapping[str, Mapping[str, Mapping[str, float]]],
                human: Mapping[str, Mapping[str, int]], labels: Mapping[str, Mapping[str, int]],
                queries: Sequence[str], measure: str = TAU_MEASURE) -> Tau:
    """Kendall's tau between the runs ordered by mean `measure` under `human` and under
    `labels`, both over `queries` only (the assessed ones; a run's other queries are
    left out). Needs two runs at least."""
    if len(runs) < 2:
        raise InputError(f"--runs needs two runs at least to order them, got {len(runs)}")
    from scipy.stats import kendalltau

    wanted = set(queries)
    means: dict[str, list[float]] = {"human": [], "llm": []}
    for name, run in runs.items():
        kept = {q: dict(docs) for q, docs in run.items() if q in wanted}
        if not kept:
            raise InputError(f"run {name} ranks none of the assessed queries")
        for side, qrels in (("human", human), ("llm", labels)):
            judged = {q: dict(d) for q, d in qrels.items() if q in wanted}
            scores = per_query_scores(judged, kept, [measure])[measure]
            means[side].append(sum(scores.values()) / len(scores))
    result = kendalltau(means["human"], means["llm"])
    value, p = float(result.statistic), float(result.pvalue)
    if math.isnan(value):
        raise TauUndefined(f"Kendall's tau is undefined: every run has the same {measure} "
                         "under one of the qrels; give runs that differ")
    return Tau(value=value, p=p, measure=measure, runs=tuple(runs),
               human_scores=tuple(means["human"]), llm_scores=tuple(means["llm"]))


def read_runs(paths: Sequence[Path]) -> dict[str, dict[str, dict[str, float]]]:
    """TREC runs by path, as {query id: {doc id: score}} each."""
    return {str(path): {q: {e.doc_id: e.score for e in entries}
                        for q, entries in read_trec_run(path).items()} for path in paths}


def agreement_path(labels: Path) -> Path:
    """LABELS.agreement.json beside the labels (LABELS's own suffix replaced)."""
    return labels.with_name(labels.stem + ".agreement.json")


def write_agreement(path: Path, result: Agreement) -> None:
    write_atomic(path, [json.dumps(result.as_json(), indent=2) + "\n"])


def measure_agreement(labels: Mapping[str, Mapping[str, int]], human_path: Path,
                      labels_path: Path, *, runs: Sequence[Path] = (),
                      binary_threshold: int = 2, skipped: int = 0) -> list[str]:
    """`agreement` of the labels with the qrels at `human_path` (and `ranking_tau` of
    `runs` when given), written to LABELS.agreement.json; returns the lines to print."""
    from rerankgraph.data import read_qrels

    human = read_qrels(human_path)
    result = agreement(labels, human, labels_name=str(labels_path), human_name=str(human_path),
                       binary_threshold=binary_threshold, skipped=skipped)
    notes = []
    if runs:
        try:
            result = replace(result, tau=ranking_tau(read_runs(runs), human, labels,
                                                     list(labels)))
        except TauUndefined as exc:  # the labels are kept and written all the same
            notes.append(f"no tau: {exc}")
    path = agreement_path(labels_path)
    write_agreement(path, result)
    return [*result.lines(), *notes, f"wrote {path}"]
