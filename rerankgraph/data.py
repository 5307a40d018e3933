"""Readers and writers for BEIR folders, TREC runs and qrels.

Every reader validates as it goes and names the file and line of the first problem.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from rerankgraph.errors import InputError
from rerankgraph.types import Candidate, Query, RerankRequest, RerankResult


@dataclass(frozen=True)
class RunEntry:
    doc_id: str
    rank: int
    score: float


@dataclass
class BeirFolder:
    """A BEIR-layout folder: corpus.jsonl and queries.jsonl (qrels.tsv optional)."""

    path: Path
    corpus: dict[str, tuple[str, str]]  # doc id -> (title, text)
    queries: dict[str, str]


def _read_lines(path: Path) -> Iterator[tuple[int, str]]:
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise InputError(f"{path}: file not found") from None
    except IsADirectoryError:
        raise InputError(f"{path}: is a folder, expected a file") from None
    if raw.startswith(b"\xef\xbb\xbf"):  # a UTF-8 byte-order mark, as Windows tools write
        raw = raw[3:]
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line_number = raw[:exc.start].count(b"\n") + 1
        raise InputError(f"{path}:{line_number}: not valid UTF-8 (byte {raw[exc.start]:#04x}); "
                         "re-encode the file as UTF-8") from None
    yield from enumerate(text.splitlines(), start=1)


def read_jsonl_records(path: Path, required: tuple[str, ...]) -> Iterator[tuple[int, dict]]:
    """(line number, object) of each non-blank line; a bad line raises InputError
    naming the file and line."""
    for number, line in _read_lines(path):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise InputError(f"{path}:{number}: not valid JSON ({exc.msg}); each line must be "
                             "one JSON object") from None
        if not isinstance(record, dict):
            raise InputError(f"{path}:{number}: expected a JSON object, got "
                             f"{type(record).__name__}")
        missing = [k for k in required if k not in record]
        if missing:
            raise InputError(f"{path}:{number}: missing field {missing[0]!r}")
        yield number, record


def load_beir(folder: str | Path) -> BeirFolder:
    """Reads corpus.jsonl and queries.jsonl. Raises InputError naming the file and line."""
    path = Path(folder)
    if not path.is_dir():
        raise InputError(f"data folder {str(path)!r} does not exist or is not a folder")
    for name in ("corpus.jsonl", "queries.jsonl"):
        file = path / name
        if not file.is_file():
            raise InputError(f"data folder {str(path)!r} has no {name}; expected the BEIR "
                             "layout (corpus.jsonl, queries.jsonl)")
        if file.stat().st_size == 0:
            raise InputError(f"{file} is empty")
    corpus: dict[str, tuple[str, str]] = {}
    for number, record in read_jsonl_records(path / "corpus.jsonl", ("_id", "text")):
        doc_id = str(record["_id"])
        if doc_id in corpus:
            raise InputError(f"{path / 'corpus.jsonl'}:{number}: duplicate _id {doc_id!r}")
        corpus[doc_id] = (str(record.get("title") or ""), str(record["text"] or ""))
    if not corpus:
        raise InputError(f"{path / 'corpus.jsonl'} holds no documents")
    return BeirFolder(path=path, corpus=corpus, queries=read_queries(path))


def read_queries(folder: str | Path) -> dict[str, str]:
    """FOLDER/queries.jsonl as {query id: text}, in file order."""
    file = Path(folder) / "queries.jsonl"
    if not file.is_file():
        raise InputError(f"data folder {str(folder)!r} has no queries.jsonl")
    queries: dict[str, str] = {}
    for _, record in read_jsonl_records(file, ("_id", "text")):
        queries[str(record["_id"])] = str(record["text"] or "")
    if not queries:
        raise InputError(f"{file} holds no queries")
    return queries


def read_trec_run(path: str | Path) -> dict[str, list[RunEntry]]:
    """Reads `qid Q0 docid rank score tag` lines. Returns entries per query, best first
    (by score, then rank), in the order queries first appear."""
    run: dict[str, list[RunEntry]] = {}
    seen: set[tuple[str, str]] = set()
    file = Path(path)
    for number, line in _read_lines(file):
        if not line.strip():
            continue
        fields = line.split()
        if len(fields) != 6:
            raise InputError(f"{file}:{number}: expected 6 fields (qid Q0 docid rank score "
                             f"tag), found {len(fields)}")
        qid, _, doc_id, rank, score, _ = fields
        try:
            entry = RunEntry(doc_id=doc_id, rank=int(rank), score=float(score))
        except ValueError:
            raise InputError(f"{file}:{number}: rank {rank!r} must be an integer and score "
                             f"{score!r} a number") from None
        if (qid, doc_id) in seen:
            raise InputError(f"{file}:{number}: doc {doc_id!r} appears twice for query {qid!r}")
        seen.add((qid, doc_id))
        run.setdefault(qid, []).append(entry)
    if not run:
        raise InputError(f"{file}: holds no run lines")
    for entries in run.values():
        entries.sort(key=lambda e: (-e.score, e.rank))
    return run


def read_qrels(path: str | Path) -> dict[str, dict[str, int]]:
    """Reads qrels as TSV with header (query-id, corpus-id, score) or TREC's
    `qid 0 docid rel`."""
    qrels: dict[str, dict[str, int]] = {}
    file = Path(path)
    for number, line in _read_lines(file):
        fields = line.split()
        if not fields or (number == 1 and fields[0] == "query-id"):
            continue
        if len(fields) == 4:
            qid, _, doc_id, rel = fields
        elif len(fields) == 3:
            qid, doc_id, rel = fields
        else:
            raise InputError(f"{file}:{number}: expected 'qid docid rel' or 'qid 0 docid rel', "
                             f"found {len(fields)} fields")
        try:
            qrels.setdefault(qid, {})[doc_id] = int(rel)
        except ValueError:
            raise InputError(f"{file}:{number}: relevance {rel!r} must be an integer") from None
    if not qrels:
        raise InputError(f"{file}: holds no judgments")
    return qrels


@dataclass
class RerankJob:
    """Requests built from a run and a BEIR folder, with what had to be skipped."""

    requests: list[RerankRequest]
    missing_docs: dict[str, list[str]] = field(default_factory=dict)
    skipped_queries: dict[str, str] = field(default_factory=dict)


def build_job(data: BeirFolder, run: dict[str, list[RunEntry]], *, depth: int,
              queries: int | None = None) -> RerankJob:
    """Takes the first `queries` queries of the run and their top-`depth` candidates.

    Query ids absent from queries.jsonl raise InputError up front. Doc ids absent from
    the corpus are skipped and reported in `missing_docs`. A query whose text is empty
    is skipped and reported in `skipped_queries`.
    """
    if depth <= 0:
        raise InputError(f"--depth must be a positive number of candidates, got {depth}")
    if queries is not None and queries <= 0:
        raise InputError(f"--queries must be positive, got {queries}")
    query_ids = list(run)[:queries] if queries else list(run)
    absent = [q for q in query_ids if q not in data.queries]
    if absent:
        raise InputError(f"{len(absent)} query ids of the run are not in "
                         f"{data.path / 'queries.jsonl'} (first: {absent[0]!r}); "
                         "use the queries file that produced the run")
    job = RerankJob(requests=[])
    for qid in query_ids:
        if not data.queries[qid].strip():
            job.skipped_queries[qid] = "empty query text in queries.jsonl"
            continue
        candidates = []
        for entry in run[qid][:depth]:
            if entry.doc_id not in data.corpus:
                job.missing_docs.setdefault(qid, []).append(entry.doc_id)
                continue
            title, text = data.corpus[entry.doc_id]
            candidates.append(Candidate(doc_id=entry.doc_id, text=text, title=title or None,
                                        score=entry.score, rank=entry.rank))
        if not candidates:
            job.skipped_queries[qid] = "none of its candidates is in the corpus"
            continue
        job.requests.append(RerankRequest(query=Query(id=qid, text=data.queries[qid]),
                                          candidates=tuple(candidates)))
    return job


def run_lines(result: RerankResult, entries: Iterable[RunEntry], tag: str) -> list[str]:
    """TREC lines for one query: the reranked documents first, then every other
    first-stage document in first-stage order, with strictly decreasing scores."""
    reranked = [d.doc_id for d in result.ranking]
    placed = set(reranked)
    rest = [e.doc_id for e in entries if e.doc_id not in placed]
    ordered = reranked + rest
    total = len(ordered)
    return [f"{result.query_id} Q0 {doc_id} {rank} {total - rank + 1} {tag}"
            for rank, doc_id in enumerate(ordered, start=1)]


def first_stage_lines(query_id: str, entries: Iterable[RunEntry], tag: str) -> list[str]:
    """TREC lines of a query's first-stage entries as they are (to evaluate a subset)."""
    return [f"{query_id} Q0 {e.doc_id} {e.rank} {e.score} {tag}" for e in entries]


def write_trec_run(path: str | Path, lines_by_query: dict[str, list[str]]) -> None:
    """Writes the run atomically (temp file, then rename), queries in sorted order."""
    write_atomic(path, (line + "\n" for qid in sorted(lines_by_query)
                        for line in lines_by_query[qid]))


def write_atomic(path: str | Path, chunks: Iterable[str]) -> None:
    """Writes `chunks` to a temporary file beside `path`, then renames it into place: a
    crash never leaves a truncated file, and an old file stays whole until the rename."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    temp = target.with_name(target.name + ".tmp")
    try:
        with temp.open("w", encoding="utf-8") as out:
            out.writelines(chunks)
        temp.replace(target)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise


def check_outputs(outputs: dict[str, Path | None], inputs: Iterable[Path | None],
                  force: bool = False) -> None:
    """Checks each output (flag -> path) before any work: not a folder, in a folder that
    exists or can be created and is writable, and not one of the command's `inputs`
    (unless `force`). Raises InputError naming the flag and path."""
    sources = {p.resolve() for p in inputs if p is not None}
    for flag, path in outputs.items():
        if path is None:
            continue
        if path.is_dir():
            raise InputError(f"{flag} {path} is a folder; give a file path")
        if path.resolve() in sources and not force:
            raise InputError(f"{flag} {path} is one of this command's inputs; writing it would "
                             "destroy it (choose another path, or pass --force)")
        if path.exists() and not os.access(path, os.W_OK):
            raise InputError(f"{flag} {path} is not writable")
        parent = path.parent
        while not parent.exists():
            parent = parent.parent
        if not parent.is_dir() or not os.access(parent, os.W_OK | os.X_OK):
            raise InputError(f"{flag} {path}: cannot write in {parent}")
