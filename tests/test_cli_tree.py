"""`rerankgraph tree build` and `--method lattice` from the command line, in subprocesses:
bad input gets one error line before any model loads; a simulated batch walks a tree."""

from __future__ import annotations

import json
import shutil

import pytest

from rerankgraph.data import read_qrels, read_trec_run
from rerankgraph.index.corpus import CorpusIndex, build_index
from rerankgraph.index.tree import TreeSettings
from rerankgraph.jobs.tree import build_tree
from rerankgraph.simulation import SimulatedJudge
from tests.conftest import CRANFIELD
from tests.test_cli import run_cli
from tests.test_cli_index import _one_error_line


def test_tree_build_needs_embeddings(cranfield_slice, tmp_path):
    index, _ = build_index(cranfield_slice, tmp_path / "bm25-only", dense=False)
    line = _one_error_line(run_cli("tree", "build", "--index", index.path))
    assert "has no embeddings" in line and "--no-dense" in line


@pytest.mark.parametrize(("args", "message"), [
    (["--branching", "1"], "--branching 1: a tree node needs at least 2 children"),
    (["--max-leaf", "0"], "--max-leaf 0"),
    (["--strategy", "sideways"], "--strategy 'sideways': use one of bottom-up, top-down"),
])
def test_tree_build_bad_settings(cranfield_slice_index, args, message):
    assert message in _one_error_line(run_cli("tree", "build", "--index",
                                              cranfield_slice_index.path, *args))


def test_lattice_without_index_or_run(cranfield_slice, tmp_path):
    line = _one_error_line(run_cli("rerank", "--method", "lattice", "--data", cranfield_slice,
                                   "--out", tmp_path / "run.trec"))
    assert "--index" in line and "--run" in line


def test_lattice_on_an_index_without_a_tree(cranfield_slice, cranfield_slice_index, tmp_path):
    done = run_cli("batch", "--method", "lattice", "--index", cranfield_slice_index.path,
                   "--data", cranfield_slice, "--out", tmp_path / "run.trec", "--queries", "2",
                   "--simulate", CRANFIELD / "qrels.tsv")
    assert done.returncode == 2, done.stderr
    assert "has no tree" in done.stderr and "rerankgraph tree build" in done.stderr


def test_simulated_batch_walks_the_index_tree(cranfield_slice, cranfield_slice_index,
                                              tmp_path):
    folder = tmp_path / "index"
    shutil.copytree(cranfield_slice_index.path, folder)
    index = CorpusIndex(folder)
    corpus = {d: (t, x) for d, t, x in zip(index.corpus.doc_ids, index.corpus.titles,
                                            index.corpus.texts, strict=True)}
    build_tree(index, TreeSettings(branching=4, max_leaf=8), SimulatedJudge({}, {}, corpus))
    out = tmp_path / "run.trec"
    done = run_cli("batch", "--method", "lattice", "--index", folder, "--data", cranfield_slice,
                   "--out", out, "--queries", "4", "--k", "15", "--param", "iterations=10",
                   "--simulate", CRANFIELD / "qrels.tsv")
    assert done.returncode == 0, done.stderr
    run = read_trec_run(out)
    assert len(run) == 4 and all(0 < len(entries) <= 15 for entries in run.values())
    assert all(line.split()[-1].endswith("SIMULATED") for line in out.read_text().splitlines())
    provenance = [json.loads(line) for line in
                  (tmp_path / "run.trec.provenance.jsonl").read_text().splitlines()]
    # Beam 2 over 10 iterations: 1 slate, then 2 per iteration while the frontier lasts.
    assert all(p["provenance"]["simulated"] and p["provenance"]["llm_calls"] <= 19
               and len(p["provenance"]["trace"]) == 10 for p in provenance)
    # Answers come from the qrels: a query with a relevant document in the slice finds it.
    qrels = read_qrels(CRANFIELD / "qrels.tsv")
    slice_ids = set(index.doc_ids)
    for qid, entries in run.items():
        relevant = {d for d, g in qrels.get(qid, {}).items() if g > 0} & slice_ids
        if relevant:
            assert entries[0].doc_id in relevant
