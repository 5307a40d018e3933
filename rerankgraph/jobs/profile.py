"""`rerankgraph judge profile`: runs a judge's method families on judged pairs and
measures how it answers (see rerankgraph.simulation.profile)."""

from __future__ import annotations

import datetime
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import rerankgraph
from rerankgraph.data import build_job, load_beir, read_qrels, read_trec_run, write_atomic
from rerankgraph.errors import InputError
from rerankgraph.registry import get_method
from rerankgraph.sdk import Reranker
from rerankgraph.serving.base import Engine
from rerankgraph.serving.factory import build_engine
from rerankgraph.simulation.profile import JudgeProfile, measure_agent
from rerankgraph.types import Judgment

# One method per family the fitted simulator answers for: scores, a full order, picks
# from a set, pairs. groupwise and FIRST are opt-in (`--methods`).
DEFAULT_METHODS = ("pointwise", "rubric", "listwise", "setwise", "pairwise")


@dataclass
class ProfileSettings:
    data: Path
    run: Path
    qrels: Path | None
    out: Path
    model: str | None = None
    base_url: str | None = None
    api_key: str | None = None
    queries: int | None = 5
    # the first `skip` queries of the run are left out, to keep them for checking a
    # simulator fitted on the others
    skip: int = 0
    depth: int = 20
    methods: tuple[str, ...] = DEFAULT_METHODS
    params: dict[str, dict] = field(default_factory=dict)


def profile_judge(settings: ProfileSettings, log: Callable[[str], None] = lambda _: None,
                  engine: Engine | None = None) -> JudgeProfile:
    """Runs each method with fusion=none on the chosen queries, measures every agent it
    called against the qrels, and writes the profile JSON to `settings.out`."""
    if settings.qrels is None:
        raise InputError("judge profile measures a judge against qrels: give --qrels FILE")
    if settings.skip < 0:
        raise InputError(f"--skip must be 0 or more, got {settings.skip}")
    for name in settings.methods:
        get_method(name)  # an unknown method fails before the engine loads
    qrels = read_qrels(settings.qrels)
    data = load_beir(settings.data)
    wanted = settings.skip + settings.queries if settings.queries else None
    job = build_job(data, read_trec_run(settings.run), depth=settings.depth, queries=wanted)
    requests = job.requests[settings.skip:]
    if not requests:
        raise InputError(f"{settings.run} has no query left after --skip {settings.skip}")
    unjudged = [r.query.id for r in requests if r.query.id not in qrels]
    if unjudged:
        raise InputError(f"{settings.qrels} judges none of query {unjudged[0]!r}'s passages; "
                         "profile queries the qrels judge")
    own = engine is None
    engine = engine or build_engine(settings.model, settings.base_url, settings.api_key)
    by_agent: dict[str, tuple[list[Judgment], list[str], float]] = {}
    try:
        for name in settings.methods:
            log(f"profiling {name} on {len(requests)} queries")
            reranker = Reranker(name, engine=engine,
                                params={**settings.params.get(name, {}), "fusion": "none"})
            started = time.perf_counter()
            results = reranker.rerank_batch(requests)
            seconds = time.perf_counter() - started
            failed = [r for r in results if not r.ok]
            if failed:
                raise InputError(f"{name}: {len(failed)} queries failed, first "
                                 f"{failed[0].query_id}: {failed[0].error}")
            # The method's wall time, shared among its agents by their calls.
            calls: dict[str, int] = {}
            for result in results:
                assert result.provenance is not None  # every ok result has one
                for judgment in result.provenance.judgments:
                    judgments, queries, _ = by_agent.setdefault(judgment.agent, ([], [], 0.0))
                    judgments.append(judgment)
                    queries.append(result.query_id)
                    calls[judgment.agent] = calls.get(judgment.agent, 0) + judgment.calls
            for agent, count in calls.items():
                judgments, queries, spent = by_agent[agent]
                by_agent[agent] = (judgments, queries,
                                   spent + seconds * count / sum(calls.values()))
    finally:
        if own:
            engine.close()
    max_grade = max((g for docs in qrels.values() for g in docs.values()), default=1)
    agents = {agent: measure_agent(agent, judgments, qrels, queries, spent, max_grade)
              for agent, (judgments, queries, spent) in sorted(by_agent.items())}
    profile = JudgeProfile(
        # the alias it was asked by, else what the engine calls its model
        model=settings.model or engine.model_name, data=str(Path(settings.data).resolve()),
        run=str(Path(settings.run).resolve()), qrels=str(Path(settings.qrels).resolve()),
        query_ids=[r.query.id for r in requests], depth=settings.depth, max_grade=max_grade,
        code_version=code_version(), created=datetime.datetime.now(datetime.UTC).isoformat(
            timespec="seconds"), agents=agents)
    write_atomic(settings.out, [profile.model_dump_json(indent=1), "\n"])
    return profile


def code_version() -> str:
    """The package version, and the git commit of its checkout where there is one."""
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"],
                                cwd=Path(rerankgraph.__file__).parent, text=True,
                                capture_output=True, check=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        commit = ""
    return f"{rerankgraph.__version__}+{commit}" if commit else rerankgraph.__version__
