"""The Retro*-style rubric judge: its parameters, its K samples and their reading, on a
scripted engine (malformed samples on demand) and the exact simulated judge."""

from __future__ import annotations

import math
import re

import pytest
from pydantic import ValidationError

from rerankgraph.agents.rubric import (
    SAMPLED_TEMPERATURE,
    RubricParams,
    expected_score,
    read_rubric,
    reply_regex,
)
from rerankgraph.errors import InputError
from rerankgraph.registry import get_method
from rerankgraph.sdk import Reranker
from rerankgraph.serving.base import Completion
from tests.fakes import ScriptedEngine

DOCS = ["alpha passage", "beta passage", "gamma passage"]
WHOLE = "Query: q\nDocument: d\nRelevance: r\nScore: {}"


def test_k_samples_at_temperature_zero_are_refused_up_front():
    with pytest.raises(ValidationError, match="needs a temperature above 0"):
        RubricParams(samples=4, temperature=0)
    with pytest.raises(InputError, match=r"^method 'rubric': samples=4 needs a temperature"):
        get_method("rubric").make_params({"samples": 4, "temperature": 0.0})
    assert RubricParams(samples=4).sampling_temperature == SAMPLED_TEMPERATURE
    assert RubricParams().sampling_temperature == 0.0
    assert RubricParams(samples=2, temperature=1.0).sampling_temperature == 1.0


def test_k_samples_go_in_one_request_with_a_seed_per_pair():
    engine = ScriptedEngine([Completion(texts=(WHOLE.format(50),) * 4)])
    Reranker("rubric", engine=engine, params={"samples": 4}, seed=3).rerank("q", DOCS)
    assert [r.n for r in engine.requests] == [4, 4, 4]
    assert {r.temperature for r in engine.requests} == {SAMPLED_TEMPERATURE}
    seeds = [r.seed for r in engine.requests]
    assert None not in seeds and len(set(seeds)) == 3
    again = ScriptedEngine([Completion(texts=(WHOLE.format(50),) * 4)])
    Reranker("rubric", engine=again, params={"samples": 4}, seed=3).rerank("q", DOCS)
    assert [r.seed for r in again.requests] == seeds  # the same seed, the same calls


def test_the_reply_regex_asks_for_three_steps_then_the_score():
    regex = reply_regex(RubricParams(reasoning_tokens=30))
    assert re.fullmatch(regex, WHOLE.format(100))
    assert re.fullmatch(regex, "Query: " + "x" * 40 + "\nDocument: d\nRelevance: r\nScore: 7")
    assert not re.fullmatch(regex, "Query: " + "x" * 41 + "\nDocument: d\nRelevance: r\nScore: 7")
    assert not re.fullmatch(regex, WHOLE.format(101))
    assert reply_regex(RubricParams(reasoning_tokens=0)) == "Score: (100|[1-9]?[0-9])"


def test_malformed_samples_are_counted_and_left_out_of_the_mean():
    samples = (WHOLE.format(80), "garbage", "Score: 40", "Query: cut off mid")
    engine = ScriptedEngine([Completion(texts=samples), Completion(texts=(WHOLE.format(10),) * 4),
                             Completion(texts=(WHOLE.format(60),) * 4)])
    result = Reranker("rubric", engine=engine, params={"samples": 4}).rerank("q", DOCS)
    first = result.provenance.judgments[0]
    assert first.sample_scores == (80.0, 40.0) and first.dropped_samples == 2
    assert first.parsed == pytest.approx(60 / 100, abs=1e-5)  # not (80+40+50+50)/4
    assert first.status == "repaired" and "2 of 4 samples unreadable" in first.note
    assert "spread 20.0" in first.note
    assert result.provenance.dropped_samples == 2 and result.provenance.repaired == 1
    assert result.doc_ids == ["d0", "d2", "d1"]  # 60 ties d2's 60: first-stage order


def test_a_pair_whose_samples_all_fail_is_asked_once_more_then_falls_back():
    unreadable = Completion(texts=("nothing", "at all"))
    readable = Completion(texts=(WHOLE.format(30), WHOLE.format(50)))
    engine = ScriptedEngine([unreadable, readable, readable, readable])
    result = Reranker("rubric", engine=engine, params={"samples": 2}).rerank("q", DOCS)
    retried = result.provenance.judgments[0]
    assert retried.calls == 2 and retried.sample_scores == (30.0, 50.0)
    assert retried.dropped_samples == 2 and "asked once more" in retried.note
    retry = engine.requests[3]
    assert retry.doc_ids == engine.requests[0].doc_ids and retry.seed != engine.requests[0].seed
    assert result.provenance.llm_calls == 4

    engine = ScriptedEngine([WHOLE.format(70), "junk", WHOLE.format(20), "junk again"])
    result = Reranker("rubric", engine=engine).rerank("q", DOCS)
    failed = result.provenance.judgments[1]
    assert failed.status == "fallback" and failed.calls == 2 and failed.dropped_samples == 2
    # asked again with sampling: a greedy retry would only repeat itself
    assert engine.requests[3].temperature == SAMPLED_TEMPERATURE
    assert engine.requests[3].seed is not None
    assert result.doc_ids == ["d0", "d2", "d1"]  # the fallback below every scored pair
    assert result.provenance.fallbacks == 1 and result.provenance.llm_calls == 4


def test_expected_score_from_the_digits_logprobs_breaks_ties():
    half = math.log(0.5)
    # Each position: the sampled token first, then alternatives.
    digits = ({"8": half, "7": half}, {"5": 0.0}, {"<|im_end|>": -0.1, "3": -2.4})
    assert expected_score(({"Score": 0.0}, {":": 0.0}, *digits), 85) == pytest.approx(80.0)
    # After a one-digit score the grammar still allows digits at the end position: they
    # are alternatives to the sampled end, not the score's digits.
    assert expected_score(({"8": 0.0, "9": -1.0}, {"<|im_end|>": -0.2, "5": -1.8}), 8) \
        == pytest.approx(8 / (1 + math.exp(-1.0)) + 9 * math.exp(-1.0) / (1 + math.exp(-1.0)))
    assert expected_score(({"9": 0.0},), 85) is None  # the positions do not spell the score
    assert expected_score(({"85": 0.0},), 85) is None  # a tokenizer with two-digit tokens
    masked = ({"8": float("-inf"), "9": float("-inf")}, {"0": 0.0})
    assert expected_score(masked, 80) is None  # no finite alternative: no tie-break, no crash
    low = Completion(texts=("Score: 80",), logprobs=((({"8": 0.0, "9": -5.0}, {"0": 0.0}),)))
    high = Completion(texts=("Score: 80",), logprobs=((({"8": -0.1, "9": -2.0}, {"0": 0.0}),)))
    assert read_rubric(low).expected < read_rubric(high).expected
    engine = ScriptedEngine([low, high])
    result = Reranker("rubric", engine=engine).rerank("q", DOCS[:2])
    assert result.doc_ids == ["d1", "d0"]  # same score 80; d1's digits leaned higher
    assert [round(d.score, 5) for d in result.ranking] == [0.8, 0.8]  # a tie-break only
