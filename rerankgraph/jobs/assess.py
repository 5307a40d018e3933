"""`rerankgraph assess`: label every pooled (query, document) pair of a run's top-K
with a relevance grade 0-3 and write them as TREC qrels.

It is a batch job (jobs/rerank.py) of the `grade` method over the pool, so it is
durable, resumable, cached and carries provenance like `batch`: the state file keeps
finished queries and every engine reply, and a resumed job asks no pair twice. The
assessment method picks how the judge answers the grade (agents/grade.py):

- `pointwise`: one digit 0-3 under a constrained choice, the grade answered directly;
- `rubric`: Retro*-style, three bounded analysis lines (intent, passage, match), then
  "Grade: N" under a regex.

Either way the judge answers the grade itself, so no score is thresholded into one.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from rerankgraph.agents.grade import grade_of
from rerankgraph.data import build_job, load_beir, read_qrels, read_trec_run, write_atomic
from rerankgraph.errors import InputError, OutputError
from rerankgraph.jobs.rerank import JobProgress, JobSettings, run_rerank_job
from rerankgraph.jobs.runner import JobReport

# assessment method -> the `grade` method's parameters it runs with
ASSESS_METHODS: dict[str, dict[str, Any]] = {
    "pointwise": {"reasoning_tokens": 0},
    "rubric": {"reasoning_tokens": 96},
}


@dataclass(frozen=True)
class AssessSettings:
    """What an assessment needs: `job` holds the batch job's settings as `batch` takes
    them (engine, simulation, state, seed, ...), its `run` the pool and its `out` the
    run of the pool ranked by grade (LABELS.run). `human` and `runs`, when given, are
    checked here before any engine loads; the agreement itself is report.agreement's."""

    method: str
    labels: Path
    job: JobSettings
    human: Path | None = None
    runs: tuple[Path, ...] = ()

    @classmethod
    def make(cls, method: str, labels: Path, human: Path | None = None,
             runs: tuple[Path, ...] = (), **job: Any) -> AssessSettings:
        """Settings with the job's outputs placed beside LABELS: LABELS.run,
        LABELS.state.sqlite and LABELS.provenance.jsonl unless given."""
        if method not in ASSESS_METHODS:
            raise InputError(f"unknown assessment method {method!r}: use "
                             f"{' or '.join(ASSESS_METHODS)}")
        if runs and human is None:
            raise InputError("--runs needs --qrels: tau compares the runs' orderings under "
                             "the human qrels and under the LLM's labels")
        if len(runs) == 1:
            raise InputError("--runs needs two runs at least to order them, got 1")
        labels = Path(labels)
        params = {**ASSESS_METHODS[method], **job.pop("params", {})}
        state = job.pop("state", None) or labels.with_name(labels.name + ".state.sqlite")
        provenance = job.pop("provenance", None) or labels.with_name(
            labels.name + ".provenance.jsonl")
        settings = JobSettings(out=labels.with_name(labels.name + ".run"), method="grade",
                               params=params, durable=True, state=state,
                               provenance=provenance, **job)
        return cls(method=method, labels=labels, job=settings, human=human, runs=tuple(runs))


@dataclass
class AssessReport:
    """The labels ({query id: {doc id: grade}}), the job's report, and what was left
    out: pool documents missing from the corpus, and pairs the judge gave no grade."""

    labels: dict[str, dict[str, int]]
    job: JobReport
    missing_docs: int = 0
    ungraded: list[tuple[str, str]] = field(default_factory=list)

    @property
    def pairs(self) -> int:
        return sum(len(docs) for docs in self.labels.values())

    def summary_line(self, path: Path) -> str:
        """The batch summary, said of the labels."""
        line = self.job.summary_line(path).replace("queries reranked", "queries assessed")
        return (f"{line}; {self.pairs} pairs labelled, {self.missing_docs} pool documents "
                f"missing from the corpus skipped, {len(self.ungraded)} pairs without a grade "
                "left out")


def _ignore(message: str) -> None:
    return None


def run_assess_job(settings: AssessSettings,
                   on_progress: Callable[[JobProgress], None] | None = None,
                   log: Callable[[str], None] = _ignore,
                   on_engine_load: Callable[[], None] | None = None) -> AssessReport:
    """Labels the pool's top `depth` per query (the first `queries` queries) and writes
    them to `settings.labels` as TREC qrels (`qid 0 docid grade`), in pool order. Bad
    input raises InputError before any engine loads; a failed query's pairs are not
    written (rerun to retry them)."""
    job = settings.job
    if job.run is None:
        raise InputError("give --pool: the TREC run whose top-K pairs are assessed")
    _check_labels_path(settings)
    pool = read_trec_run(job.run)
    dataset = load_beir(job.data)
    pooled = build_job(dataset, pool, depth=job.depth, queries=job.queries)
    missing = sum(len(docs) for docs in pooled.missing_docs.values())
    assessed = [r.query.id for r in pooled.requests]
    if settings.human is not None:
        check_human_qrels(read_qrels(settings.human), assessed, settings.human)
    for run in settings.runs:
        read_trec_run(run)  # a bad run fails now, not after the judge has run
    report = run_rerank_job(job, on_progress=on_progress, log=log,
                            on_engine_load=on_engine_load)
    labels: dict[str, dict[str, int]] = {}
    ungraded: list[tuple[str, str]] = []
    order = {r.query.id: [c.doc_id for c in r.candidates] for r in pooled.requests}
    for result in report.results:
        if not result.ok or result.provenance is None:
            continue
        grades: dict[str, int] = {}
        for item in result.provenance.judgments:
            grade = grade_of(item)
            if grade is None:
                ungraded.append((result.query_id, item.doc_ids[0]))
            else:
                grades[item.doc_ids[0]] = grade
        labels[result.query_id] = {d: grades[d] for d in order.get(result.query_id, [])
                                   if d in grades}
    write_qrels(settings.labels, labels, [q for q in assessed if q in labels])
    return AssessReport(labels=labels, job=report, missing_docs=missing, ungraded=ungraded)


def check_human_qrels(human: Mapping[str, Mapping[str, int]], queries: list[str],
                      path: Path) -> None:
    """Human qrels must judge at least one of the assessed queries."""
    if not any(q in human for q in queries):
        shown = ", ".join(repr(q) for q in queries[:3])
        raise InputError(f"{path} judges none of the pool's {len(queries)} assessed queries "
                         f"({shown}{', ...' if len(queries) > 3 else ''}); give the qrels of "
                         "the pool's collection")


def write_qrels(path: Path, labels: Mapping[str, Mapping[str, int]], order: list[str]) -> None:
    """TREC qrels, atomically: `qid 0 docid grade`, queries in `order`."""
    try:
        write_atomic(path, (f"{qid} 0 {doc} {grade}\n" for qid in order
                            for doc, grade in labels[qid].items()))
    except OSError as exc:
        raise OutputError(f"could not write {path} ({exc.strerror or exc}); the judged pairs "
                          "are kept in the state file: rerun the same command") from None


def _check_labels_path(settings: AssessSettings) -> None:
    """LABELS must not be one of the inputs (the run and state paths jobs/rerank checks)."""
    job = settings.job
    inputs = [job.run, job.simulate, settings.human, *settings.runs,
              Path(job.data) / "corpus.jsonl", Path(job.data) / "queries.jsonl"]
    target = settings.labels.resolve()
    if not job.force and any(p is not None and Path(p).resolve() == target for p in inputs):
        raise InputError(f"--out {settings.labels} is one of the inputs; name another file "
                         "(or pass --force)")


def with_job(settings: AssessSettings, **changes: Any) -> AssessSettings:
    """The settings with some of the job's fields changed (tests, resumes)."""
    return replace(settings, job=replace(settings.job, **changes))
