import json

import pytest

from rerankgraph.data import (
    RunEntry,
    build_job,
    load_beir,
    read_qrels,
    read_trec_run,
    run_lines,
    write_trec_run,
)
from rerankgraph.errors import InputError
from rerankgraph.types import RerankResult, ScoredDoc


def _folder(tmp_path, corpus, queries):
    (tmp_path / "corpus.jsonl").write_text("".join(json.dumps(d) + "\n" for d in corpus))
    (tmp_path / "queries.jsonl").write_text("".join(json.dumps(q) + "\n" for q in queries))
    return tmp_path


def test_run_with_wrong_field_count_names_file_and_line(tmp_path):
    path = tmp_path / "run.trec"
    path.write_text("q1 Q0 d1 1 2.0 tag\nq1 Q0 d2 2 1.0\n")
    with pytest.raises(InputError, match=r"run.trec:2: expected 6 fields .* found 5"):
        read_trec_run(path)


def test_run_rejects_bad_numbers_and_duplicates(tmp_path):
    path = tmp_path / "run.trec"
    path.write_text("q1 Q0 d1 one 2.0 tag\n")
    with pytest.raises(InputError, match=":1: rank 'one' must be an integer"):
        read_trec_run(path)
    path.write_text("q1 Q0 d1 1 2.0 t\nq1 Q0 d1 2 1.0 t\n")
    with pytest.raises(InputError, match=":2: doc 'd1' appears twice"):
        read_trec_run(path)


def test_run_orders_by_score_and_keeps_query_order(tmp_path):
    path = tmp_path / "run.trec"
    path.write_text("q2 Q0 a 2 1.0 t\nq2 Q0 b 1 3.0 t\nq1 Q0 c 1 1.0 t\n")
    run = read_trec_run(path)
    assert list(run) == ["q2", "q1"]
    assert [e.doc_id for e in run["q2"]] == ["b", "a"]


def test_non_utf8_bytes_name_the_line(tmp_path):
    path = tmp_path / "run.trec"
    path.write_bytes(b"q1 Q0 d1 1 2.0 t\nq1 Q0 d\xff 2 1.0 t\n")
    with pytest.raises(InputError, match=r"run.trec:2: not valid UTF-8 \(byte 0xff\)"):
        read_trec_run(path)


BOM = b"\xef\xbb\xbf"


def test_a_utf8_byte_order_mark_is_accepted_on_every_input(tmp_path):
    folder = _folder(tmp_path, [{"_id": "d1", "title": "", "text": "wing flutter"}],
                     [{"_id": "q1", "text": "flutter"}])
    for name in ("corpus.jsonl", "queries.jsonl"):
        (folder / name).write_bytes(BOM + (folder / name).read_bytes())
    (folder / "run.trec").write_bytes(BOM + b"q1 Q0 d1 1 2.0 t\n")
    (folder / "qrels.tsv").write_bytes(BOM + b"query-id\tcorpus-id\tscore\nq1\td1\t1\n")
    data = load_beir(folder)
    assert data.queries == {"q1": "flutter"} and list(data.corpus) == ["d1"]
    assert read_trec_run(folder / "run.trec")["q1"][0].doc_id == "d1"
    assert read_qrels(folder / "qrels.tsv") == {"q1": {"d1": 1}}
    from rerankgraph.index.corpus import read_corpus

    assert read_corpus(folder).doc_ids == ["d1"]


def test_a_bom_does_not_hide_bad_bytes_later(tmp_path):
    path = tmp_path / "run.trec"
    path.write_bytes(BOM + b"q1 Q0 d1 1 2.0 t\nq1 Q0 d\xff 2 1.0 t\n")
    with pytest.raises(InputError, match=r"run.trec:2: not valid UTF-8 \(byte 0xff\)"):
        read_trec_run(path)


def test_qrels_both_formats(tmp_path):
    tsv = tmp_path / "q.tsv"
    tsv.write_text("query-id\tcorpus-id\tscore\n1\td1\t2\n")
    trec = tmp_path / "q.txt"
    trec.write_text("1 0 d1 2\n1 0 d2 0\n")
    assert read_qrels(tsv) == {"1": {"d1": 2}}
    assert read_qrels(trec) == {"1": {"d1": 2, "d2": 0}}
    trec.write_text("1 0 d1 2\n1 0 d2 1 extra\n")
    with pytest.raises(InputError, match=":2: expected 'qid docid rel'"):
        read_qrels(trec)


def test_missing_or_empty_data_folder(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        load_beir(tmp_path / "absent")
    with pytest.raises(InputError, match="has no corpus.jsonl"):
        load_beir(tmp_path)
    (tmp_path / "corpus.jsonl").write_text("")
    (tmp_path / "queries.jsonl").write_text("{}")
    with pytest.raises(InputError, match="corpus.jsonl is empty"):
        load_beir(tmp_path)


def test_bad_json_line_is_named(tmp_path):
    folder = _folder(tmp_path, [{"_id": "d1", "text": "x"}], [{"_id": "q1", "text": "y"}])
    with (folder / "corpus.jsonl").open("a") as f:
        f.write("{not json\n")
    with pytest.raises(InputError, match=r"corpus.jsonl:2: not valid JSON"):
        load_beir(folder)


def test_job_skips_missing_docs_and_reports_them(tmp_path):
    folder = load_beir(_folder(tmp_path, [{"_id": "d1", "text": "x"}, {"_id": "d2", "text": "z"}],
                               [{"_id": "q1", "text": "y"}, {"_id": "q2", "text": "w"}]))
    run = {"q1": [RunEntry("d1", 1, 3.0), RunEntry("ghost", 2, 2.0), RunEntry("d2", 3, 1.0)],
           "q2": [RunEntry("ghost", 1, 1.0)]}
    job = build_job(folder, run, depth=10)
    assert [c.doc_id for c in job.requests[0].candidates] == ["d1", "d2"]
    assert job.missing_docs == {"q1": ["ghost"], "q2": ["ghost"]}
    assert "q2" in job.skipped_queries and len(job.requests) == 1


def test_job_rejects_unknown_queries_and_bad_depth(tmp_path):
    folder = load_beir(_folder(tmp_path, [{"_id": "d1", "text": "x"}], [{"_id": "q1", "text": "y"}]))
    run = {"q1": [RunEntry("d1", 1, 1.0)], "q9": [RunEntry("d1", 1, 1.0)]}
    with pytest.raises(InputError, match="1 query ids of the run are not in .*'q9'"):
        build_job(folder, run, depth=5)
    with pytest.raises(InputError, match="--depth must be a positive"):
        build_job(folder, {"q1": run["q1"]}, depth=0)


def test_run_lines_append_the_rest_in_first_stage_order(tmp_path):
    entries = [RunEntry(d, i + 1, 10.0 - i) for i, d in enumerate("abcde")]
    result = RerankResult(query_id="q", ranking=(ScoredDoc(doc_id="c", score=1),
                                                ScoredDoc(doc_id="a", score=0.5)))
    lines = run_lines(result, entries, "tag")
    assert [line.split()[2] for line in lines] == ["c", "a", "b", "d", "e"]
    scores = [int(line.split()[4]) for line in lines]
    assert scores == sorted(scores, reverse=True) and len(set(scores)) == 5
    out = tmp_path / "out.trec"
    write_trec_run(out, {"q": lines})
    assert [e.doc_id for e in read_trec_run(out)["q"]] == ["c", "a", "b", "d", "e"]


def test_real_dl19_slice(dl19, dl19_run):
    job = build_job(dl19, dl19_run, depth=5, queries=3)
    assert len(job.requests) == 3 and not job.missing_docs
    assert all(len(r.candidates) == 5 for r in job.requests)
    assert job.requests[0].query.text == "how long is life cycle of flea"
