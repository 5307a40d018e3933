"""Every real backend (in-process vLLM and a served vLLM) passes the same checks."""

import json

from rerankgraph.serving.base import ChatRequest

QUESTION = ({"role": "user", "content": "Is Paris the capital of France? Answer yes or no."},)


async def test_choice_with_logprobs(any_engine):
    [completion] = await any_engine.chat([ChatRequest(
        messages=QUESTION, max_tokens=1, choice=("yes", "no"), top_logprobs=5)])
    assert completion.text in {"yes", "no"}
    alternatives = completion.first_token_logprobs
    assert completion.text in alternatives and len(alternatives) >= 2
    assert all(value <= 0 for value in alternatives.values())
    assert completion.prompt_tokens > 10 and completion.completion_tokens == 1


async def test_json_schema_reply_parses(any_engine):
    schema = {"type": "object", "properties": {"answer": {"type": "string", "maxLength": 20},
                                               "confidence": {"type": "integer"}},
              "required": ["answer", "confidence"]}
    [completion] = await any_engine.chat([ChatRequest(messages=QUESTION, max_tokens=48,
                                                      json_schema=schema)])
    reply = json.loads(completion.text)
    assert set(reply) == {"answer", "confidence"} and isinstance(reply["confidence"], int)


async def test_n_samples_with_seed_are_reproducible(any_engine):
    ask = ChatRequest(messages=QUESTION, max_tokens=6, temperature=1.0, n=4, seed=11)
    first, second = await any_engine.chat([ask, ask])
    assert len(first.texts) == 4 and first.texts == second.texts
    assert first.completion_tokens >= 4


async def test_batch_keeps_request_order(any_engine):
    asks = [ChatRequest(messages=({"role": "user", "content": f"Repeat the number {n}."},),
                        max_tokens=4, choice=(str(n),)) for n in range(6)]
    completions = await any_engine.chat(asks)
    assert [c.text for c in completions] == [str(n) for n in range(6)]


async def test_fit_texts_of_long_texts_cut_as_their_whole_tokenization_does(any_engine):
    # Long texts are tokenized only as far as their budget reaches: the cut must be the
    # one the whole text's tokens give, for one long word, long lines and mixed scripts.
    texts = ["y" * 50_000, "word " * 20_000, "ab1-" * 5_000 + " tail",
             ("Les caf\u00e9s \u00e0 Z\u00fcrich \u2014 \u6771\u4eac\u306e\u5929\u6c17, "
              "12.5% of 3,400 m\u00b2. ") * 500, "=" * 30_000 + " x"]
    for budget in (50, 256):
        fitted = await any_engine.fit_texts(texts, budget)
        for text, (cut, truncated) in zip(texts, fitted, strict=True):
            whole = await any_engine._guarded(any_engine._tokenize(text))
            assert truncated
            assert cut == await any_engine._guarded(any_engine._detokenize(whole[:budget])), \
                text[:20]


async def test_fit_texts_cuts_to_the_token_budget(any_engine):
    long_text = "the flea life cycle " * 200
    [(cut, truncated), (short, kept)] = await any_engine.fit_texts([long_text, "tiny text"], 50)
    assert truncated and not kept and short == "tiny text"
    assert 45 <= await any_engine.count_tokens(cut) <= 52
    assert long_text.startswith(cut.strip()[:40])
