"""The rubric judge's K samples on the real in-process engine: one request of n=K
samples that differ, their spread recorded, and the same run again from the same seed."""

from __future__ import annotations

from rerankgraph.agents.base import FittedDoc
from rerankgraph.agents.rubric import RubricAgent, RubricParams
from rerankgraph.data import run_lines
from rerankgraph.sdk import Reranker

PARAMS = {"samples": 4, "reasoning_tokens": 48}


def test_k_samples_differ_and_their_spread_is_recorded(local_engine, dl19_request):
    request = dl19_request.model_copy(update={"candidates": dl19_request.candidates[:3]})
    agent, params = RubricAgent(), RubricParams(**PARAMS)
    call = agent.pair_request(request.query, FittedDoc(request.candidates[0],
                                                       request.candidates[0].text, False),
                              params, seed=11)
    [completion] = local_engine.run_sync(local_engine.chat([call]))
    assert len(completion.texts) == 4 and len(set(completion.texts)) > 1

    result = Reranker("rubric", engine=local_engine, params=PARAMS, seed=11
                      ).rerank_batch([request])[0]
    assert result.ok, result.error
    for judgment in result.provenance.judgments:
        assert len(judgment.sample_scores) + judgment.dropped_samples == 4
        if len(judgment.sample_scores) > 1:
            assert "spread" in judgment.note
    assert result.provenance.llm_calls >= 3
    assert any(len(set(j.sample_scores)) > 1 for j in result.provenance.judgments)


def test_the_same_seed_gives_the_same_run_file(local_engine, dl19_request):
    request = dl19_request.model_copy(update={"candidates": dl19_request.candidates[:4]})

    def run(seed: int) -> list[str]:  # what the run file holds, and every sample
        result = Reranker("rubric", engine=local_engine, params=PARAMS, seed=seed
                          ).rerank_batch([request])[0]
        assert result.ok, result.error
        replies = [(j.raw_reply, j.sample_scores) for j in result.provenance.judgments]
        # The run file's lines (ranks, not raw scores: logprobs differ in the 10th digit
        # when the second run hits the prefix cache), and every sample's reply and score.
        return [*run_lines(result, request.candidates, "rubric"), *map(str, replies)]

    assert run(5) == run(5)


def test_seeded_samples_survive_prompts_split_across_engine_steps(local_engine, dl19, dl19_run):
    """20 prompts of a few hundred tokens each are more than one engine step prefills; with
    chunked prefill on, vLLM 0.32 on CPU died rewinding a seeded generator."""
    from rerankgraph.data import build_job

    request = build_job(dl19, dl19_run, depth=20, queries=1).requests[0]
    result = Reranker("rubric", engine=local_engine, seed=2,
                      params={"samples": 4, "reasoning_tokens": 0}).rerank_batch([request])[0]
    assert result.ok, result.error
    assert sum(len(j.sample_scores) + j.dropped_samples
               for j in result.provenance.judgments) == 4 * 20
