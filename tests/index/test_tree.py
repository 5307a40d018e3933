"""Tree structure over real MiniLM embeddings of a Cranfield slice: both strategies."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from rerankgraph.errors import InputError
from rerankgraph.index.tree import Tree, TreeSettings, cluster_tree

SETTINGS = {"branching": 4, "max_leaf": 8}


@pytest.mark.parametrize("strategy", ["bottom-up", "top-down"])
def test_every_document_in_one_leaf_within_bounds(cranfield_slice_index, strategy):
    index = cranfield_slice_index
    tree = cluster_tree(index.embeddings, index.doc_ids, TreeSettings(strategy=strategy,
                                                                      **SETTINGS))
    tree.check()
    rows = sorted(r for node in tree.nodes for r in node.docs)
    assert rows == list(range(len(index.doc_ids)))  # each document exactly once
    for node in tree.nodes:
        if node.is_leaf:
            assert 1 <= len(node.docs) <= 8
        else:
            assert 1 <= len(node.children) <= 4 and not node.docs
            assert all(tree.nodes[c].parent == node.id for c in node.children)
            assert all(tree.nodes[c].depth == node.depth + 1 for c in node.children)
    depths = [node.depth for node in tree.nodes]
    assert depths == sorted(depths) and tree.root.parent == -1  # breadth-first ids
    # 300 documents in leaves of 8 under nodes of 4: at least log_4(300 / 8) levels.
    assert tree.depth >= math.ceil(math.log(300 / 8, 4))
    assert sorted(tree.docs_under(0)) == list(range(300))


def test_top_down_splits_into_up_to_branching_children(cranfield_slice_index):
    """A node over more than max_leaf documents is cut into `branching` clusters, not
    into just enough to fill leaves: 300 documents under the root make 4 children."""
    index = cranfield_slice_index
    tree = cluster_tree(index.embeddings, index.doc_ids,
                        TreeSettings(strategy="top-down", branching=4, max_leaf=100))
    assert len(tree.root.children) == 4
    internal = [n for n in tree.nodes if not n.is_leaf]
    assert all(len(n.children) == min(4, len(tree.docs_under(n.id))) for n in internal)


def test_identical_vectors_still_make_bounded_leaves():
    vectors = np.ones((50, 8), dtype=np.float32) / np.sqrt(8)
    for strategy in ("bottom-up", "top-down"):
        tree = cluster_tree(vectors, [f"d{i}" for i in range(50)],
                            TreeSettings(strategy=strategy, **SETTINGS))
        tree.check()
        assert all(len(n.docs) <= 8 for n in tree.nodes if n.is_leaf)
        assert all(len(n.children) <= 4 for n in tree.nodes)


def test_a_corpus_that_fits_one_leaf_is_a_single_node():
    tree = cluster_tree(np.eye(5, dtype=np.float32), list("abcde"), TreeSettings(**SETTINGS))
    assert len(tree.nodes) == 1 and tree.root.docs == [0, 1, 2, 3, 4] and tree.depth == 0


@pytest.mark.parametrize(("settings", "message"), [
    ({"branching": 1}, "--branching 1: a tree node needs at least 2 children"),
    ({"max_leaf": 0}, "--max-leaf 0"),
    ({"strategy": "sideways"}, "--strategy 'sideways'"),
    ({"summary_item_tokens": 4}, "--summary-item-tokens 4"),
    ({"summary_words": 500}, "--summary-words 500: use 5 to 300"),
])
def test_bad_settings(settings, message):
    with pytest.raises(InputError, match=message):
        TreeSettings(**settings)


def test_save_and_load_round_trip_and_corrupt_file(cranfield_slice_index, tmp_path):
    index = cranfield_slice_index
    tree = cluster_tree(index.embeddings, index.doc_ids, TreeSettings(**SETTINGS))
    tree.nodes[3].summary = "wing flutter"
    tree.meta = {"strategy": "bottom-up"}
    file = tmp_path / "tree.json"
    tree.save(file)
    again = Tree.load(file)
    assert again.nodes == tree.nodes and again.doc_ids == tree.doc_ids
    assert again.meta == tree.meta
    data = json.loads(file.read_text())
    data["nodes"][-1]["docs"] = []  # a document lost
    file.write_text(json.dumps(data))
    with pytest.raises(InputError, match=rf"{file}: corrupt tree"):
        Tree.load(file)
    file.write_text("{not json")
    with pytest.raises(InputError, match="corrupt tree"):
        Tree.load(file)
