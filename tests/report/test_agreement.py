"""Agreement of LLM labels with human qrels, on cases worked out by hand."""

import json

import pytest

from rerankgraph.errors import InputError
from rerankgraph.report.agreement import agreement, agreement_path, ranking_tau, write_agreement

# Eight pairs (human, LLM): (0,0) (0,0) (1,1) (1,0) (2,2) (2,2) (3,3) (3,2).
HUMAN = {"q": {"a": 0, "b": 0, "c": 1, "d": 1, "e": 2, "f": 2, "g": 3, "h": 3}}
LLM = {"q": {"a": 0, "b": 0, "c": 1, "d": 0, "e": 2, "f": 2, "g": 3, "h": 2, "x": 1}}


def _agreement(**kwargs):
    return agreement(LLM, HUMAN, labels_name="llm.qrels", human_name="human.qrels", **kwargs)


def test_kappa_confusion_and_precision_by_hand():
    result = _agreement(skipped=2)
    # p_o = 6/8; every human grade has 2/8, the LLM's 3/8, 1/8, 3/8, 1/8: p_e = 1/4.
    # kappa = (3/4 - 1/4) / (3/4) = 2/3.
    assert result.kappa_graded == pytest.approx(2 / 3)
    # At grade >= 2 both sides split the same four pairs: perfect agreement.
    assert result.kappa_binary == pytest.approx(1.0)
    assert result.confusion == ((2, 0, 0, 0), (1, 1, 0, 0), (0, 0, 2, 0), (0, 0, 1, 1))
    assert result.precision_by_grade == {"0": pytest.approx(2 / 3), "1": 1.0,
                                         "2": pytest.approx(2 / 3), "3": 1.0}
    # "x" has no human label: counted in skipped beside the 2 given, left out of the sums.
    assert (result.pairs, result.skipped) == (8, 3)


def test_binary_threshold_is_an_option():
    # At grade >= 3: p_o = 7/8, p_e = 1/4 * 1/8 + 3/4 * 7/8 = 11/16, kappa = 0.6.
    result = _agreement(binary_threshold=3)
    assert result.kappa_binary == pytest.approx(0.6) and result.binary_threshold == 3
    with pytest.raises(InputError, match="--binary-threshold must be 1, 2 or 3"):
        _agreement(binary_threshold=0)


def test_a_grade_never_given_has_no_precision_and_identical_labels_have_kappa_one():
    same = {"q": {"a": 0, "b": 0}}
    result = agreement(same, same, labels_name="l", human_name="h")
    assert result.kappa_graded == 1.0 and result.kappa_binary == 1.0
    assert result.precision_by_grade == {"0": 1.0, "1": None, "2": None, "3": None}


def test_no_shared_pair_is_an_input_error():
    with pytest.raises(InputError, match="h judges none of the pairs in l"):
        agreement({"q": {"a": 1}}, {"q": {"b": 1}}, labels_name="l", human_name="h")


def test_tau_by_hand():
    # Human qrels order the runs A > B > C by nDCG@10, the LLM labels A > C > B:
    # of the three pairs of runs two agree and one is swapped, so tau = (2 - 1) / 3.
    human = {"q": {"d1": 3, "d2": 1}}
    llm = {"q": {"d1": 3, "d3": 2}}
    runs = {"A": {"q": {"d1": 3.0, "d2": 2.0, "d3": 1.0}},
            "B": {"q": {"d2": 2.0, "d1": 1.0}},
            "C": {"q": {"d3": 2.0, "d1": 1.0}}}
    tau = ranking_tau(runs, human, llm, ["q"])
    assert tau.value == pytest.approx(1 / 3) and 0 < tau.p <= 1
    assert tau.human_scores[0] > tau.human_scores[1] > tau.human_scores[2]
    assert tau.llm_scores[0] > tau.llm_scores[2] > tau.llm_scores[1]
    assert tau.runs == ("A", "B", "C") and tau.measure == "nDCG@10"


def test_tau_counts_only_the_assessed_queries():
    # Query "other" would reverse B and C under the human qrels; it is not assessed.
    human = {"q": {"d1": 3, "d2": 1}, "other": {"d3": 3}}
    llm = {"q": {"d1": 3, "d3": 2}}
    runs = {"A": {"q": {"d1": 3.0, "d2": 2.0, "d3": 1.0}},
            "B": {"q": {"d2": 2.0, "d1": 1.0}},
            "C": {"q": {"d3": 2.0, "d1": 1.0}, "other": {"d3": 1.0}}}
    tau = ranking_tau(runs, human, llm, ["q"])
    assert tau.human_scores[1] > tau.human_scores[2] and tau.value == pytest.approx(1 / 3)


def test_tau_needs_two_runs():
    with pytest.raises(InputError, match="two runs at least"):
        ranking_tau({"A": {"q": {"d": 1.0}}}, {"q": {"d": 1}}, {"q": {"d": 1}}, ["q"])


def test_the_agreement_file_has_exactly_the_report_schema(tmp_path):
    labels = tmp_path / "llm.qrels"
    path = agreement_path(labels)
    assert path == tmp_path / "llm.agreement.json"
    write_agreement(path, _agreement())
    data = json.loads(path.read_text())
    assert list(data) == ["labels", "human", "pairs", "skipped", "kappa_graded", "kappa_binary",
                          "binary_threshold", "confusion", "precision_by_grade", "tau"]
    assert data["confusion"] == [[2, 0, 0, 0], [1, 1, 0, 0], [0, 0, 2, 0], [0, 0, 1, 1]]
    assert list(data["precision_by_grade"]) == ["0", "1", "2", "3"] and data["tau"] is None


def test_tau_is_undefined_when_one_side_scores_every_run_alike(tmp_path):
    from rerankgraph.report.agreement import TauUndefined, measure_agreement

    runs = {"A": {"q": {"d1": 2.0, "d2": 1.0}}, "B": {"q": {"d2": 2.0, "d1": 1.0}}}
    with pytest.raises(TauUndefined, match="every run has the same nDCG@10"):
        ranking_tau(runs, {"q": {"d1": 1}}, {"q": {"d1": 1, "d2": 1}}, ["q"])
    # After a job the agreement is still written, with tau null and a line saying why.
    human, paths = tmp_path / "h.qrels", []
    human.write_text("q 0 d1 1\n")
    for name, run in runs.items():
        paths.append(tmp_path / f"{name}.trec")
        paths[-1].write_text("".join(f"q Q0 {d} {i} {s} x\n"
                                     for i, (d, s) in enumerate(run["q"].items(), 1)))
    lines = measure_agreement({"q": {"d1": 1, "d2": 1}}, human, tmp_path / "l.qrels",
                              runs=paths)
    assert any(line.startswith("no tau: Kendall's tau is undefined") for line in lines)
    assert json.loads((tmp_path / "l.agreement.json").read_text())["tau"] is None
