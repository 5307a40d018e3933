"""Judge profiles: the measures are right on judges whose answers are known, and a
simulator fitted to a profile answers at the rates it was fitted to."""

import json

import pytest

from rerankgraph.data import build_job, read_trec_run
from rerankgraph.errors import InputError
from rerankgraph.jobs.profile import ProfileSettings, profile_judge
from rerankgraph.sdk import Reranker
from rerankgraph.simulation import SimulatedJudge, SimulationSettings, load_profile
from rerankgraph.simulation.profile import Cost, draw_score, order_profile, score_profile
from tests.conftest import DL19

METHODS = ("pointwise", "listwise", "setwise", "pairwise")
NO_COST = Cost(calls=0, prompt_tokens=0, completion_tokens=0, seconds=0, repaired=0,
               fallbacks=0)


@pytest.fixture(scope="module")
def qrels():
    from rerankgraph.data import read_qrels

    return read_qrels(DL19 / "qrels.tsv")


def profile_of(engine, tmp_path, queries=3, skip=0, methods=METHODS):
    out = tmp_path / "profile.json"
    profile = profile_judge(ProfileSettings(
        data=DL19, run=DL19 / "bm25.trec", qrels=DL19 / "qrels.tsv", out=out, queries=queries,
        skip=skip, depth=20, methods=methods), engine=engine)
    assert load_profile(out) == profile  # what was written reads back whole
    return profile


def judge(dl19, qrels, profile=None, seed=0, **noise):
    return SimulatedJudge(qrels, dl19.queries, dl19.corpus, SimulationSettings(**noise),
                          seed=seed, profile=profile)


def test_an_exact_judge_profiles_as_perfect(dl19, qrels, tmp_path):
    profile = profile_of(judge(dl19, qrels), tmp_path)
    pointwise = profile.agents["pointwise"]
    assert pointwise.auc_vs_grade0 == {1: 1.0, 2: 1.0, 3: 1.0}
    # the judge's yes-probability, which the simulator keeps off exactly 0 and 1
    assert [pointwise.mean[g] for g in range(4)] == pytest.approx([0, 1 / 3, 2 / 3, 1],
                                                                  abs=0.015)
    for name in ("listwise", "setwise", "pairwise"):
        entry = profile.agents[name]
        assert entry.top_pick_accuracy == 1.0, name
        # it never leaves a better passage behind: no keeping, no noise, no position bonus
        assert (entry.fitted.keep, entry.fitted.noise, entry.fitted.loss) == (0, 0, 0), name
    assert profile.agents["listwise"].concordance == 1.0
    # pairwise shows each pair both ways: the first shown wins exactly when it is better,
    # and on equal grades the exact judge keeps the shown order
    assert profile.agents["pairwise"].first_pick_rate_equal == 1.0
    assert profile.agents["pairwise"].first_pick_rate_different == 0.5
    assert profile.query_ids == list(read_trec_run(DL19 / "bm25.trec"))[:3]


def test_a_simulator_fitted_to_an_exact_judge_ranks_as_it_does(dl19, qrels, tmp_path):
    exact = profile_of(judge(dl19, qrels), tmp_path)
    held_out = build_job(dl19, read_trec_run(DL19 / "bm25.trec"), depth=20,
                         queries=5).requests[3:]
    for name in METHODS:
        rankings = [[r.doc_ids for r in Reranker(name, engine=engine, params={"fusion": "none"})
                     .rerank_batch(held_out)]
                    for engine in (judge(dl19, qrels), judge(dl19, qrels, profile=exact))]
        assert rankings[0] == rankings[1], name


def test_a_fitted_simulator_answers_at_the_rates_it_was_fitted_to(dl19, qrels, tmp_path):
    noisy = profile_of(judge(dl19, qrels, score_noise=0.2, flip_prob=0.2, position_bias=0.3),
                       tmp_path / "noisy", queries=6)
    # Many draws: on twice the queries, so the refit's own sampling error stays small.
    refit = profile_of(judge(dl19, qrels, profile=noisy, seed=1), tmp_path / "refit",
                       queries=12)
    assert refit.model == f"SIMULATED(profile={noisy.model})"
    for grade, mean in noisy.agents["pointwise"].mean.items():
        assert refit.agents["pointwise"].mean[grade] == pytest.approx(mean, abs=0.06), grade
    # listwise makes one call per query, so only its pair concordance has many draws
    picks = ("top_pick_accuracy", "first_pick_rate_different", "concordance")
    for name, rates in (("listwise", ("concordance",)), ("setwise", picks),
                        ("pairwise", picks)):
        measured, fitted = noisy.agents[name], refit.agents[name]
        for rate in rates:
            if getattr(measured, rate) is not None:
                assert getattr(fitted, rate) == pytest.approx(getattr(measured, rate),
                                                              abs=0.1), (name, rate)


def test_a_fitted_simulator_repeats_itself_and_changes_with_the_seed(dl19, qrels, tmp_path,
                                                                     dl19_request):
    noisy = profile_of(judge(dl19, qrels, score_noise=0.3), tmp_path, methods=("pointwise",))

    def ranking(seed):
        result = Reranker("pointwise", engine=judge(dl19, qrels, profile=noisy, seed=seed),
                          params={"fusion": "none"}).rerank_batch([dl19_request])[0]
        return [round(item.score, 6) for item in result.ranking]

    assert ranking(0) == ranking(0)
    assert ranking(0) != ranking(1)


def test_a_method_the_profile_did_not_measure_is_refused_by_name(dl19, qrels, tmp_path,
                                                                dl19_request):
    only_pointwise = profile_of(judge(dl19, qrels), tmp_path, methods=("pointwise",))
    reranker = Reranker("listwise", engine=judge(dl19, qrels, profile=only_pointwise),
                        params={"fusion": "none"})
    with pytest.raises(InputError, match="measured agents pointwise, not 'listwise'"):
        reranker.rerank_batch([dl19_request])


def test_a_judge_that_keeps_the_shown_order_fits_keep_one():
    layouts = [[0, 3, 1, 2], [2, 0, 0, 1], [1, 1, 3, 0], [0, 2, 1, 3]] * 5
    kept = order_profile([(grades, [0, 1, 2, 3]) for grades in layouts], NO_COST, max_grade=3)
    assert kept.kept_rate == 1.0 and kept.first_pick_rate == 1.0
    assert kept.fitted.keep >= 0.95 and kept.fitted.loss < 1e-3
    assert kept.pick_position == [1.0, 0.0, 0.0, 0.0]


def test_a_judge_that_picks_the_best_fits_no_keep_and_little_noise():
    layouts = [[0, 3, 1, 2], [2, 0, 1, 1], [1, 2, 3, 0], [0, 2, 1, 3]] * 5
    best = order_profile([(grades, [max(range(4), key=grades.__getitem__)])
                          for grades in layouts], NO_COST, max_grade=3)
    assert best.full_order is False and best.top_pick_accuracy == 1.0
    assert best.fitted.keep == 0.0 and best.fitted.noise <= 0.1
    assert best.concordance is None  # a pick orders no pairs


def test_score_quantiles_are_drawn_back_per_grade():
    pairs = [(0, 0.1), (0, 0.2), (0, 0.3), (2, 0.8), (2, 0.9)]
    profile = score_profile(pairs, 1.0, NO_COST, max_grade=2)
    assert profile.auc_vs_grade0 == {2: 1.0}
    assert draw_score(profile, 0, 0.0) == pytest.approx(0.1)
    assert draw_score(profile, 0, 0.5) == pytest.approx(0.2)
    assert draw_score(profile, 0, 1.0) == pytest.approx(0.3)
    assert draw_score(profile, 2, 0.5) == pytest.approx(0.85)
    assert draw_score(profile, 1, 0.5) == pytest.approx(0.2)  # unmeasured: the grade below
    assert draw_score(profile, 5, 1.0) == pytest.approx(0.9)  # above: the top grade


def test_profiling_needs_qrels_and_a_query_left(tmp_path):
    base = {"data": DL19, "run": DL19 / "bm25.trec", "out": tmp_path / "p.json"}
    with pytest.raises(InputError, match="give --qrels FILE"):
        profile_judge(ProfileSettings(qrels=None, **base))
    with pytest.raises(InputError, match="no query left after --skip 50"):
        profile_judge(ProfileSettings(qrels=DL19 / "qrels.tsv", skip=50, queries=None, **base))
    with pytest.raises(InputError, match="unknown method 'nope'"):
        profile_judge(ProfileSettings(qrels=DL19 / "qrels.tsv", methods=("nope",), **base))
    assert not (tmp_path / "p.json").exists()


@pytest.fixture(scope="module")
def written_profile(dl19, qrels, tmp_path_factory):
    folder = tmp_path_factory.mktemp("profile")
    profile_of(judge(dl19, qrels), folder, methods=("pointwise", "setwise"))
    return json.loads((folder / "profile.json").read_text())


def corrupt(tmp_path, name, raw):
    path = tmp_path / name
    path.write_text(raw if isinstance(raw, str) else json.dumps(raw))
    return path


def test_bad_profile_files_are_named_in_one_line(tmp_path, written_profile):
    wrong_format = {**written_profile, "format": "something-else/1"}
    bad_field = {**written_profile, "depth": "deep"}
    missing_grade = json.loads(json.dumps(written_profile))
    del missing_grade["agents"]["pointwise"]["counts"]["2"]
    cases = [
        (tmp_path / "absent.json", "absent.json does not exist"),
        (corrupt(tmp_path, "bad.json", "{not json"), "bad.json is not JSON"),
        (corrupt(tmp_path, "foreign.json", wrong_format), "format 'something-else/1', expected "
                                          "'rerankgraph-judge-profile/1'"),
        (corrupt(tmp_path, "field.json", bad_field), "field depth:"),
        (corrupt(tmp_path, "grade.json", missing_grade), "agent 'pointwise' has no judged pairs of grade 2"),
    ]
    for path, message in cases:
        with pytest.raises(InputError, match=message.replace("(", r"\(")) as caught:
            load_profile(path)
        assert "\n" not in str(caught.value)


def test_a_judge_drawn_to_one_label_fits_a_label_prior():
    import random

    from rerankgraph.simulation.profile import fitted_relevance

    layouts = [[0, 3, 1, 2], [2, 0, 1, 1], [1, 2, 3, 0], [0, 2, 1, 3]] * 5
    third = order_profile([(grades, [2]) for grades in layouts], NO_COST, max_grade=3)
    assert third.pick_position == [0.0, 0.0, 1.0, 0.0]
    assert third.fitted.label_weight > 0 and third.fitted.keep == 0.0
    rng = random.Random(0)
    picks = [max(range(4), key=fitted_relevance(third, grades, 3, rng).__getitem__)
             for grades in layouts * 10]
    assert picks.count(2) / len(picks) > 0.9
