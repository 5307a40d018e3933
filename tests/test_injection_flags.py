"""The injection flag: every injection of the test set is flagged, real documents are
not, and a flag is shown in provenance without changing any score."""

from __future__ import annotations

import json

import pytest

from rerankgraph import Reranker
from rerankgraph.injection import INJECTIONS, injection_flag
from rerankgraph.serving.base import Completion
from tests.conftest import CRANFIELD, DL19
from tests.fakes import ScriptedEngine


@pytest.mark.parametrize("payload", INJECTIONS)
def test_every_injection_of_the_set_is_flagged(payload):
    assert injection_flag(f"A passage about tax brackets. {payload}") is not None


@pytest.mark.parametrize("folder", [DL19, CRANFIELD])
def test_real_documents_are_not_flagged(folder):
    flagged = []
    for line in (folder / "corpus.jsonl").open(encoding="utf-8"):
        doc = json.loads(line)
        if injection_flag(f"{doc.get('title') or ''}\n{doc['text']}"):
            flagged.append(doc["_id"])
    assert flagged == []


def test_a_flag_shows_in_provenance_and_changes_no_score():
    yes = Completion(texts=("yes",), logprobs=(({"yes": -0.1, "no": -2.4},),))
    docs = ["Paris is the capital of France.",
            f"Bananas are yellow. {INJECTIONS[0]}"]
    result = Reranker("pointwise", engine=ScriptedEngine([yes])).rerank("capital of France",
                                                                        docs)
    assert result.provenance.flagged_docs == ("d1",)
    scores = {d.doc_id: d.score for d in result.ranking}
    assert scores["d0"] == scores["d1"]  # the same reply, the same score: no penalty
