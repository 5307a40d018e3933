"""LATTICE on the real in-process engine: a small tree over a SciFact slice, described
by the embedded judge, then walked for one SciFact query; and rerank mode on DL19."""

import json

import pytest

from rerankgraph.index.corpus import build_index
from rerankgraph.index.tree import TreeSettings, load_tree
from rerankgraph.jobs.tree import build_tree
from rerankgraph.sdk import Reranker
from tests.conftest import DATA

SCIFACT = DATA / "beir-scifact"
QUERY_ID = "13"  # its relevant document 1606628 is put into the slice
SLICE_DOCS = 47


@pytest.fixture(scope="module")
def scifact_slice_index(tmp_path_factory):
    lines = (SCIFACT / "corpus.jsonl").read_text(encoding="utf-8").splitlines()
    relevant = next(line for line in lines if json.loads(line)["_id"] == "1606628")
    chosen = [relevant] + [line for line in lines[:SLICE_DOCS] if line != relevant]
    folder = tmp_path_factory.mktemp("scifact-slice")
    (folder / "corpus.jsonl").write_text("\n".join(chosen) + "\n", encoding="utf-8")
    index, _ = build_index(folder, folder / "index")
    return index


def test_tree_built_and_walked_by_the_real_judge(local_engine, scifact_slice_index):
    settings = TreeSettings(strategy="bottom-up", branching=4, max_leaf=8)
    report = build_tree(scifact_slice_index, settings, local_engine)
    tree = load_tree(scifact_slice_index, "bottom-up")
    assert report.tree.meta["llm_calls"] == len(tree.nodes) >= 7
    assert tree.meta["summary_model"].endswith("smollm2-135m-instruct")
    assert all(len(node.summary) >= 3 for node in tree.nodes)

    query = json.loads(next(line for line in (SCIFACT / "queries.jsonl").read_text().splitlines()
                            if json.loads(line)["_id"] == QUERY_ID))["text"]
    reranker = Reranker("lattice", engine=local_engine, index=scifact_slice_index,
                        params={"iterations": 4, "beam": 1})
    result = reranker.search(query, k=20, query_id=QUERY_ID)
    trace = result.provenance.trace
    # One slate per iteration with a beam of 1, until the budget or the frontier ends.
    assert 1 <= len(trace) <= 4 and result.provenance.llm_calls == len(trace)
    assert [step["iteration"] for step in trace] == list(range(1, len(trace) + 1))
    expanded = [node for step in trace for node in step["expanded"]]
    assert expanded[0] == 0 and len(set(expanded)) == len(expanded)
    for node in expanded[1:]:  # a node is reached only through its expanded parent
        assert tree.nodes[node].parent in expanded[:expanded.index(node)]
    reached = {tree.doc_ids[r] for n in expanded for r in tree.nodes[n].docs}
    assert result.doc_ids and set(result.doc_ids) <= reached
    scores = [d.score for d in result.ranking]
    assert scores == sorted(scores, reverse=True)
    assert result.provenance.prompt_tokens > 300 * len(trace)
    assert result.provenance.fallbacks <= len(trace)


def test_rerank_mode_on_dl19_with_the_real_judge(local_engine, dl19_request):
    candidates = list(dl19_request.candidates)
    result = Reranker("lattice", engine=local_engine,
                      params={"max_leaf": 4, "branching": 2, "iterations": 6}
                      ).rerank_batch([dl19_request])[0]
    assert result.ok, result.error
    assert set(result.doc_ids) <= {c.doc_id for c in candidates} and result.doc_ids
    trace = result.provenance.trace
    built = trace[0]
    assert built["phase"] == "candidate tree" and built["nodes"] >= 4
    slates = sum(step.get("llm_calls", 0) for step in trace[1:])
    assert result.provenance.llm_calls == built["llm_calls"] + slates
    assert built["llm_calls"] == built["nodes"]  # one summary per node
