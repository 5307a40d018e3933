"""LATTICE's rules, exact, on a hand-made tree with a scripted judge: what each slate
holds (the anchor and the calibration documents), unique slate ids, an unreadable
slate retried and then given up, path relevance with and without the cutoff, and the
final ranking rule.

    0 ── 1 ── 3 (docs A B)
    │    └─── 4 (docs C D)
    └─── 2 ── 5 (docs E F)
"""

from __future__ import annotations

import json
import re
from types import SimpleNamespace

import numpy as np
import pytest

from rerankgraph.agents.lattice import LatticeParams
from rerankgraph.graphs import lattice
from rerankgraph.index.tree import Tree, TreeNode
from rerankgraph.types import Candidate, ParseStatus, Query
from tests.fakes import ScriptedEngine

DOCS = "ABCDEF"


def hand_tree() -> Tree:
    nodes = [TreeNode(0, -1, 0, children=[1, 2]),
             TreeNode(1, 0, 1, children=[3, 4], summary="group one"),
             TreeNode(2, 0, 1, children=[5], summary="group two"),
             TreeNode(3, 1, 2, docs=[0, 1], summary="leaf three"),
             TreeNode(4, 1, 2, docs=[2, 3], summary="leaf four"),
             TreeNode(5, 2, 2, docs=[4, 5], summary="leaf five")]
    return Tree(nodes=nodes, doc_ids=list(DOCS))


TEXTS = {"group one": "n1", "group two": "n2", "leaf three": "n3", "leaf four": "n4",
         "leaf five": "n5", **{f"document {d}": f"d{i}" for i, d in enumerate(DOCS)}}


def judge(scores: dict[str, int], unreadable: tuple[str, ...] = ()):
    """Scores each item of a slate by its key; a slate holding a key of `unreadable`
    gets a reply that cannot be read."""
    def reply(request) -> str:
        shown = re.findall(r"\[\d+\] (.*)\n</passage>", request.prompt)
        keys = [TEXTS[text] for text in shown]
        if any(k in unreadable for k in keys):
            return "I cannot tell."
        return json.dumps({str(i + 1): scores.get(k, 0) for i, k in enumerate(keys)})
    return reply


async def walk(params: LatticeParams, engine) -> dict:
    """The graph's loop, node by node, keeping every iteration's slates."""
    tree = hand_tree()
    state = {"query": Query(id="q", text="what"), "tree": tree,
             "candidates": [Candidate(doc_id=d, text=f"document {d}") for d in DOCS],
             "beam": [0], "expanded": [], "observations": [], "latent": {},
             "path": {0: 1.0}, "iteration": 0, "slates_scored": 0, "unreadable": {}}
    runtime = SimpleNamespace(context=SimpleNamespace(params=params, seed=0, engine=engine,
                                                      index=None))
    judgments, trace, slates = [], [], []
    while True:
        state |= lattice.expand_beam(state, runtime)
        slates.append([sorted(s) for s in state["slates"]])
        scored = await lattice.score_slates(state, runtime)
        judgments += scored.pop("judgments")
        trace += scored.pop("trace")
        state |= scored
        state |= lattice.calibrate_scores(state, runtime)
        state |= lattice.update_paths(state, runtime)
        if lattice.check_stop(state, runtime) == "rank":
            break
    state |= lattice.rank(state, runtime)
    return {**state, "judgments": judgments, "trace": trace, "slate_keys": slates}


SCORES = {"n1": 80, "n2": 40, "n3": 90, "n4": 30, "n5": 60,
          "d0": 95, "d1": 20, "d2": 70, "d3": 10, "d4": 50, "d5": 5}


async def test_slates_hold_the_children_the_anchor_and_the_scored_documents():
    walked = await walk(LatticeParams(beam=1, iterations=5), ScriptedEngine([judge(SCORES)]))
    assert [t["expanded"] for t in walked["trace"]] == [[0], [1], [3], [2], [5]]
    assert walked["slate_keys"] == [
        [["n1", "n2"]],  # the root: no other node of its depth to anchor it
        [["n1", "n3", "n4"]],  # n1's children and n1 itself, the best node of its depth
        [["d0", "d1"]],  # leaf n3: no document scored yet
        [["n1", "n5"]],  # n2's child and n1
        [["d0", "d1", "d4", "d5"]],  # leaf n5's documents and the two scored so far
    ]
    # p = 0.5 * latent + 0.5 * p(parent); one slate per item: latent = raw score
    assert walked["path"] == pytest.approx({0: 1.0, 1: 0.9, 2: 0.7, 3: 0.9, 4: 0.6,
                                            5: 0.65}, abs=1e-3)


async def test_every_slate_has_its_own_id_even_after_an_unreadable_one():
    """Beam 2: round 2 sends n1's slate (unreadable: id 1) and n2's (id 2, anchored by
    n1, the best node of n2's depth); round 3 sends
    n1's again (given up: id 3) and leaf n5's (id 4). No two slates share a bias."""
    engine = ScriptedEngine([judge(SCORES, unreadable=("n3",))])
    walked = await walk(LatticeParams(beam=2, iterations=3), engine)
    assert [(t["expanded"], t["retried"], t["given_up"]) for t in walked["trace"]] == [
        ([0], [], []), ([2], [1], []), ([1, 5], [], [1])]
    by_slate: dict[int, dict[str, float]] = {}
    for o in walked["observations"]:
        by_slate.setdefault(o.slate, {})[o.item] = round(o.score, 9)
    assert by_slate == {0: {"n1": 0.8, "n2": 0.4}, 2: {"n5": 0.6, "n1": 0.8},
                        3: {"n3": 0.0, "n4": 0.0}, 4: {"d4": 0.5, "d5": 0.05}}
    assert walked["slates_scored"] == 5


async def test_an_unreadable_slate_is_tried_again_then_given_up_with_its_children_at_0():
    engine = ScriptedEngine([judge(SCORES, unreadable=("n2",))])  # the root's slate
    walked = await walk(LatticeParams(beam=1, iterations=2), engine)
    assert [(t["expanded"], t["retried"], t["given_up"]) for t in walked["trace"]] == [
        ([], [0], []), ([0], [], [0])]
    assert [j.status for j in walked["judgments"]] == [ParseStatus.FALLBACK] * 2
    # given up: the root's children were observed at 0 (slate 1; slate 0 was unread)
    assert {(o.slate, o.item, o.score) for o in walked["observations"]} == {
        (1, "n1", 0.0), (1, "n2", 0.0)}
    # below the cutoff their path relevance is their own score, not 0.5 * 0 + 0.5 * 1
    assert walked["path"] == pytest.approx({0: 1.0, 1: 0.0, 2: 0.0}, abs=1e-9)
    assert walked["beam"] == [1]  # the walk would go on below the root
    without = await walk(LatticeParams(beam=1, iterations=2, path_cutoff=None),
                         ScriptedEngine([judge(SCORES, unreadable=("n2",))]))
    assert without["path"] == pytest.approx({0: 1.0, 1: 0.5, 2: 0.5}, abs=1e-9)


def test_path_relevance_blends_with_the_parent_above_the_cutoff_only():
    tree = hand_tree()
    latent = {"n1": 0.8, "n2": 0.05, "n3": 0.6, "n5": 0.9}
    with_cutoff = lattice.path_relevance(tree, latent, alpha=0.5, cutoff=0.09)
    assert with_cutoff == pytest.approx({0: 1.0, 1: 0.9, 2: 0.05, 3: 0.75, 5: 0.475})
    without = lattice.path_relevance(tree, latent, alpha=0.5, cutoff=None)
    assert without == pytest.approx({0: 1.0, 1: 0.9, 2: 0.525, 3: 0.75, 5: 0.7125})


@pytest.mark.parametrize(("ranking", "expected"), [("path", ["A", "C"]),
                                                   ("calibrated", ["C", "A"])])
def test_the_final_ranking_weighs_the_leafs_path_unless_asked_not_to(ranking, expected):
    """A: calibrated 0.7 in leaf 3 (path 0.75): 0.5 * 0.7 + 0.5 * 0.75 = 0.725.
    C: calibrated 0.8 in leaf 4 (path 0.2): 0.5 * 0.8 + 0.5 * 0.2 = 0.5."""
    state = {"tree": hand_tree(), "latent": {"d0": 0.7, "d2": 0.8, "n3": 0.5},
             "path": {0: 1.0, 3: 0.75, 4: 0.2}}
    runtime = SimpleNamespace(context=SimpleNamespace(
        params=LatticeParams(ranking=ranking), index=None))
    ranked = lattice.rank(state, runtime)["ranking"]
    assert [d.doc_id for d in ranked] == expected
    scores = {d.doc_id: d.score for d in ranked}
    assert scores == pytest.approx({"A": 0.725, "C": 0.5} if ranking == "path"
                                   else {"A": 0.7, "C": 0.8})


async def test_with_reasoning_tokens_the_judge_reasons_in_one_line_before_its_scores():
    def reasoned(request) -> str:
        scores = judge(SCORES)(request)
        return f"Reasoning: the first group is about it, [1] or not\n{scores}"

    engine = ScriptedEngine([reasoned])
    walked = await walk(LatticeParams(beam=1, iterations=2, reasoning_tokens=16), engine)
    request = engine.requests[0]
    assert request.regex.startswith("Reasoning: [^\\n{}]{1,64}\\n")
    assert request.max_tokens == 9 * 2 + 8 + 4 * 16 + 16
    assert 'starts with "Reasoning: "' in request.prompt
    assert [j.status for j in walked["judgments"]] == [ParseStatus.OK] * 2
    assert walked["path"][1] == pytest.approx(0.9)  # the scores after the reasoning read
    plain = ScriptedEngine([judge(SCORES)])
    await walk(LatticeParams(beam=1, iterations=1), plain)
    assert plain.requests[0].regex.startswith("\\{") and "Reasoning" not in plain.requests[0].prompt


def test_leaf_slates_share_one_draw_of_calibration_documents_cut_below_the_low_mode():
    """Twelve scored documents: nine near 0.05 and three near 0.9. The mixture's cut
    falls between the modes, so a draw of 3 takes the three high ones; every leaf slate
    of the iteration gets the same draw."""
    latent = {f"d{i}": 0.05 + 0.001 * i for i in range(9)}
    latent |= {"d20": 0.9, "d21": 0.88, "d22": 0.92}
    cut = lattice.mixture_cut(np.array(list(latent.values())))
    assert 0.06 < cut < 0.88
    import random
    drawn = lattice.calibration_docs(latent, 3, random.Random(0))
    assert sorted(drawn) == ["d20", "d21", "d22"]
    tree = Tree(nodes=[TreeNode(0, -1, 0, children=[1, 2]), TreeNode(1, 0, 1, docs=[0]),
                       TreeNode(2, 0, 1, docs=[1])], doc_ids=["x", "y"])
    state = {"tree": tree, "query": Query(id="q", text="what"), "beam": [1, 2],
             "latent": latent, "path": {0: 1.0}, "unreadable": {}, "iteration": 3}
    runtime = SimpleNamespace(context=SimpleNamespace(params=LatticeParams(leaf_calibration=3),
                                                      seed=0, index=None))
    first, second = lattice.expand_beam(state, runtime)["slates"]
    assert sorted(set(first) - {"d0"}) == sorted(set(second) - {"d1"}) == ["d20", "d21", "d22"]


def test_the_presets_are_the_authors_settings_and_given_parameters_win():
    assert LatticeParams(preset="lattice").model_dump(exclude={"preset"}) == \
        LatticeParams().model_dump(exclude={"preset"})  # their defaults are ours
    top_down = LatticeParams(preset="lattice-top-down", beam=4)
    assert (top_down.iterations, top_down.alpha, top_down.beam) == (30, 0.75, 4)
