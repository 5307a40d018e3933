"""`rerankgraph assess` as a job: exact labels from the simulated judge, resumes that ask
no pair twice, and its bad-input errors."""

import pytest

from rerankgraph.agents.grade import GradeAgent, GradeParams, read_grade
from rerankgraph.data import read_qrels
from rerankgraph.errors import InputError
from rerankgraph.jobs.assess import AssessSettings, run_assess_job
from rerankgraph.report.agreement import agreement
from rerankgraph.serving.base import Completion
from rerankgraph.simulation import SimulatedJudge
from tests.conftest import DL19

QRELS = DL19 / "qrels.tsv"


def _settings(tmp_path, method="pointwise", **job):
    values = {"data": DL19, "run": DL19 / "bm25.trec", "queries": 3, "depth": 10,
              "simulate": QRELS, **job}
    return AssessSettings.make(method, tmp_path / "labels.qrels", **values)


class Killed(BaseException):
    """A crash of the judge's process, as a kill would be."""


@pytest.fixture
def asked(monkeypatch):
    """Every (query id, doc id) pair whose reply the simulated judge delivered to the job,
    in order; set `asked.kill_at` to crash the judge at that batch of calls instead (what
    was in flight in the crashed call is never delivered, as under kill -9)."""

    class Asked(list):
        kill_at = None
        batches = 0

    pairs = Asked()
    answer, chat = SimulatedJudge._chat, SimulatedJudge.chat

    async def crashing(self, requests):
        pairs.batches += 1
        if pairs.batches == pairs.kill_at:
            raise Killed
        return await answer(self, requests)

    async def delivering(self, requests):
        replies = await chat(self, requests)
        pairs.extend((r.query_id, *r.doc_ids) for r in requests)
        return replies

    monkeypatch.setattr(SimulatedJudge, "_chat", crashing)
    monkeypatch.setattr(SimulatedJudge, "chat", delivering)
    return pairs


@pytest.mark.parametrize("method", ["pointwise", "rubric"])
def test_the_simulated_judge_at_noise_0_reproduces_the_qrels(tmp_path, method, asked):
    settings = _settings(tmp_path, method)
    report = run_assess_job(settings)
    human = read_qrels(QRELS)
    labels = read_qrels(settings.labels)
    assert labels == report.labels and report.pairs == 30 and len(asked) == 30
    pool = list(dict.fromkeys(line.split()[0] for line in (DL19 / "bm25.trec").open()))
    assert list(labels) == pool[:3]  # in pool order
    for qid, docs in labels.items():
        for doc, grade in docs.items():
            assert grade == human[qid].get(doc, 0)  # unjudged: the simulator's 0
    result = agreement(labels, human, labels_name="l", human_name="h")
    assert result.kappa_graded == 1.0 and result.kappa_binary == 1.0
    assert result.pairs == sum(doc in human[q] for q, docs in labels.items() for doc in docs)
    assert all(result.confusion[h][g] == 0 for h in range(4) for g in range(4) if h != g)
    assert report.job.totals().fallbacks == 0 and not report.ungraded


def test_rubric_asks_for_analysis_lines_then_the_grade(tmp_path, asked):
    report = run_assess_job(_settings(tmp_path, "rubric", queries=1))
    reply = report.job.results[0].provenance.judgments[0].raw_reply
    assert reply.splitlines()[0].startswith("Intent: ") and reply.splitlines()[-1][:7] == "Grade: "


def test_a_job_stopped_part_way_resumes_without_asking_a_pair_twice(tmp_path, asked):
    # Stopped by a limit: two queries, then the same job over four.
    run_assess_job(_settings(tmp_path, queries=2))
    assert len(asked) == 20
    report = run_assess_job(_settings(tmp_path, queries=4))
    assert report.job.resumed == 2 and len(asked) == 40 and len(set(asked)) == 40
    assert report.pairs == 40


def test_a_job_killed_mid_run_resumes_without_asking_a_pair_twice(tmp_path, asked):
    # Five queries of ten pairs; the judge dies at its fourth batch of calls.
    asked.kill_at = 4
    with pytest.raises(Killed):
        run_assess_job(_settings(tmp_path, queries=5))
    delivered = len(asked)
    assert 0 < delivered < 50
    asked.kill_at = None
    report = run_assess_job(_settings(tmp_path, queries=5))
    assert report.pairs == 50 and report.job.cache_hits + 10 * report.job.resumed == delivered
    assert len(asked) == len(set(asked)) == 50  # each pair asked once over both runs


def test_pool_documents_missing_from_the_corpus_are_counted_and_skipped(tmp_path):
    pool = tmp_path / "pool.trec"
    lines = (DL19 / "bm25.trec").read_text().splitlines()[:5]
    pool.write_text("\n".join([*lines, "264014 Q0 no-such-doc 6 1.0 x"]) + "\n")
    report = run_assess_job(_settings(tmp_path, run=pool))
    assert report.missing_docs == 1 and report.pairs == 5
    assert "1 pool documents missing from the corpus skipped" in report.summary_line("l")


def test_human_qrels_without_the_pools_queries_are_refused_before_the_judge(tmp_path, asked):
    other = tmp_path / "other.qrels"
    other.write_text("999 0 d 1\n")
    with pytest.raises(InputError, match="judges none of the pool's 3 assessed queries"):
        run_assess_job(AssessSettings.make(
            "pointwise", tmp_path / "l.qrels", human=other, data=DL19, run=DL19 / "bm25.trec",
            queries=3, simulate=QRELS))
    assert not asked and not (tmp_path / "l.qrels").exists()


def test_an_unknown_method_is_refused(tmp_path):
    with pytest.raises(InputError, match="unknown assessment method 'listwise': use "
                                         "pointwise or rubric"):
        _settings(tmp_path, "listwise")


def test_the_labels_must_not_overwrite_an_input(tmp_path):
    with pytest.raises(InputError, match="is one of the inputs"):
        run_assess_job(AssessSettings.make("pointwise", QRELS, data=DL19,
                                           run=DL19 / "bm25.trec", simulate=QRELS,
                                           state=tmp_path / "s", provenance=tmp_path / "p"))


def test_grades_are_read_from_the_digit_or_the_grade_line():
    assert read_grade("2") == (2, False)
    assert read_grade("Intent: x\nPassage: y\nMatch: z\nGrade: 3") == (3, False)
    assert read_grade("I think **grade**: 1 overall") == (1, True)
    assert read_grade("no idea") == (None, False)
    # Logprobs over the four grades (the constrained choice) give the expected grade.
    reply = Completion(texts=("2",), logprobs=(({"2": -0.1, "3": -2.4, "0": -9.0, "1": -5.0},),),
                       prompt_tokens=1, completion_tokens=1, finish_reasons=("stop",))
    score, status, _ = GradeAgent.read(reply)
    assert 2 / 3 < score < 1 and status.value == "ok"


def test_the_pointwise_request_is_a_constrained_digit_and_rubric_a_regex():
    agent = GradeAgent()
    digit = agent.chat_request("q", "p", GradeParams())
    assert digit.choice == ("0", "1", "2", "3") and digit.max_tokens == 1
    assert "3 = perfectly relevant" in digit.prompt and "0 = irrelevant" in digit.prompt
    reasoned = agent.chat_request("q", "p", GradeParams(reasoning_tokens=96))
    assert reasoned.choice is None and reasoned.regex.endswith("Grade: [0-3]")
