"""`rerankgraph report`: the inputs read and checked, measured, tested and drawn, then
written as one self-contained HTML file; the plain-text summary comes back for stdout."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from rerankgraph.data import write_atomic
from rerankgraph.errors import InputError
from rerankgraph.report import plots
from rerankgraph.report.agreement_view import Agreement, read_agreement
from rerankgraph.report.drill import DRILL_DOCS, climbers, drill_down
from rerankgraph.report.inputs import ReportInputs, load_inputs
from rerankgraph.report.scores import (
    MEASURES,
    TESTED,
    RunSummary,
    WinLoss,
    per_query,
    summaries,
    wins_and_losses,
)
from rerankgraph.report.stats import PairedTest, against_baseline


@dataclass(frozen=True)
class ReportSettings:
    """Everything `rerankgraph report` takes. `provenance` gives one path per run ("-"
    for none), or nothing to use each run's RUN.provenance.jsonl where it exists; `rel`
    is the lowest grade binary measures count as relevant (2 on TREC DL)."""

    runs: Sequence[Path]
    qrels: Path
    out: Path
    provenance: Sequence[str] = ()
    baseline: Path | None = None
    shared: bool = False
    agreement: Path | None = None
    data: Path | None = None
    rel: int = 1


@dataclass(frozen=True)
class ReportOutcome:
    """The written file, its size, and the summary for stdout."""

    path: Path
    size_bytes: int
    summary: list[str]
    notices: list[str] = field(default_factory=list)


def build_report(settings: ReportSettings, log: Callable[[str], None] | None = None
                 ) -> ReportOutcome:
    """Reads and checks the inputs (InputError naming the file on bad input), measures
    and tests every run against the baseline, and writes settings.out."""
    _check_out(settings)
    agreement = read_agreement(settings.agreement) if settings.agreement else None
    inputs = load_inputs(settings.runs, settings.qrels, settings.provenance,
                         baseline=settings.baseline, shared=settings.shared,
                         data=settings.data)
    scores = per_query(inputs, settings.rel)
    rows = summaries(inputs, scores)
    base = inputs.runs[inputs.baseline].label
    tests = (against_baseline({label: [s[TESTED][q] for q in inputs.queries]
                               for label, s in scores.items()}, base)
             if len(inputs.runs) > 1 and len(inputs.queries) > 1 else [])
    winloss = wins_and_losses(inputs, scores)
    notices = _notices(inputs, agreement, len(inputs.queries))
    for notice in notices:
        if log is not None:
            log(notice)
    html = _render(settings, inputs, rows, tests, winloss, agreement, notices)
    write_atomic(settings.out, [html])
    return ReportOutcome(path=settings.out, size_bytes=settings.out.stat().st_size,
                         summary=summary_lines(rows, tests, winloss, base, settings.rel),
                         notices=notices)


def summary_lines(rows: list[RunSummary], tests: list[PairedTest], winloss: list[WinLoss],
                  baseline: str, rel: int) -> list[str]:
    """The summary table and one significance line per run, as plain text."""
    width = max(len(r.label) for r in rows) + len(" (baseline)")
    head = (f"{'run':<{width}} " + " ".join(f"{m:>8}" for m, _ in MEASURES)
            + f" {'calls/q':>8} {'prompt/q':>9} {'compl/q':>8} {'wall s':>8}"
            + f" {'repaired':>8} {'fallback':>8}")
    lines = [head]
    for row in rows:
        name = row.label + (" (baseline)" if row.is_baseline else "")
        line = f"{name:<{width}} " + " ".join(f"{row.means[m]:>8.4f}" for m, _ in MEASURES)
        cost = row.cost
        if cost is None:  # blanks, not zeros: the run says nothing of its cost
            line += f" {'':>8} {'':>9} {'':>8} {'':>8} {'':>8} {'':>8}"
        else:
            line += (f" {cost.per_query(cost.calls):>8.1f}"
                     f" {cost.per_query(cost.prompt_tokens):>9,.0f}"
                     f" {cost.per_query(cost.completion_tokens):>8,.1f}"
                     f" {cost.wall_time_s:>8.1f} {cost.repaired:>8} {cost.fallbacks:>8}")
        lines.append(line.rstrip())
    lines.append(f"binary measures count grade >= {rel} as relevant; wall s is the sum of "
                 "each query's own time")
    if tests:
        runs = f"{len(tests)} run" + ("s" if len(tests) > 1 else "")
        lines.append(f"{TESTED} against {baseline} over {tests[0].n} queries (Holm over "
                     f"{runs}):")
    counts = {w.run: w for w in winloss}
    for test in tests:
        w = counts[test.run]
        lines.append(
            f"  {test.run}: Δ {test.mean_diff:+.4f} [95% CI {_num(test.ci_low, '+.4f')}, "
            f"{_num(test.ci_high, '+.4f')}], d {_num(test.cohens_d, '.2f')}; t-test p "
            f"{p_value(test.p_t)} (Holm {p_value(test.p_t_holm)}); permutation p "
            f"{p_value(test.p_perm)} (Holm {p_value(test.p_perm_holm)}); "
            f"{w.wins} wins, {w.ties} ties, {w.losses} losses")
    return lines


def _num(value: float, spec: str) -> str:
    return "n/a" if math.isnan(value) else format(value, spec)


def p_value(value: float) -> str:
    """A p-value as shown: four decimals, or scientific below 0.0001; n/a when NaN."""
    return _num(value, ".2e" if value < 1e-4 else ".4f")


def _check_out(settings: ReportSettings) -> None:
    inputs = [*settings.runs, settings.qrels,
              *(Path(p) for p in settings.provenance if p != "-")]
    if settings.agreement:
        inputs.append(settings.agreement)
    target = Path(settings.out).resolve()
    if any(Path(p).resolve() == target for p in inputs):
        raise InputError(f"--out {settings.out} is one of the inputs; write the report "
                         "elsewhere")
    if target.is_dir():
        raise InputError(f"--out {settings.out} is a folder; give the HTML file to write")


def _notices(inputs: ReportInputs, agreement: Agreement | None, queries: int) -> list[str]:
    notices = [f"{label}: {n} of its queries are in some run only, left out (--shared)"
               for label, n in inputs.dropped.items() if n]
    if any(r.simulated for r in inputs.runs):
        notices.append("SIMULATED JUDGE: "
                       + ", ".join(r.label for r in inputs.runs if r.simulated)
                       + " answered from qrels, not a model")
    if queries < 2:
        notices.append("one query only: no significance test")
    if agreement is not None:
        notices += agreement.problems
    return notices


def _render(settings: ReportSettings, inputs: ReportInputs, rows: list[RunSummary],
            tests: list[PairedTest], winloss: list[WinLoss], agreement: Agreement | None,
            notices: list[str]) -> str:
    import jinja2

    base = inputs.runs[inputs.baseline].label
    drills = drill_down(inputs, {w.run: dict(w.deltas) for w in winloss})
    env = jinja2.Environment(loader=jinja2.PackageLoader("rerankgraph", "report"),
                             autoescape=True, trim_blocks=True, lstrip_blocks=True,
                             undefined=jinja2.StrictUndefined)
    env.filters["num"] = _num
    env.filters["p"] = p_value
    return env.get_template("report.html.j2").render(
        title="rerankgraph report", built=time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        settings=settings, inputs=inputs, rows=rows, measures=[m for m, _ in MEASURES],
        tested=TESTED, baseline=base, tests=tests,
        winloss=[(w, _markup(plots.delta_bars(w, base))) for w in winloss],
        cost_plot=_markup(plots.cost_quality(rows)),
        uncosted=[r.label for r in rows if r.cost is None], drills=drills,
        climbers=climbers(drills), drill_docs=DRILL_DOCS, agreement=agreement,
        notices=notices, rel=settings.rel)


def _markup(svg: str | None) -> object:
    from markupsafe import Markup

    return None if svg is None else Markup(svg)
