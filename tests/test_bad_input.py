"""Every kind of bad input gets one clear line naming the file, line or field.

Engine-free cases run here; the real-engine ones (wrong API key on a real server, a
server killed mid-job) are in tests/test_engine_faults.py."""

import json

import pytest

from rerankgraph.data import RunEntry, build_job, load_beir, read_qrels, read_trec_run
from rerankgraph.errors import InputError, ModelError
from rerankgraph.registry import get_method
from rerankgraph.sdk import Reranker, make_request
from rerankgraph.serving.model_store import resolve_model
from tests.fakes import ScriptedEngine


def _beir(tmp_path, corpus_lines, query_lines):
    (tmp_path / "corpus.jsonl").write_bytes(corpus_lines)
    (tmp_path / "queries.jsonl").write_bytes(query_lines)
    return tmp_path


GOOD_CORPUS = b'{"_id": "d1", "text": "x"}\n'
GOOD_QUERIES = b'{"_id": "q1", "text": "y"}\n'


@pytest.mark.parametrize(("corpus", "queries", "message"), [
    (b'{"_id": "d1", "text": "x"}\n[1, 2]\n', GOOD_QUERIES, r"corpus.jsonl:2: expected a JSON object"),
    (b'{"text": "x"}\n', GOOD_QUERIES, r"corpus.jsonl:1: missing field '_id'"),
    (b'{"_id": "d1", "text": "x"}\n{"_id": "d1", "text": "z"}\n', GOOD_QUERIES,
     r"corpus.jsonl:2: duplicate _id 'd1'"),
    (b'{"_id": "d1", "text": "caf\xe9"}\n', GOOD_QUERIES, r"corpus.jsonl:1: not valid UTF-8 \(byte 0xe9\)"),
    (b"\n\n", GOOD_QUERIES, r"corpus.jsonl holds no documents"),
    (GOOD_CORPUS, b"\n", r"queries.jsonl holds no queries"),
    (GOOD_CORPUS, b'{"_id": "q1"}\n', r"queries.jsonl:1: missing field 'text'"),
], ids=["not-an-object", "missing-id", "duplicate-id", "non-utf8-corpus", "blank-corpus",
        "blank-queries", "query-without-text"])
def test_bad_beir_files(tmp_path, corpus, queries, message):
    with pytest.raises(InputError, match=message):
        load_beir(_beir(tmp_path, corpus, queries))


@pytest.mark.parametrize(("text", "message"), [
    ("", r"holds no run lines"),
    ("q1 Q0 d1 1 nan-ish tag\n", r":1: rank '1' must be an integer and score 'nan-ish' a number"),
    ("q1 Q0 d1 1 2.0 tag extra\n", r":1: expected 6 fields .* found 7"),
], ids=["empty-run", "bad-score", "seven-fields"])
def test_bad_runs(tmp_path, text, message):
    path = tmp_path / "run.trec"
    path.write_text(text)
    with pytest.raises(InputError, match=message):
        read_trec_run(path)


def test_run_path_is_a_folder(tmp_path):
    with pytest.raises(InputError, match="is a folder, expected a file"):
        read_trec_run(tmp_path)


def test_missing_run_file(tmp_path):
    with pytest.raises(InputError, match="file not found"):
        read_trec_run(tmp_path / "nope.trec")


@pytest.mark.parametrize(("text", "message"), [
    ("", r"holds no judgments"),
    ("1 0 d1 high\n", r":1: relevance 'high' must be an integer"),
], ids=["empty-qrels", "non-integer-grade"])
def test_bad_qrels(tmp_path, text, message):
    path = tmp_path / "qrels.txt"
    path.write_text(text)
    with pytest.raises(InputError, match=message):
        read_qrels(path)


def test_empty_query_text_in_queries_file_is_skipped_and_reported(tmp_path):
    folder = load_beir(_beir(tmp_path, GOOD_CORPUS, b'{"_id": "q1", "text": "  "}\n{"_id": "q2", "text": "ok"}\n'))
    job = build_job(folder, {"q1": [RunEntry("d1", 1, 1.0)], "q2": [RunEntry("d1", 1, 1.0)]}, depth=3)
    assert job.skipped_queries == {"q1": "empty query text in queries.jsonl"}
    assert [r.query.id for r in job.requests] == ["q2"]


def test_depth_larger_than_the_list_takes_what_there_is(tmp_path):
    folder = load_beir(_beir(tmp_path, GOOD_CORPUS, GOOD_QUERIES))
    job = build_job(folder, {"q1": [RunEntry("d1", 1, 1.0)]}, depth=1000)
    assert len(job.requests[0].candidates) == 1


@pytest.mark.parametrize(("depth", "queries", "message"), [
    (-5, None, "--depth must be a positive"),
    (5, 0, "--queries must be positive"),
    (5, -1, "--queries must be positive"),
], ids=["negative-depth", "zero-queries", "negative-queries"])
def test_non_positive_counts(tmp_path, depth, queries, message):
    folder = load_beir(_beir(tmp_path, GOOD_CORPUS, GOOD_QUERIES))
    with pytest.raises(InputError, match=message):
        build_job(folder, {"q1": [RunEntry("d1", 1, 1.0)]}, depth=depth, queries=queries)


@pytest.mark.parametrize(("method", "params", "message"), [
    ("setwise", {"k": 0}, r"parameter 'k': Input should be greater than or equal to 1"),
    ("pairwise", {"k": -3}, r"parameter 'k'"),
    ("listwise", {"window": 5, "stride": 10}, r"stride 10 is larger than window 5"),
    ("groupwise", {"rounds": "many"}, r"parameter 'rounds'"),
    ("first", {"window": 30}, r"parameter 'window'.*less than or equal to 20"),
], ids=["zero-k", "negative-k", "stride-over-window", "non-numeric", "window-over-labels"])
def test_bad_method_parameters(method, params, message):
    with pytest.raises(InputError, match=message):
        get_method(method).make_params(params)


def test_model_folder_that_is_not_a_model(tmp_path):
    (tmp_path / "weights.bin").write_text("not a model")
    with pytest.raises(ModelError, match="has no config.json, so it is not a Hugging Face model"):
        resolve_model(str(tmp_path))


def test_both_model_and_base_url(tmp_path):
    with pytest.raises(InputError, match="give only one of model, base_url and engine"):
        Reranker("pointwise", model="x", base_url="http://127.0.0.1:1")


def test_context_smaller_than_the_template():
    engine = ScriptedEngine(["[1] > [2]"], max_model_len=300)
    with pytest.raises(InputError, match="context of 300 tokens is too small for listwise.j2"):
        Reranker("listwise", engine=engine).rerank("q", ["a", "b", "c"])
    with pytest.raises(InputError, match="20 passages of up to 120 tokens do not fit"):
        Reranker("groupwise", engine=ScriptedEngine(["{}"], max_model_len=2000)).rerank(
            "q", [f"doc {i}" for i in range(40)])


def test_one_megabyte_document_is_truncated_and_counted():
    engine = ScriptedEngine(["no"])
    result = Reranker("pointwise", engine=engine).rerank("q", ["x" * 1_000_000, "short"])
    assert result.provenance.truncated_docs == 1
    assert max(len(r.messages[1]["content"]) for r in engine.requests) < 2000


def test_nul_bytes_never_reach_the_prompt():
    engine = ScriptedEngine(["no"])
    Reranker("pointwise", engine=engine).rerank("flea\x00 life", ["a\x00b"])
    assert all("\x00" not in m["content"] for r in engine.requests for m in r.messages)


@pytest.mark.parametrize(("docs", "message"), [
    ([{"text": "no id"}], r"doc_id"),
    ([{"doc_id": " ", "text": "t"}], r"candidate doc_id is empty"),
    ([None], r"docs\[0\] is a NoneType"),
], ids=["dict-without-id", "blank-id", "none-doc"])
def test_bad_sdk_documents(docs, message):
    with pytest.raises(InputError, match=message):
        make_request("q", docs)


def test_bad_param_flag_shape():
    from rerankgraph.cli import parse_params
    from rerankgraph.errors import RerankgraphError

    with pytest.raises(RerankgraphError, match=r"--param 'window' must look like name=value"):
        parse_params(["window"])
    assert parse_params(["window=5", "name=abc", "flag=true"]) == {"window": 5, "name": "abc", "flag": True}


def test_errors_are_one_line():
    with pytest.raises(InputError) as info:
        make_request("", ["a"])
    assert "\n" not in str(info.value)
    assert json.dumps(str(info.value))


# -- fuzzing the readers: any bytes either parse or raise InputError, nothing else ------
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

FUZZ = settings(max_examples=150, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture])
RUN_LINE = st.lists(st.sampled_from(["q1", "Q0", "d1", "1", "2.5", "x", "-3", "tag", "\t", "é", "\x00"]),
                    max_size=8).map(" ".join)


@FUZZ
@given(st.one_of(st.binary(max_size=300), st.lists(RUN_LINE, max_size=6).map(lambda ls: "\n".join(ls).encode())))
def test_fuzz_trec_reader(tmp_path, content):
    path = tmp_path / "fuzz.trec"
    path.write_bytes(content)
    try:
        run = read_trec_run(path)
    except InputError as exc:
        assert "\n" not in str(exc) and str(path) in str(exc)
    else:
        assert all(entries for entries in run.values())


@FUZZ
@given(st.binary(max_size=300))
def test_fuzz_qrels_reader(tmp_path, content):
    path = tmp_path / "fuzz.qrels"
    path.write_bytes(content)
    try:
        qrels = read_qrels(path)
    except InputError as exc:
        assert "\n" not in str(exc)
    else:
        assert all(isinstance(g, int) for docs in qrels.values() for g in docs.values())


JSON_VALUES = st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=10),
                           lambda inner: st.lists(inner, max_size=3)
                           | st.dictionaries(st.sampled_from(["_id", "text", "title", "x"]), inner, max_size=4),
                           max_leaves=8)


@FUZZ
@given(st.lists(st.one_of(JSON_VALUES.map(json.dumps), st.text(max_size=30)), max_size=5))
def test_fuzz_beir_reader(tmp_path, corpus_lines):
    (tmp_path / "corpus.jsonl").write_text("\n".join(corpus_lines) + "\n")
    (tmp_path / "queries.jsonl").write_text(GOOD_QUERIES.decode())
    try:
        folder = load_beir(tmp_path)
    except InputError as exc:
        assert "\n" not in str(exc)
    else:
        assert folder.corpus and all(isinstance(t, str) for _, t in folder.corpus.values())
