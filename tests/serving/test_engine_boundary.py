"""The engine boundary: whatever an engine library raises leaves as one readable
EngineError line, and the query fails instead of the program."""

from __future__ import annotations

import pytest

from rerankgraph import Reranker
from rerankgraph.errors import EngineError, InputError
from rerankgraph.serving.base import describe_exception
from tests.fakes import ScriptedEngine


class EngineGenerateError(Exception):
    """Like vLLM's: raised with no message of its own, from the real cause."""


def _vllm_like_failure() -> Exception:
    try:
        try:
            raise ValueError("n must be 1 when using greedy sampling,\n got 4.")
        except ValueError as cause:
            raise EngineGenerateError() from cause
    except EngineGenerateError as exc:
        return exc


def test_a_foreign_exception_becomes_one_engine_error_line():
    engine = ScriptedEngine([_vllm_like_failure()])
    with pytest.raises(EngineError) as info:
        Reranker("pointwise", engine=engine).rerank("q", ["a passage"])
    message = str(info.value)
    assert "\n" not in message
    assert message == ("scripted: EngineGenerateError: n must be 1 when using greedy "
                       "sampling, got 4.")


def test_in_a_batch_the_query_fails_and_the_others_go_on():
    engine = ScriptedEngine([RuntimeError("device lost"), "yes", "yes"])
    reranker = Reranker("pointwise", engine=engine, params={"batch_size": 1})
    results = reranker.rerank_batch([("q1", ["a"]), ("q2", ["b"])])
    failed = [r for r in results if not r.ok]
    assert len(failed) == 1 and failed[0].error == "scripted: RuntimeError: device lost"
    assert failed[0].error_kind == "engine"


def test_our_own_errors_pass_through_unchanged():
    engine = ScriptedEngine([InputError("context too small")])
    with pytest.raises(InputError, match="^context too small"):
        Reranker("pointwise", engine=engine).rerank("q", ["a"])


def test_describe_exception_keeps_a_message_and_names_the_type():
    assert describe_exception(KeyError("x")) == "KeyError: 'x'"
    assert describe_exception(RuntimeError()) == "RuntimeError: no message"
