"""A reply cut off at max_tokens (finish reason "length") is never taken as clean: every
agent builds its judgments through agents.base.judgment, which counts it as repaired."""

import math

import pytest

from rerankgraph.agents.base import CUT_OFF_NOTE
from rerankgraph.sdk import Reranker
from rerankgraph.serving.base import Completion
from tests.fakes import ScriptedEngine

DOCS = ["alpha passage", "beta passage", "gamma passage"]
YES_NO = (({"yes": -0.1, "no": -2.5},),)


def reply(text, reason, logprobs=()):
    return Completion(texts=(text,), logprobs=logprobs, prompt_tokens=40,
                      completion_tokens=max(1, len(text) // 4), finish_reasons=(reason,))


def statuses(result):
    return [(j.status.value, j.note) for j in result.provenance.judgments]


def test_pointwise_reply_cut_before_its_word_is_repaired():
    engine = ScriptedEngine([reply("y", "length", YES_NO),     # cut mid-word: read from logprobs
                             reply("yes", "length", YES_NO),   # one token by design: complete
                             reply("???", "length")])          # unreadable: stays a fallback
    result = Reranker("pointwise", engine=engine).rerank("q", DOCS)
    assert statuses(result) == [
        ("repaired", CUT_OFF_NOTE), ("ok", ""),
        ("fallback", "reply '???' is neither yes nor no; scored 0.5")]
    assert (result.provenance.repaired, result.provenance.fallbacks) == (1, 1)
    p_yes = math.exp(-0.1) / (math.exp(-0.1) + math.exp(-2.5))
    # The fallback's neutral 0.5 is no measurement: it goes below the lowest measured
    # score (half of it, see graphs.scoring.below_measured).
    assert [d.score for d in result.ranking] == [pytest.approx(p_yes), pytest.approx(p_yes),
                                                 pytest.approx(p_yes / 2)]


def test_rubric_reply_padded_to_max_tokens_is_repaired():
    # A whole reply, then whitespace until the token budget ran out.
    whole = "Query: q\nDocument: d\nRelevance: r\nScore: {}"
    engine = ScriptedEngine([reply(whole.format(80) + "\n\n\n", "length"),
                             reply(whole.format(70), "length"),
                             reply(whole.format(60), "stop")])
    result = Reranker("rubric", engine=engine).rerank("q", DOCS)
    assert statuses(result) == [("repaired", CUT_OFF_NOTE), ("ok", ""), ("ok", "")]
    assert result.doc_ids == ["d0", "d1", "d2"] and result.provenance.repaired == 1


def test_listwise_permutation_cut_off_is_repaired():
    engine = ScriptedEngine([reply("[3] > [1] > [2] > [", "length")])
    result = Reranker("listwise", engine=engine).rerank("q", DOCS)
    assert result.doc_ids == ["d2", "d0", "d1"]  # the ids it did write are still used
    assert statuses(result) == [("repaired", CUT_OFF_NOTE)]
    complete = Reranker("listwise", engine=ScriptedEngine([reply("[3] > [1] > [2]", "length")]))
    assert statuses(complete.rerank("q", DOCS)) == [("ok", "")]


def test_pairwise_letter_cut_off_is_repaired():
    both = (({"A": -0.2, "B": -1.8},),)
    engine = ScriptedEngine([reply("A", "length", both), reply("Passage", "length", both)])
    result = Reranker("pairwise", engine=engine, params={"k": 1}).rerank("q", DOCS[:2])
    assert statuses(result) == [("ok", ""), ("repaired", CUT_OFF_NOTE)]


def test_a_repaired_reply_that_was_also_cut_keeps_both_notes():
    engine = ScriptedEngine([reply("[3] > [3] > [1] > [", "length")])
    [judgment] = Reranker("listwise", engine=engine).rerank("q", DOCS).provenance.judgments
    assert judgment.status == "repaired"
    assert judgment.note == f"dropped 1 duplicate ids; appended 1 missing ids; {CUT_OFF_NOTE}"


def test_one_token_replies_of_real_vllm_stop_for_length_yet_are_complete(local_engine, dl19_request):
    from rerankgraph.agents.base import cut_off
    from rerankgraph.agents.pointwise import PointwiseAgent, PointwiseParams

    call = PointwiseAgent().chat_request(dl19_request.query.text,
                                         dl19_request.candidates[0].text, PointwiseParams())
    [completion] = local_engine.run_sync(local_engine.chat([call]))
    # vLLM reports "length" for every reply that used all of max_tokens=1 ...
    assert completion.finish_reasons == ("length",) and completion.text in ("yes", "no")
    assert not cut_off(call, completion)  # ... but the reply is whole
    request = dl19_request.model_copy(update={"candidates": dl19_request.candidates[:4]})
    for method in ("pointwise", "setwise", "listwise"):
        [result] = Reranker(method, engine=local_engine).rerank_batch([request])
        assert result.ok and all(CUT_OFF_NOTE not in j.note for j in result.provenance.judgments)
