from rerankgraph.evaluation import evaluate_run
from tests.conftest import DL19


def test_bm25_matches_the_published_dl19_figure():
    scores = evaluate_run(DL19 / "qrels.tsv", DL19 / "bm25.trec", rel=2)
    assert round(scores["nDCG@10"], 4) == 0.5058


def test_perfect_and_reversed_runs(tmp_path):
    qrels = tmp_path / "qrels.txt"
    qrels.write_text("1 0 a 3\n1 0 b 1\n1 0 c 0\n")
    good, bad = tmp_path / "good.trec", tmp_path / "bad.trec"
    good.write_text("1 Q0 a 1 3 t\n1 Q0 b 2 2 t\n1 Q0 c 3 1 t\n")
    bad.write_text("1 Q0 c 1 3 t\n1 Q0 b 2 2 t\n1 Q0 a 3 1 t\n")
    assert evaluate_run(qrels, good)["nDCG@10"] == 1.0
    assert evaluate_run(qrels, bad)["nDCG@10"] < 0.7
    assert evaluate_run(qrels, good, ["R@2"], rel=2)["R@2"] == 1.0
