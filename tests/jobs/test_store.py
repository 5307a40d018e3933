"""The job store: reply cache and job fingerprint."""

import pytest

from rerankgraph.errors import InputError
from rerankgraph.jobs.store import CachingEngine, JobStore
from rerankgraph.sdk import Reranker
from rerankgraph.serving.base import ChatRequest, Completion
from tests.fakes import ScriptedEngine

YES = Completion(texts=("yes",), logprobs=(({"yes": -0.2, "no": -1.7},),), prompt_tokens=50,
                 completion_tokens=1)


def test_reply_cache_replays_identical_calls(tmp_path):
    inner = ScriptedEngine([YES])
    store = JobStore(tmp_path / "state.sqlite")
    engine = CachingEngine(inner, store)
    reranker = Reranker("pointwise", engine=engine)
    first = reranker.rerank("q", ["a", "b", "c"])
    second = reranker.rerank("q", ["a", "b", "c", "d"])
    assert len(inner.requests) == 4  # only "d" was new
    assert engine.cache_hits == 3 and store.reply_count() == 4
    assert second.provenance.cached_calls == 3 and first.provenance.cached_calls == 0
    assert second.provenance.prompt_tokens == 4 * 50  # cached calls still count their cost
    reopened = CachingEngine(ScriptedEngine([RuntimeError("must not be called")]),
                             JobStore(tmp_path / "state.sqlite"))
    assert Reranker("pointwise", engine=reopened).rerank("q", ["a"]).provenance.cached_calls == 1


def test_sampled_calls_without_seed_are_not_cached(tmp_path):
    inner = ScriptedEngine(['{"reasoning": "r", "score": 50}'])
    engine = CachingEngine(inner, JobStore(tmp_path / "s.sqlite"))
    params = {"samples": 2, "temperature": 0.8}
    Reranker("rubric", engine=engine, params=params).rerank("q", ["a"])
    Reranker("rubric", engine=engine, params=params).rerank("q", ["a"])
    assert len(inner.requests) == 1 + 0  # rubric seeds its samples: the second is a hit
    unseeded = CachingEngine(ScriptedEngine(["x"]), JobStore(tmp_path / "t.sqlite"))
    ask = ChatRequest(messages=({"role": "user", "content": "q"},), temperature=1.0)
    unseeded.run_sync(unseeded.chat([ask]))
    unseeded.run_sync(unseeded.chat([ask]))
    assert unseeded.cache_hits == 0 and len(unseeded.inner.requests) == 2


def test_state_from_another_job_is_refused(tmp_path):
    store = JobStore(tmp_path / "state.sqlite")
    store.check_fingerprint({"method": "pointwise", "depth": 10})
    store.check_fingerprint({"method": "pointwise", "depth": 10})
    with pytest.raises(InputError, match=r"other settings \(depth\); pass --fresh"):
        store.check_fingerprint({"method": "pointwise", "depth": 20})


def test_purpose_is_a_tag_the_engine_never_sees():
    from rerankgraph.jobs.store import request_key
    from rerankgraph.serving.openai_http import OpenAIEngine

    ask = ChatRequest(messages=({"role": "user", "content": "q"},), choice=("yes", "no"))
    tagged = ChatRequest(messages=ask.messages, choice=ask.choice, purpose="pointwise")
    assert request_key("m", ask) == request_key("m", tagged)  # old state files stay valid
    engine = object.__new__(OpenAIEngine)
    engine.model_name = "m"
    body = engine.request_body(tagged)
    assert "purpose" not in body and body == engine.request_body(ask)
