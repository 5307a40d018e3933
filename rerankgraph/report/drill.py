"""The report's drill-down: per query, each run's top documents beside the baseline's,
with their grades, their moves and what the judge said of them; and the injection
view, the documents that climbed most without being relevant."""

from __future__ import annotations

from dataclasses import dataclass

from rerankgraph.report.inputs import ReportInputs, RunInput
from rerankgraph.types import Judgment, ParseStatus, Provenance

DRILL_DOCS = 20  # documents shown per run and query: the depth rerankers usually judge
REPLIES_PER_DOC = 3  # a setwise or pairwise document sits in many calls; show a few
REPLY_CHARS = 160
CLIMBERS = 15  # rows of the injection view per run
_WORST = {ParseStatus.OK: 0, ParseStatus.REPAIRED: 1, ParseStatus.FALLBACK: 2}


@dataclass(frozen=True)
class Reply:
    """One judgment naming a document: the agent, how its reply was read, the reply
    (cut to REPLY_CHARS) and the parsed value when it is one document's score."""

    agent: str
    status: str
    reply: str
    score: float | None
    docs_in_call: int


@dataclass(frozen=True)
class DocRow:
    """A document of a run's top DRILL_DOCS. `baseline_rank` is None when the baseline
    does not rank it; `move` counts places climbed (negative: fell)."""

    doc_id: str
    rank: int
    grade: int | None
    baseline_rank: int | None
    move: int
    replies: list[Reply]
    more_replies: int
    status: str  # the worst of its replies' statuses, "" when no call named it
    unscored: bool
    flagged: bool
    text: str


@dataclass(frozen=True)
class RunDrill:
    label: str
    docs: list[DocRow]
    delta: float  # TESTED of this run minus the baseline's, on this query


@dataclass(frozen=True)
class QueryDrill:
    query_id: str
    text: str
    baseline: list[DocRow]
    runs: list[RunDrill]


@dataclass(frozen=True)
class Climber:
    run: str
    query_id: str
    doc: DocRow


def drill_down(inputs: ReportInputs, deltas: dict[str, dict[str, float]]) -> list[QueryDrill]:
    """Every query of the report, in the baseline's order; `deltas` maps a run label to
    its per-query difference against the baseline."""
    base = inputs.runs[inputs.baseline]
    others = [r for i, r in enumerate(inputs.runs) if i != inputs.baseline]
    drills = []
    for qid in inputs.queries:
        base_docs = base.ranking[qid]
        base_rank = {doc: i + 1 for i, doc in enumerate(base_docs)}
        drills.append(QueryDrill(
            query_id=qid, text=inputs.query_texts.get(qid, ""),
            baseline=_rows(inputs, base, qid, base_rank),
            runs=[RunDrill(run.label, _rows(inputs, run, qid, base_rank),
                           deltas[run.label][qid]) for run in others]))
    return drills


def climbers(drills: list[QueryDrill]) -> dict[str, list[Climber]]:
    """Per run, the documents of grade 0 or unjudged that climbed most into its top
    DRILL_DOCS (those the baseline does not rank count as climbing from below its list)."""
    found: dict[str, list[Climber]] = {}
    for drill in drills:
        for run in drill.runs:
            found.setdefault(run.label, []).extend(
                Climber(run.label, drill.query_id, doc) for doc in run.docs
                if doc.move > 0 and (doc.grade is None or doc.grade == 0))
    return {label: sorted(rows, key=lambda c: -c.doc.move)[:CLIMBERS]
            for label, rows in found.items()}


def _rows(inputs: ReportInputs, run: RunInput, qid: str,
          base_rank: dict[str, int]) -> list[DocRow]:
    provenance = (run.provenance or {}).get(qid)
    by_doc = _judgments_by_doc(provenance)
    grades = inputs.qrels.get(qid, {})
    below = len(base_rank) + 1  # where a document the baseline lacks is counted from
    rows = []
    for rank, doc in enumerate(run.ranking[qid][:DRILL_DOCS], start=1):
        judged = by_doc.get(doc, [])
        replies = [_reply(j) for j in judged]
        rows.append(DocRow(
            doc_id=doc, rank=rank, grade=grades.get(doc), baseline_rank=base_rank.get(doc),
            move=base_rank.get(doc, below) - rank, replies=replies[:REPLIES_PER_DOC],
            more_replies=max(0, len(replies) - REPLIES_PER_DOC),
            status=max((j.status for j in judged), key=_WORST.__getitem__, default=""),
            unscored=provenance is not None and doc in provenance.unscored_docs,
            flagged=provenance is not None and doc in provenance.flagged_docs,
            text=inputs.doc_texts.get(doc, "")))
    return rows


def _judgments_by_doc(provenance: Provenance | None) -> dict[str, list[Judgment]]:
    by_doc: dict[str, list[Judgment]] = {}
    for judgment in provenance.judgments if provenance else ():
        for doc in judgment.doc_ids:
            by_doc.setdefault(doc, []).append(judgment)
    return by_doc


def _reply(judgment: Judgment) -> Reply:
    text = judgment.raw_reply.strip()
    if len(text) > REPLY_CHARS:
        text = text[:REPLY_CHARS - 1] + "…"
    # A one-document call's parsed value is that document's score (pointwise, rubric).
    single = len(judgment.doc_ids) == 1 and isinstance(judgment.parsed, int | float) \
        and not isinstance(judgment.parsed, bool)
    return Reply(agent=judgment.agent, status=str(judgment.status), reply=text,
                 score=float(judgment.parsed) if single else None,
                 docs_in_call=len(judgment.doc_ids))
