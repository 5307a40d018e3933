"""The simulated judge: exact without noise, noisy as configured, always labelled."""

import statistics

import pytest

from rerankgraph.errors import EngineError, InputError
from rerankgraph.sdk import Reranker, make_request
from rerankgraph.simulation import SimulatedJudge, SimulationSettings

QUERIES = {"q1": "how do fleas live"}
CORPUS = {f"d{i}": ("", f"passage number {i} about topic {i} with some words") for i in range(8)}
QRELS = {"q1": {"d5": 3, "d2": 2, "d7": 1}}
IDEAL = ["d5", "d2", "d7"]


def judge(seed=3, **settings):
    return SimulatedJudge(QRELS, QUERIES, CORPUS, SimulationSettings(**settings), seed=seed)


def request():
    return make_request(QUERIES["q1"], [{"doc_id": d, "text": t} for d, (_, t) in CORPUS.items()],
                        query_id="q1")


@pytest.mark.parametrize("method", ["pointwise", "rubric", "listwise", "first", "groupwise",
                                    "setwise", "pairwise"])
def test_noise_free_simulation_is_exact_for_every_method(method):
    params = {"groupwise": {"group_size": 8, "interval": 8, "rounds": 1},
              "setwise": {"k": 3}, "pairwise": {"k": 3}}.get(method, {})
    result = Reranker(method, engine=judge(), params=params).rerank_batch([request()])[0]
    assert result.doc_ids[:3] == IDEAL, result.provenance.judgments[0].raw_reply
    assert result.provenance.simulated and result.provenance.model.startswith("SIMULATED(")
    assert result.provenance.fallbacks == 0


def test_flip_probability_flips_about_that_share_of_comparisons():
    # a call asked again repeats its reply, so each trial is a judge with its own seed
    wrong = 0
    trials = 400
    for seed in range(trials):
        reranker = Reranker("setwise", engine=judge(seed, flip_prob=0.3),
                            params={"num_child": 1, "k": 1})
        result = reranker.rerank_batch([make_request(QUERIES["q1"], [
            {"doc_id": "d5", "text": CORPUS["d5"][1]}, {"doc_id": "d0", "text": CORPUS["d0"][1]}],
            query_id="q1")])[0]
        wrong += result.doc_ids[0] != "d5"
    assert 0.22 < wrong / trials < 0.38


def test_score_noise_has_the_configured_spread():
    scores = [Reranker("rubric", engine=judge(seed, score_noise=0.2)).rerank_batch([
        make_request(QUERIES["q1"], [{"doc_id": "d2", "text": CORPUS["d2"][1]}],
                     query_id="q1")])[0].ranking[0].score
        for seed in range(300)]
    assert abs(statistics.mean(scores) - 2 / 3) < 0.04
    assert 0.15 < statistics.pstdev(scores) < 0.25


def test_a_noisy_run_repeats_in_any_call_order_and_changes_with_the_seed():
    requests = [make_request(QUERIES["q1"], [{"doc_id": d, "text": CORPUS[d][1]}
                                             for d in order], query_id="q1")
                for order in (list(CORPUS), list(reversed(CORPUS)), sorted(CORPUS)[::2])]

    def rankings(seed, batch):
        engine = judge(seed, score_noise=0.3, flip_prob=0.2, position_bias=0.2)
        results = Reranker("setwise", engine=engine, params={"k": 3}).rerank_batch(batch)
        return [r.doc_ids for r in results]

    first = rankings(3, requests)
    # the same seed answers alike whether the queries come together or alone, in any order
    assert rankings(3, requests[::-1]) == first[::-1]
    assert [rankings(3, [r])[0] for r in requests] == first
    assert any(rankings(seed, requests) != first for seed in range(4, 8))


def test_position_bias_favours_the_first_passage():
    engine = judge(position_bias=0.5)
    # Two unjudged passages: only the bias separates them.
    result = Reranker("setwise", engine=engine, params={"num_child": 1, "k": 1}).rerank_batch([
        make_request(QUERIES["q1"], [{"doc_id": "d0", "text": CORPUS["d0"][1]},
                                     {"doc_id": "d1", "text": CORPUS["d1"][1]}], query_id="q1")])[0]
    assert result.doc_ids[0] == "d0"
    flipped = Reranker("setwise", engine=engine, params={"num_child": 1, "k": 1}).rerank_batch([
        make_request(QUERIES["q1"], [{"doc_id": "d1", "text": CORPUS["d1"][1]},
                                     {"doc_id": "d0", "text": CORPUS["d0"][1]}], query_id="q1")])[0]
    assert flipped.doc_ids[0] == "d1"


# -- the seam: agents declare their simulated replies; the simulator knows no method ------
from rerankgraph.agents.base import Agent, SimulatedReply, render  # noqa: E402
from rerankgraph.serving.base import ChatRequest  # noqa: E402


class BestIndexAgent(Agent):
    """A judge that no simulator code knows: it replies with the best passage's position."""

    name = "test-best-index"
    template = "listwise.j2"

    def simulate(self, request, oracle):
        return SimulatedReply(str(max(range(len(oracle.relevance)), key=lambda i: oracle.relevance[i])))


def _prompt(doc_ids):
    return render("listwise.j2", query=QUERIES["q1"], passages=[CORPUS[d][1] for d in doc_ids])


def test_a_new_agent_is_answered_through_its_own_simulate():
    engine = judge()
    [completion] = engine.run_sync(engine.chat([BestIndexAgent().ask(
        _prompt(["d0", "d7", "d5", "d2"]), max_tokens=2, regex=r"[0-9]")]))
    assert completion.text == "2" and completion.finish_reasons == ("stop",)


def test_requests_name_their_agent_and_unknown_ones_are_refused():
    engine = judge()
    anonymous = ChatRequest(messages=({"role": "user", "content": _prompt(["d5"])},))
    with pytest.raises(InputError, match="purpose '', which names no agent"):
        engine.run_sync(engine.chat([anonymous]))


def test_an_agent_without_simulate_says_what_to_define():
    class Silent(Agent):
        name = "test-silent"
        template = "listwise.j2"

    engine = judge()
    # The engine boundary turns it into one EngineError line that keeps the message.
    with pytest.raises(EngineError, match="NotImplementedError: .*define Silent.simulate"):
        engine.run_sync(engine.chat([Silent().ask(_prompt(["d5"]))]))


def test_a_simulated_reply_must_fit_the_structured_output():
    engine = judge()
    with pytest.raises(EngineError, match="does not fit the request's structured output"):
        engine.run_sync(engine.chat([BestIndexAgent().ask(_prompt(["d0", "d5"]), choice=("A", "B"))]))


def test_agent_names_are_unique():
    with pytest.raises(ValueError, match="agent name 'pointwise' is taken by "
                                         "rerankgraph.agents.pointwise.PointwiseAgent"):
        type("Impostor", (Agent,), {"name": "pointwise", "template": "pointwise.j2"})
