"""The rerank job behind `rerankgraph rerank` and `batch`, and its summary maths."""

import pytest

from rerankgraph.data import read_trec_run
from rerankgraph.errors import InputError
from rerankgraph.jobs.rerank import JobSettings, run_rerank_job
from rerankgraph.jobs.runner import JobReport
from rerankgraph.types import Judgment, Provenance, RerankResult
from tests.conftest import DL19


def _result(qid, *calls, simulated=False):
    """A finished query whose judgments cost `calls`: (prompt, completion, cached)."""
    judgments = tuple(Judgment(agent="pointwise", doc_ids=("d",), raw_reply="yes",
                               prompt_tokens=p, completion_tokens=c, cached=cached)
                      for p, c, cached in calls)
    provenance = Provenance(
        method="pointwise", model="m", llm_calls=len(calls),
        prompt_tokens=sum(p for p, _, _ in calls), completion_tokens=sum(c for _, c, _ in calls),
        wall_time_s=1.0, repaired=1, fallbacks=0, truncated_docs=2,
        cached_calls=sum(cached for *_, cached in calls), simulated=simulated,
        judgments=judgments)
    return RerankResult(query_id=qid, provenance=provenance)


def test_tokens_per_second_counts_only_what_this_run_computed():
    report = JobReport(
        results=[_result("q0", (1000, 10, False)),                  # resumed: not this run's
                 _result("q1", (100, 1, True), (200, 2, False)),     # one reply from the cache
                 RerankResult(query_id="q2", error="boom", error_kind="engine")],
        resumed_ids=frozenset({"q0"}), wall_time_s=2.0, cache_hits=1, failures={"q2": "boom"},
        prefix_cache=(30, 120))
    totals = report.totals()
    assert (totals.queries, totals.llm_calls, totals.prompt_tokens, totals.completion_tokens) == (
        2, 3, 1300, 13)
    assert totals.run_tokens == 202 and totals.tokens_per_s == 101.0
    assert report.summary_line("out.trec") == (
        "wrote out.trec: 2 queries reranked (1 resumed), 1 failed, 3 LLM calls (1 from cache), "
        "1300 prompt + 13 completion tokens, 2 repaired, 0 fallbacks, 0 samples dropped, "
        "0 orders left as shown, "
        "0 unscored docs, 4 truncated docs, 0 truncated queries, 2.0 s, 101 tok/s, "
        "prefix cache hit rate 25.0%")


def test_a_fully_resumed_job_computed_nothing():
    report = JobReport(results=[_result("q0", (1000, 10, False), simulated=True)],
                       resumed_ids=frozenset({"q0"}), wall_time_s=0.5)
    assert report.totals().tokens_per_s == 0
    assert report.summary_line("o").startswith("SIMULATED JUDGE, not a model: wrote o: 1 queries "
                                               "reranked (1 resumed)")


def _settings(tmp_path, **overrides):
    values = {"data": DL19, "run": DL19 / "bm25.trec", "out": tmp_path / "out.trec",
              "method": "listwise", "queries": 3, "depth": 10, "durable": True,
              "simulate": DL19 / "qrels.tsv", **overrides}
    return JobSettings(**values)


def test_simulated_batch_job_writes_its_files_and_resumes(tmp_path):
    settings = _settings(tmp_path)
    seen, notes = [], []
    report = run_rerank_job(settings, on_progress=seen.append, log=notes.append)
    assert report.ok and report.resumed == 0 and len(report.results) == 3
    assert [(p.done, p.total) for p in seen] == [(0, 3), (1, 3), (2, 3), (3, 3)]
    assert any(n.startswith("SIMULATED JUDGE: answers come from") for n in notes)
    run = read_trec_run(settings.out)
    assert len(run) == 3 and all(len(entries) == 100 for entries in run.values())
    assert settings.state_path == tmp_path / "out.trec.state.sqlite"
    assert len(settings.provenance_path.read_text().splitlines()) == 3
    before = settings.out.read_bytes()

    again = run_rerank_job(settings, on_progress=seen.append)
    assert again.resumed == 3 and again.totals().run_tokens == 0
    assert seen[-1].done == 3 and settings.out.read_bytes() == before


def test_a_rerank_job_keeps_no_state(tmp_path):
    settings = _settings(tmp_path, durable=False, queries=1)
    assert settings.state_path is None and settings.provenance_path is None
    report = run_rerank_job(settings)
    assert report.ok and len(report.results) == 1 and not list(tmp_path.glob("*.sqlite"))


@pytest.mark.parametrize(("overrides", "message"), [
    ({"run": None}, "give --run"),
    ({"backend": "spark"}, "--backend 'spark': use vllm or ray"),
    ({"backend": "ray", "durable": False, "simulate": None}, "--backend ray is for `rerankgraph batch`"),
    ({"backend": "ray"}, "drop --base-url and --simulate"),
    ({"backend": "ray", "simulate": None}, "'listwise' needs replies between its calls"),
], ids=["no-run", "unknown-backend", "ray-not-durable", "ray-simulated", "ray-multi-step"])
def test_bad_settings_are_refused_before_anything_is_written(tmp_path, overrides, message):
    with pytest.raises(InputError, match=message):
        run_rerank_job(_settings(tmp_path, **overrides))
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("more_runs", [(), ("b.trec",)])
def test_the_state_fingerprint_is_the_one_earlier_versions_recorded(tmp_path, more_runs):
    # State files written before the fingerprint became a record must still resume.
    from pathlib import Path

    from rerankgraph.jobs.rerank import JobFingerprint
    from rerankgraph.registry import get_method

    settings = JobSettings(data=tmp_path / "data", out=tmp_path / "out.trec",
                           run=Path("a.trec"), more_runs=tuple(map(Path, more_runs)),
                           depth=7, seed=3, durable=True)
    params = get_method("pointwise").make_params({"batch_size": 4})
    old = {"method": "pointwise", "params": params.model_dump(mode="json"), "model": "embedded",
           "simulation": None, "data": str((tmp_path / "data").resolve()),
           "run": str(Path("a.trec").resolve()),
           **({"more_runs": [str(Path(p).resolve()) for p in more_runs]} if more_runs else {}),
           "index": None, "retriever": None, "k": None, "depth": 7, "seed": 3}
    assert JobFingerprint.of(settings, "pointwise", params).as_json() == old


def test_failure_lines_group_queries_by_error():
    report = JobReport(results=[RerankResult(query_id=f"q{i}", error="down", error_kind="engine")
                                for i in range(7)] + [_result("ok", (1, 1, False))],
                       wall_time_s=1.0, failures={**{f"q{i}": "down" for i in range(6)},
                                                  "q6": "boom"})
    assert report.failure_lines("out.trec") == [
        "failed: 6 queries 'q0', 'q1', 'q2', 'q3', 'q4' and 1 more: down",
        "failed: query 'q6': boom",
        "7 of 8 queries failed; their lines are not in out.trec. Rerun the same command to "
        "retry them."]
    assert JobReport(results=[], wall_time_s=0.0).failure_lines("out.trec") == []
