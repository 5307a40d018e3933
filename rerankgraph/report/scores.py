"""What the report measures of each run: its mean scores through ir-measures, its cost
from the provenance, and its per-query wins and losses against the baseline."""

from __future__ import annotations

from dataclasses import dataclass

from rerankgraph.evaluation import per_query_scores
from rerankgraph.report.inputs import ReportInputs, RunInput

# (shown name, ir-measures name); binary measures get the --rel threshold.
MEASURES = (("nDCG@10", "nDCG@10"), ("nDCG@20", "nDCG@20"), ("R@100", "R@100"),
            ("MRR@10", "RR@10"))
TESTED = "nDCG@10"  # the measure of the significance tests and the wins and losses
TIE = 1e-9  # differences this small are ties: float noise, not a win


@dataclass(frozen=True)
class RunCost:
    """Totals over the report's queries, from a run's provenance."""

    queries: int
    calls: int
    prompt_tokens: int
    completion_tokens: int
    wall_time_s: float
    repaired: int
    fallbacks: int

    def per_query(self, total: float) -> float:
        return total / self.queries

    @property
    def tokens_per_query(self) -> float:
        return self.per_query(self.prompt_tokens + self.completion_tokens)


@dataclass(frozen=True)
class RunSummary:
    """A run's row of the summary table; `cost` is None for a run without provenance."""

    label: str
    means: dict[str, float]  # shown measure name -> mean over the report's queries
    cost: RunCost | None
    simulated: bool
    is_baseline: bool


@dataclass(frozen=True)
class WinLoss:
    """A run's per-query difference in TESTED against the baseline, largest first."""

    run: str
    deltas: list[tuple[str, float]]

    @property
    def wins(self) -> int:
        return sum(d > TIE for _, d in self.deltas)

    @property
    def losses(self) -> int:
        return sum(d < -TIE for _, d in self.deltas)

    @property
    def ties(self) -> int:
        return len(self.deltas) - self.wins - self.losses


def per_query(inputs: ReportInputs, rel: int) -> dict[str, dict[str, dict[str, float]]]:
    """{run label: {shown measure: {query id: value}}} over the report's queries."""
    wanted = set(inputs.queries)
    scores = {}
    for run in inputs.runs:
        # Ranks as scores: ir-measures orders by score, and the run's order is what counts.
        ranked = {qid: {doc: float(len(docs) - i) for i, doc in enumerate(docs)}
                  for qid, docs in run.ranking.items() if qid in wanted}
        values = per_query_scores(inputs.qrels, ranked, [m for _, m in MEASURES], rel=rel)
        scores[run.label] = {shown: values[name] for shown, name in MEASURES}
    return scores


def summaries(inputs: ReportInputs, scores: dict[str, dict[str, dict[str, float]]]
              ) -> list[RunSummary]:
    """One row per run, in the runs' order."""
    return [RunSummary(label=run.label,
                       means={m: _mean(scores[run.label][m], inputs.queries)
                              for m, _ in MEASURES},
                       cost=_cost(run, inputs.queries), simulated=run.simulated,
                       is_baseline=i == inputs.baseline)
            for i, run in enumerate(inputs.runs)]


def wins_and_losses(inputs: ReportInputs, scores: dict[str, dict[str, dict[str, float]]]
                    ) -> list[WinLoss]:
    """Every run but the baseline against it, per query, on TESTED."""
    base = scores[inputs.runs[inputs.baseline].label][TESTED]
    result = []
    for i, run in enumerate(inputs.runs):
        if i == inputs.baseline:
            continue
        mine = scores[run.label][TESTED]
        deltas = sorted(((q, mine[q] - base[q]) for q in inputs.queries),
                        key=lambda item: -item[1])
        result.append(WinLoss(run.label, deltas))
    return result


def _mean(values: dict[str, float], queries: list[str]) -> float:
    return sum(values[q] for q in queries) / len(queries)


def _cost(run: RunInput, queries: list[str]) -> RunCost | None:
    if run.provenance is None:
        return None
    records = [run.provenance[q] for q in queries]
    return RunCost(queries=len(records), calls=sum(p.llm_calls for p in records),
                   prompt_tokens=sum(p.prompt_tokens for p in records),
                   completion_tokens=sum(p.completion_tokens for p in records),
                   wall_time_s=sum(p.wall_time_s for p in records),
                   repaired=sum(p.repaired for p in records),
                   fallbacks=sum(p.fallbacks for p in records))
