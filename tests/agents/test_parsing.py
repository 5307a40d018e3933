import math

import pytest
from pydantic import BaseModel

from rerankgraph.agents.parsing import (
    UNCLOSED_NOTE,
    answer_text,
    first_json_object,
    read_json,
    read_json_field_number,
    read_yes_no,
    strip_reasoning,
    yes_probability,
)
from rerankgraph.agents.rubric import read_rubric
from rerankgraph.serving.base import Completion
from rerankgraph.types import ParseStatus


class Reply(BaseModel):
    score: int


def test_yes_probability_reads_the_two_allowed_words():
    # Under the choice constraint only "yes" and "no" have finite logprobs; the masked
    # rest come back as -inf (no mass), if at all.
    logprobs = {"yes": math.log(0.3), "no": math.log(0.1), "Yes": -math.inf}
    assert yes_probability(logprobs) == pytest.approx(0.75)
    assert yes_probability({"no": -0.1}) == 0.0
    assert yes_probability({"maybe": -0.1}) is None


@pytest.mark.parametrize(("text", "expected", "status"), [
    ("Yes.", 1.0, ParseStatus.REPAIRED),
    ("<think>hmm yes or no</think> no", 0.0, ParseStatus.REPAIRED),
    ("", 0.5, ParseStatus.FALLBACK),
    ("I cannot say", 0.5, ParseStatus.FALLBACK),
])
def test_read_yes_no_without_logprobs(text, expected, status):
    score, got_status, note = read_yes_no(text, {})
    assert (score, got_status) == (expected, status) and note


def test_read_json_ok_repaired_and_fallback():
    assert read_json('{"score": 7}', Reply)[1] == ParseStatus.OK
    reply, status, _ = read_json('Sure! Here it is: ```json\n{"score": 3}\n``` hope it helps', Reply)
    assert reply == Reply(score=3) and status == ParseStatus.REPAIRED
    reply, status, _ = read_json('<think>{"score": 1}</think>{"score": 9}', Reply)
    assert reply == Reply(score=9) and status == ParseStatus.REPAIRED
    for bad in ["", "no json here", '{"score": "high"}', '{"score": 4']:
        reply, status, note = read_json(bad, Reply)
        assert reply is None and status == ParseStatus.FALLBACK and note


def test_first_json_object_ignores_braces_in_strings():
    assert first_json_object('x {"a": "}{", "b": {"c": 1}} y') == '{"a": "}{", "b": {"c": 1}}'
    assert first_json_object("{ unclosed") is None


def test_cut_off_json_score_is_recovered():
    assert read_json_field_number('{"reasoning": "long text that got cu', "score") is None
    assert read_json_field_number('{"score": 85, "reasoning": "cut', "score") == 85.0


def test_strip_reasoning_handles_unclosed_tags():
    assert strip_reasoning("<think>never closed") == ""


def test_answer_text_keeps_the_text_after_an_unclosed_think_and_says_so():
    assert answer_text("<think>never closed [2] > [1]") == ("never closed [2] > [1]", UNCLOSED_NOTE)
    # An answer standing before the unclosed block is outside the reasoning: kept as is.
    assert answer_text("[2] > [1] <think>second thoughts") == ("[2] > [1]", "")
    assert answer_text("<think>done</think> [1]") == ("[1]", "")
    assert answer_text("<think>") == ("", "")


def test_reasoning_before_a_lone_closing_tag_is_dropped():
    # Templates that open <think> in the prompt leave only the closing tag in the reply.
    assert strip_reasoning('draft "score": 20</think>\n{"score": 80}') == '{"score": 80}'
    assert answer_text("a</think> b <think> c") == ("b", "")


def test_unclosed_think_is_read_and_counted_as_a_repair():
    reply, status, note = read_json('<think>so the answer is {"score": 4}', Reply)
    assert reply == Reply(score=4) and status == ParseStatus.REPAIRED and UNCLOSED_NOTE in note
    score, status, note = read_yes_no("<think>yes, it answers the query", {})
    assert (score, status) == (1.0, ParseStatus.REPAIRED) and UNCLOSED_NOTE in note


def test_read_json_takes_the_last_object_that_fits():
    text = 'Format: {"score": 0}. My answer: {"score": 6} {"note": "not a reply"}'
    reply, status, note = read_json(text, Reply)
    assert reply == Reply(score=6) and status == ParseStatus.REPAIRED and "last" in note


def test_cut_off_json_score_is_the_last_one_outside_the_reasoning():
    quoted_in_reasoning = '{"reasoning": "I first wrote "score": 20, then", "score": 80'
    assert read_json_field_number(quoted_in_reasoning, "score") == 80.0
    in_think = '<think>"score": 20</think>{"reasoning": "r", "score": 90, "reas'
    assert read_json_field_number(in_think, "score") == 90.0
    assert read_json_field_number('draft "score": 20</think>{"score": 70', "score") == 70.0
    # Only reasoning, cut off before any answer: no score is taken from it.
    assert read_json_field_number('<think>I would say "score": 30', "score") is None


def test_rubric_reading_keeps_readable_samples_and_counts_the_rest():
    ok = Completion(texts=("Query: q\nDocument: d\nRelevance: r\nScore: 80",))
    cut = Completion(texts=('{"score": 140, "reasoning": "cut off mid',))
    junk = Completion(texts=("I think it is relevant",))
    assert (read_rubric(ok).scores, read_rubric(ok).repaired) == ((80.0,), 0)
    assert (read_rubric(cut).scores, read_rubric(cut).repaired) == ((100.0,), 1)
    assert (read_rubric(junk).scores, read_rubric(junk).dropped) == ((), 1)
    mixed = read_rubric(Completion(texts=("Score: 20", "junk", "Score: 60")))
    assert (mixed.scores, mixed.dropped, mixed.mean, mixed.spread) == ((20.0, 60.0), 1, 40.0, 20.0)


def test_rubric_reads_the_final_score_not_one_in_the_reasoning():
    think = Completion(texts=('<think>maybe "score": 20</think>{"reasoning": "r", "score": 140}',))
    assert read_rubric(think).scores == (100.0,)
    lines = Completion(texts=("Relevance: a score: 20 would be low\nScore: 80",))
    assert (read_rubric(lines).scores, read_rubric(lines).repaired) == ((80.0,), 0)
