"""The report's inputs, read and checked once at the door: runs, their provenance,
the qrels and (optionally) the texts. Every problem raises InputError naming the file."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from pydantic import ValidationError

from rerankgraph.data import load_beir, read_jsonl_records, read_qrels, read_trec_run
from rerankgraph.errors import InputError
from rerankgraph.types import Provenance, RerankResult

# What `rerankgraph rerank` and `batch` write as the run tag: rerankgraph-METHOD, with
# -SIMULATED when the simulated judge answered.
_TAG = re.compile(r"^rerankgraph-(?P<method>.+?)(?P<simulated>-SIMULATED)?$")
NO_PROVENANCE = "-"


@dataclass(frozen=True)
class RunInput:
    """One run: its documents per query, best first, and its per-query provenance
    (None for a run without, such as a first stage)."""

    label: str
    path: Path
    ranking: dict[str, list[str]]
    tag: str | None
    provenance: dict[str, Provenance] | None
    provenance_path: Path | None

    @property
    def simulated(self) -> bool:
        return bool(self.provenance) and any(
            p.simulated for p in (self.provenance or {}).values())


@dataclass(frozen=True)
class ReportInputs:
    """Every run, checked against each other, and the queries the report covers."""

    runs: list[RunInput]
    baseline: int  # index into runs
    queries: list[str]  # in the baseline's order
    qrels: dict[str, dict[str, int]]
    query_texts: dict[str, str]
    doc_texts: dict[str, str]
    dropped: dict[str, int]  # run label -> queries left out by --shared


def load_inputs(runs: Sequence[Path], qrels: Path, provenance: Sequence[str] = (),
                baseline: Path | None = None, shared: bool = False,
                data: Path | None = None) -> ReportInputs:
    """Reads and checks the inputs. `provenance` gives one path per run, in the runs'
    order ("-" for a run without); when empty, each run's RUN.provenance.jsonl is used
    where it exists (what `rerankgraph batch` writes). Raises InputError on runs over
    different queries (unless `shared`), provenance of another run, and qrels that miss
    a query."""
    if not runs:
        raise InputError("give at least one TREC run to report on")
    paths = [Path(p) for p in runs]
    if len({p.resolve() for p in paths}) != len(paths):
        raise InputError("a run is given twice; give each run once")
    if provenance and len(provenance) != len(paths):
        raise InputError(f"{len(provenance)} --provenance for {len(paths)} runs: give one per "
                         f"run, in the runs' order ('{NO_PROVENANCE}' for a run without)")
    provenance_paths = [_provenance_path(p, provenance[i] if provenance else None)
                        for i, p in enumerate(paths)]
    labels = _labels(paths)
    loaded = []
    for label, path, prov_path in zip(labels, paths, provenance_paths, strict=True):
        ranking = {qid: [e.doc_id for e in entries]
                   for qid, entries in read_trec_run(path).items()}
        tag = _run_tag(path)
        records = _read_provenance(prov_path, path, ranking, tag) if prov_path else None
        loaded.append(RunInput(label=label, path=path, ranking=ranking, tag=tag,
                               provenance=records, provenance_path=prov_path))
    base = _baseline_index(paths, baseline)
    queries, dropped = _shared_queries(loaded, base, shared)
    judgments = read_qrels(qrels)
    missing = [q for q in queries if q not in judgments]
    if missing:
        raise InputError(f"{qrels}: no judgments for {len(missing)} of the {len(queries)} "
                         f"queries of the runs (first: {missing[0]!r}); give the qrels of "
                         "these queries")
    query_texts: dict[str, str] = {}
    doc_texts: dict[str, str] = {}
    if data is not None:
        folder = load_beir(data)
        absent = [q for q in queries if q not in folder.queries]
        if absent:
            raise InputError(f"{len(absent)} query ids of the runs are not in "
                             f"{folder.path / 'queries.jsonl'} (first: {absent[0]!r}); give "
                             "the data folder of these runs")
        query_texts = {q: folder.queries[q] for q in queries}
        doc_texts = {doc_id: f"{title}\n{text}" if title else text
                     for doc_id, (title, text) in folder.corpus.items()}
    return ReportInputs(runs=loaded, baseline=base, queries=queries, qrels=judgments,
                        query_texts=query_texts, doc_texts=doc_texts, dropped=dropped)


def _labels(paths: Sequence[Path]) -> list[str]:
    """Short distinct names: file stems, else file names, else numbered."""
    for names in ([p.stem for p in paths], [p.name for p in paths]):
        if len(set(names)) == len(names):
            return names
    return [f"{i + 1}:{p.name}" for i, p in enumerate(paths)]


def _provenance_path(run: Path, given: str | None) -> Path | None:
    if given == NO_PROVENANCE:
        return None
    if given is not None:
        return Path(given)
    default = run.with_name(run.name + ".provenance.jsonl")
    return default if default.is_file() else None


def _run_tag(path: Path) -> str | None:
    """The run's tag (last field) when every line has the same one, else None."""
    text = path.read_text(encoding="utf-8", errors="replace")  # read_trec_run checked it
    tags = {line.split()[-1] for line in text.splitlines() if line.strip()}
    return tags.pop() if len(tags) == 1 else None


def _read_provenance(path: Path, run_path: Path, ranking: dict[str, list[str]],
                     tag: str | None) -> dict[str, Provenance]:
    """The provenance of each query, checked to be this run's: the same queries (failed
    queries, which have no run lines, are left out), the method and simulation that the
    run's tag names, and judged documents that are among the run's documents."""
    records: dict[str, Provenance] = {}
    for number, record in read_jsonl_records(path, ("query_id",)):
        try:
            result = RerankResult.model_validate(record)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(x) for x in first["loc"]) or "line"
            raise InputError(f"{path}:{number}: not a provenance record ({where}: "
                             f"{first['msg']}); give the --provenance JSONL that "
                             "`rerankgraph rerank` or `batch` wrote") from None
        if result.ok and result.provenance is not None:
            records[result.query_id] = result.provenance
    if not records:
        raise InputError(f"{path}: holds no provenance of a finished query")
    mismatch = f"--provenance {path} is not the provenance of run {run_path}"
    run_queries, prov_queries = set(ranking), set(records)
    if run_queries != prov_queries:
        both = len(run_queries & prov_queries)
        raise InputError(f"{mismatch}: the run has {len(run_queries)} queries, the provenance "
                         f"{len(prov_queries)}, {both} of them in both; give each run's "
                         "own provenance")
    match = _TAG.match(tag) if tag else None
    if match:
        methods = {p.method for p in records.values()}
        if methods != {match["method"]}:
            raise InputError(f"{mismatch}: the run's tag {tag!r} names method "
                             f"{match['method']!r}, the provenance {', '.join(sorted(methods))}")
        simulated = {p.simulated for p in records.values()}
        if simulated != {bool(match["simulated"])}:
            run_says = "simulated" if match["simulated"] else "from a model"
            raise InputError(f"{mismatch}: the run's tag {tag!r} says {run_says}, the "
                             "provenance does not")
    for qid, prov in records.items():
        docs = set(ranking[qid])
        strangers = [d for j in prov.judgments for d in j.doc_ids if d not in docs]
        if strangers:
            raise InputError(f"{mismatch}: its judgments of query {qid!r} name document "
                             f"{strangers[0]!r}, which the run does not rank")
    return records


def _baseline_index(paths: Sequence[Path], baseline: Path | None) -> int:
    if baseline is None:
        return 0
    wanted = Path(baseline).resolve()
    for i, path in enumerate(paths):
        if path.resolve() == wanted:
            return i
    raise InputError(f"--baseline {baseline} is not one of the runs; list it among RUN too")


def _shared_queries(runs: Sequence[RunInput], base: int, shared: bool
                    ) -> tuple[list[str], dict[str, int]]:
    """The queries every run has, in the baseline's order, and per run how many of its
    queries fall outside them. Differing sets raise InputError unless `shared`."""
    sets = [set(r.ranking) for r in runs]
    common = set.intersection(*sets)
    dropped = {r.label: len(s - common) for r, s in zip(runs, sets, strict=True)}
    if any(dropped.values()):
        counts = ", ".join(f"{r.path} {len(r.ranking)}" for r in runs)
        if not common:
            raise InputError(f"the runs share no query ({counts} queries); report on runs "
                             "over the same queries")
        if not shared:
            raise InputError(f"the runs cover different queries ({counts}); {len(common)} are "
                             "in every run: pass --shared to report on those only")
    return [q for q in runs[base].ranking if q in common], dropped
