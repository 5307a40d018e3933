"""LATTICE's traversal with the simulated judge at noise 0 on a real tree (MiniLM
embeddings of a Cranfield slice): where the walk goes, and its exact call counts."""

from __future__ import annotations

import math
import shutil

import pytest

from rerankgraph.data import load_beir, read_qrels
from rerankgraph.errors import InputError
from rerankgraph.index.corpus import CorpusIndex
from rerankgraph.index.tree import TreeSettings, load_tree
from rerankgraph.jobs.tree import build_tree
from rerankgraph.sdk import Reranker
from rerankgraph.simulation import SimulatedJudge
from tests.conftest import CRANFIELD

BRANCHING = 4


@pytest.fixture(scope="module")
def walked(cranfield_slice, cranfield_slice_index, tmp_path_factory):
    folder = tmp_path_factory.mktemp("lattice") / "index"
    shutil.copytree(cranfield_slice_index.path, folder)
    dataset = load_beir(cranfield_slice)
    qrels = read_qrels(CRANFIELD / "qrels.tsv")
    build_tree(CorpusIndex(folder), TreeSettings(branching=BRANCHING, max_leaf=8),
               SimulatedJudge({}, {}, dataset.corpus))
    index = CorpusIndex(folder)
    tree = load_tree(index)
    in_slice = set(index.doc_ids)
    queries = {q: dataset.queries[q] for q, docs in qrels.items()
               if q in dataset.queries and {d for d, g in docs.items() if g > 0} & in_slice}
    return index, tree, dataset, qrels, dict(list(queries.items())[:12])


def _judge(dataset, qrels, tree) -> SimulatedJudge:
    judge = SimulatedJudge(qrels, dataset.queries, dataset.corpus)
    judge.learn_tree(tree)
    return judge


def test_beam_one_descends_to_a_relevant_leaf_within_log_depth(walked):
    """At noise 0 the walk expands every node with something relevant under it before
    any node without. When the relevant documents sit under one child of the
    root, it goes straight down and reaches their leaf within ceil(log_B N) + 2
    iterations. (With relevant documents under several children it goes breadth-first
    across them, since the root's path relevance is 1, as in LATTICE's code.)"""
    index, tree, dataset, qrels, queries = walked
    budget = math.ceil(math.log(len(index.doc_ids), BRANCHING)) + 2
    leaf_of = {tree.doc_ids[r]: n.id for n in tree.nodes for r in n.docs}
    reranker = Reranker("lattice", engine=_judge(dataset, qrels, tree), index=index,
                        params={"beam": 1, "iterations": budget})
    single_branch = 0
    for qid, text in queries.items():
        relevant = {d for d, g in qrels[qid].items() if g > 0 and d in leaf_of}
        result = reranker.search(text, k=20, query_id=qid)
        trace = result.provenance.trace
        assert len(trace) == result.provenance.llm_calls <= budget
        assert all(step["llm_calls"] == 1 and len(step["expanded"]) == 1 for step in trace)
        expanded = [step["expanded"][0] for step in trace]
        under = {n: {tree.doc_ids[r] for r in tree.docs_under(n)} for n in expanded}
        useful = [bool(under[n] & relevant) for n in expanded]
        assert useful == sorted(useful, reverse=True), (qid, expanded)  # relevant first
        branches = {n for n in tree.root.children if under_node(tree, n) & relevant}
        if len(branches) == 1:
            single_branch += 1
            assert {leaf_of[d] for d in relevant} & set(expanded), (qid, expanded)
            for parent, child in zip(expanded, expanded[1:], strict=False):
                if tree.nodes[parent].is_leaf:
                    break
                assert tree.nodes[child].parent == parent  # straight down
            assert result.doc_ids[0] in relevant
    assert single_branch >= 1


def under_node(tree, node_id: int) -> set[str]:
    return {tree.doc_ids[r] for r in tree.docs_under(node_id)}


def test_beam_two_expands_two_nodes_and_makes_two_calls_per_iteration(walked):
    index, tree, dataset, qrels, queries = walked
    qid, text = next(iter(queries.items()))
    result = Reranker("lattice", engine=_judge(dataset, qrels, tree), index=index,
                      params={"beam": 2, "iterations": 8}).search(text, k=50, query_id=qid)
    trace = result.provenance.trace
    assert [len(step["expanded"]) for step in trace] == [1] + [2] * 7  # the root first
    assert [step["llm_calls"] for step in trace] == [1] + [2] * 7
    assert result.provenance.llm_calls == 15 == len(result.provenance.judgments)
    expanded = [n for step in trace for n in step["expanded"]]
    assert len(set(expanded)) == 15 and any(tree.nodes[n].is_leaf for n in expanded)
    reached = {tree.doc_ids[r] for n in expanded for r in tree.nodes[n].docs}
    assert set(result.doc_ids) <= reached and result.doc_ids
    scores = [d.score for d in result.ranking]
    assert scores == sorted(scores, reverse=True)


def test_rerank_mode_builds_a_tree_over_the_candidates(walked):
    index, tree, dataset, qrels, queries = walked
    qid, text = next(iter(queries.items()))
    relevant = {d for d, g in qrels[qid].items() if g > 0}
    ids = sorted(relevant & set(index.doc_ids))[:1] + [d for d in index.doc_ids[:30]
                                                       if d not in relevant][:29]
    docs = [{"doc_id": d, "text": dataset.corpus[d][1], "title": dataset.corpus[d][0]}
            for d in ids]
    judge = SimulatedJudge(qrels, dataset.queries, dataset.corpus)
    result = Reranker("lattice", engine=judge, params={"max_leaf": 8, "branching": 2,
                                                      "iterations": 10}).rerank(text, docs,
                                                                               query_id=qid)
    assert set(result.doc_ids) <= set(ids) and result.doc_ids[0] == ids[0]
    built, *walk = result.provenance.trace
    assert built["phase"] == "candidate tree" and built["llm_calls"] == built["nodes"] >= 4
    assert result.provenance.llm_calls == built["llm_calls"] + sum(s["llm_calls"] for s in walk)
    purposes = [j.agent for j in result.provenance.judgments]
    assert purposes.count("tree_summary") == built["nodes"]


def test_search_without_an_index_says_what_to_give(walked):
    _, tree, dataset, qrels, _ = walked
    with pytest.raises(InputError, match="--index"):
        Reranker("lattice", engine=_judge(dataset, qrels, tree)).search("wing flutter")


def test_final_rerank_runs_a_registered_method_on_the_top(walked):
    index, tree, dataset, qrels, queries = walked
    qid, text = next(iter(queries.items()))
    result = Reranker("lattice", engine=_judge(dataset, qrels, tree), index=index,
                      params={"beam": 2, "iterations": 8, "rerank_method": "pointwise",
                              "rerank_depth": 5}).search(text, k=50, query_id=qid)
    *walk, reranked = result.provenance.trace
    head = min(5, len(result.ranking))
    assert reranked == {"phase": f"rerank {head} with pointwise", "llm_calls": head}
    agents = [j.agent for j in result.provenance.judgments]
    assert agents.count("pointwise") == head and agents.count("lattice") == 15
    assert {d for j in result.provenance.judgments if j.agent == "pointwise"
            for d in j.doc_ids} == set(result.doc_ids[:head])
    scores = [d.score for d in result.ranking]
    assert scores == sorted(scores, reverse=True)


def test_final_rerank_refuses_a_search_method(walked):
    index, tree, dataset, qrels, queries = walked
    with pytest.raises(InputError, match="rerank_method 'retrieve' is a search method"):
        Reranker("lattice", engine=_judge(dataset, qrels, tree), index=index,
                 params={"iterations": 8, "rerank_method": "retrieve"}).search("wing flutter")
