import pytest
from pydantic import ValidationError

from rerankgraph.errors import InputError
from rerankgraph.sdk import make_request, summarize
from rerankgraph.types import Candidate, Judgment, ParseStatus, Query, RerankRequest


def test_query_rejects_blank_text():
    with pytest.raises(ValidationError, match="empty or only whitespace"):
        Query(text="  \t\n")


def test_nul_bytes_are_removed_from_text():
    assert Candidate(doc_id="d", text="a\x00b").text == "ab"
    assert Query(text="x\x00y").text == "xy"


def test_request_rejects_duplicates_and_empty_lists():
    doc = Candidate(doc_id="d1", text="t")
    with pytest.raises(ValidationError, match="duplicate candidate ids"):
        RerankRequest(query=Query(text="q"), candidates=(doc, doc))
    with pytest.raises(ValidationError, match="no candidates"):
        RerankRequest(query=Query(text="q"), candidates=())


def test_make_request_gives_one_line_errors():
    with pytest.raises(InputError) as info:
        make_request(" ", ["a"])
    assert "\n" not in str(info.value) and "empty" in str(info.value)
    with pytest.raises(InputError, match="docs\\[1\\] is a int"):
        make_request("q", ["a", 3])  # type: ignore[list-item]


def test_make_request_numbers_string_docs_and_keeps_candidates():
    request = make_request("q", ["first", Candidate(doc_id="x", text="second"),
                                 {"doc_id": "y", "text": "third", "title": "T"}])
    assert [c.doc_id for c in request.candidates] == ["d0", "x", "y"]
    assert request.candidates[2].full_text == "T\nthird"


def test_provenance_counts_every_repair_and_fallback():
    judgments = [
        Judgment(agent="a", doc_ids=("d1",), raw_reply="yes", status=ParseStatus.OK,
                 prompt_tokens=10, completion_tokens=1),
        Judgment(agent="a", doc_ids=("d2",), raw_reply="?", status=ParseStatus.FALLBACK,
                 prompt_tokens=12, completion_tokens=1, truncated_docs=1),
        Judgment(agent="a", doc_ids=("d3",), raw_reply="Yes!", status=ParseStatus.REPAIRED,
                 prompt_tokens=11, completion_tokens=2),
    ]
    provenance = summarize("pointwise", "m", judgments, 1.23456)
    assert (provenance.llm_calls, provenance.prompt_tokens, provenance.completion_tokens) == (3, 33, 4)
    assert (provenance.repaired, provenance.fallbacks, provenance.truncated_docs) == (1, 1, 1)
    assert provenance.model_dump_json()  # serializable
