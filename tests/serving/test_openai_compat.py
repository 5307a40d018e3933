"""The OpenAI-compatible client without vLLM's extensions, against a real server: vLLM's
own, with the extensions turned off on our side (vLLM has no flag to remove /tokenize),
so every call takes the standard path: local tokenizer, response_format JSON schemas
for choice and regex, the context length given."""

from __future__ import annotations

import pytest

from rerankgraph.errors import EngineError
from rerankgraph.sdk import Reranker
from rerankgraph.serving.model_store import pull_embedded_model
from rerankgraph.serving.openai_http import OpenAIEngine
from tests.conftest import TEST_API_KEY


@pytest.fixture
def standard_engine(served_engine):
    engine = OpenAIEngine(served_engine.base_url, api_key=TEST_API_KEY, extensions=False,
                          tokenizer=str(pull_embedded_model()), max_model_len=2048)
    yield engine
    engine.close()


def test_the_probe_finds_vllms_extensions(served_engine):
    assert served_engine.vllm_extensions
    assert served_engine.detected.startswith(f"{served_engine.base_url}: vLLM extensions found")


async def test_standard_path_counts_tokens_like_the_server(standard_engine, served_engine):
    assert not standard_engine.vllm_extensions
    assert "no vLLM extensions (turned off by the extensions option); local tokenizer" in (
        standard_engine.detected)
    assert standard_engine.detected.endswith("context 2048 from --max-model-len")
    text = "Paris is the capital of France; bananas are rich in potassium."
    assert await standard_engine.count_tokens(text) == await served_engine.count_tokens(text)


def test_choice_and_regex_through_response_format(standard_engine, dl19_request):
    query, docs = dl19_request.query, list(dl19_request.candidates[:4])
    pointwise = Reranker("pointwise", engine=standard_engine).rerank(query, docs)
    assert sorted(pointwise.doc_ids) == sorted(d.doc_id for d in docs)
    replies = [j.raw_reply for j in pointwise.provenance.judgments]
    assert {r.lower() for r in replies} <= {"yes", "no"}, replies  # enum honoured, unquoted
    assert pointwise.provenance.fallbacks == 0
    listwise = Reranker("listwise", engine=standard_engine,
                        params={"window": 4, "stride": 2}).rerank(query, docs)
    [window] = listwise.provenance.judgments
    assert window.raw_reply.startswith("[") and window.raw_reply.count("]") == 4
    assert sorted(listwise.doc_ids) == sorted(d.doc_id for d in docs)


def test_without_a_tokenizer_it_says_what_to_give(served_engine):
    with pytest.raises(EngineError, match="give --tokenizer"):
        OpenAIEngine(served_engine.base_url, api_key=TEST_API_KEY, extensions=False)


def test_first_with_its_reply_opened_at_a_bracket(standard_engine, served_engine,
                                                  dl19_request):
    query, docs = dl19_request.query, list(dl19_request.candidates[:4])
    params = {"window": 4, "stride": 2}
    # vLLM's extension continues the assistant turn, so the one token is a label.
    served = Reranker("first", engine=served_engine, params=params).rerank(query, docs)
    [window] = served.provenance.judgments
    assert window.raw_reply in ("A", "B", "C", "D") and served.provenance.fallbacks == 0
    assert sorted(served.doc_ids) == sorted(d.doc_id for d in docs)
    # A standard server cannot continue a turn: said in one line, not sent differently.
    with pytest.raises(EngineError, match="opens the model's reply with '\\['"):
        Reranker("first", engine=standard_engine, params=params).rerank(query, docs)
