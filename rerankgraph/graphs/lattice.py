"""`lattice`: LLM-guided beam search down a semantic tree (Gupta et al., "LLM-guided
Hierarchical Retrieval", 2025).

    prepare -> expand_beam -> score_slates -> calibrate -> update_paths -> check_stop
                  ^                                                          |
                  +----------------------- next iteration -------------------+
                                                                     rank -> (rerank)

Search mode walks the tree of the corpus index (`rerankgraph tree build`). Rerank mode,
for a query that comes with candidates, first builds a small tree over them (MiniLM
embeddings, clustering and LLM summaries) and walks that. Changes from the paper: the
judge scores without reasoning first, and documents never reached are not ranked.
"""

from __future__ import annotations

import asyncio
import math
import random
from collections.abc import Callable
from typing import Any

from langgraph.graph import END, START, StateGraph
from langgraph.runtime import Runtime

from rerankgraph.agents.lattice import LatticeAgent, LatticeParams
from rerankgraph.agents.summary import SummaryAgent
from rerankgraph.context import RerankContext
from rerankgraph.errors import InputError
from rerankgraph.graphs.calibration import Observation, calibrate
from rerankgraph.graphs.subgraph import TracedState, rerank_head
from rerankgraph.index.tree import Tree, TreeSettings, cluster_tree, load_tree
from rerankgraph.serving.base import Engine
from rerankgraph.spec import MethodSpec
from rerankgraph.types import Candidate, Judgment, ScoredDoc

LatticeRuntime = Runtime[RerankContext[LatticeParams]]
# depth, nodes done, nodes of the level, the chunk's judgments
SummaryProgress = Callable[[int, int, int, list[Judgment]], None]
ROOT = 0


def node_key(node_id: int) -> str:
    return f"n{node_id}"


def doc_key(row: int) -> str:
    return f"d{row}"


class LatticeState(TracedState, total=False):
    tree: Tree | None  # rerank mode only; search mode reads the index's tree
    beam: list[int]  # nodes to expand this iteration
    expanded: list[int]
    slates: list[list[str]]  # item keys of this iteration's slates, one per beam node
    observations: list[Observation]
    latent: dict[str, float]  # calibrated score per item key
    path: dict[int, float]  # path relevance per node
    iteration: int


# -- the tree a query walks ------------------------------------------------------------
def tree_of(state: LatticeState, runtime: LatticeRuntime) -> Tree:
    if state.get("tree") is not None:
        return state["tree"]  # type: ignore[return-value]
    index = runtime.context.index
    if index is None:
        raise InputError("method 'lattice' searches a corpus index's tree: give --index "
                         "INDEX (with a tree from `rerankgraph tree build`), or --run to "
                         "rerank a run's candidates")
    return load_tree(index, runtime.context.params.tree)


def item_text(tree: Tree, key: str, state: LatticeState, runtime: LatticeRuntime) -> str:
    number = int(key[1:])
    if key[0] == "n":
        return tree.nodes[number].summary
    if state.get("tree") is not None:
        return state["candidates"][number].full_text
    title, text = runtime.context.index.document(tree.doc_ids[number])  # type: ignore[union-attr]
    return f"{title}\n{text}" if title else text


async def write_summaries(engine: Engine, tree: Tree, doc_texts: list[str],
                          on_chunk: SummaryProgress | None = None, chunk: int = 4
                          ) -> list[Judgment]:
    """Fills every node's summary, deepest level first, from its children's texts. A
    level's nodes go to the engine together, in chunks of `chunk` all in flight, so a
    reply cache keeps every finished chunk of a killed build. `on_chunk(depth, done,
    total, judgments)` is called after each chunk."""
    agent = SummaryAgent()
    judgments: list[Judgment] = []
    for depth, level in reversed(list(enumerate(tree.levels()))):
        groups = [[doc_texts[r] for r in tree.nodes[n].docs] if tree.nodes[n].is_leaf
                  else [tree.nodes[c].summary for c in tree.nodes[n].children] for n in level]
        leaves = [tree.nodes[n].is_leaf for n in level]
        done = [0]

        async def one(nodes: list[int], items: list[list[str]], leaf: list[bool],
                      depth: int = depth, done: list[int] = done, total: int = len(level)
                      ) -> list[Judgment]:
            found = await agent.summarize(engine, items, leaf)
            for node_id, item in zip(nodes, found, strict=True):
                tree.nodes[node_id].summary = str(item.parsed)
            done[0] += len(found)
            if on_chunk is not None:
                on_chunk(depth, done[0], total, found)
            return found

        parts = [one(level[i:i + chunk], groups[i:i + chunk], leaves[i:i + chunk])
                 for i in range(0, len(level), chunk)]
        for found in await asyncio.gather(*parts):
            judgments.extend(found)
    return judgments


async def candidate_tree(engine: Engine, candidates: list[Candidate], params: LatticeParams,
                         seed: int, encoder_model: str | None) -> tuple[Tree, list[Judgment]]:
    """Rerank mode: a tree over one query's candidates, with LLM summaries."""
    from rerankgraph.retrievers.dense import shared_encoder

    texts = [c.full_text for c in candidates]
    vectors = await asyncio.to_thread(shared_encoder(encoder_model).encode, texts)
    settings = TreeSettings(strategy="bottom-up", branching=params.branching,
                            max_leaf=params.max_leaf, seed=seed)
    tree = await asyncio.to_thread(cluster_tree, vectors, [c.doc_id for c in candidates],
                                   settings)
    return tree, await write_summaries(engine, tree, texts)


# -- nodes ---------------------------------------------------------------------------------
async def prepare(state: LatticeState, runtime: LatticeRuntime) -> dict:
    context = runtime.context
    update: dict[str, Any] = {"beam": [ROOT], "expanded": [], "observations": [],
                              "latent": {}, "path": {ROOT: 1.0}, "iteration": 0}
    if state.get("candidates"):
        model = (context.index.manifest.get("dense", {}).get("model")
                 if context.index is not None else None)
        tree, judgments = await candidate_tree(context.engine, state["candidates"],
                                               context.params, context.seed, model)
        update.update(tree=tree, judgments=judgments,
                      trace=[{"phase": "candidate tree", "nodes": len(tree.nodes),
                              "llm_calls": len(judgments)}])
    else:
        tree_of(state, runtime)  # fails early, with the reason
        update["tree"] = None
    return update


def expand_beam(state: LatticeState, runtime: LatticeRuntime) -> dict:
    """A slate per beam node: its children plus calibration items, in a seeded shuffle."""
    tree, params = tree_of(state, runtime), runtime.context.params
    latent = state["latent"]
    slates = []
    for node_id in state["beam"]:
        node = tree.nodes[node_id]
        rng = random.Random(f"{runtime.context.seed}:{state['query'].id}:{node_id}")
        if node.is_leaf:
            own = [doc_key(r) for r in node.docs]
            extra = calibration_docs(latent, set(own), params.leaf_calibration, rng)
        else:
            own = [node_key(c) for c in node.children]
            # The scored node of the children's depth with the best path relevance.
            peers = [n for n in state["path"] if n != ROOT and node_key(n) not in own
                     and tree.nodes[n].depth == node.depth + 1]
            extra = ([node_key(max(peers, key=lambda n: (state["path"][n], -n)))]
                     if peers else [])
        slate = own + extra
        rng.shuffle(slate)
        slates.append(slate)
    return {"slates": slates}


def calibration_docs(latent: dict[str, float], exclude: set[str], count: int,
                     rng: random.Random) -> list[str]:
    """Up to `count` scored documents, drawn without replacement with weight
    16^score, so the best documents found so far anchor the slate most often (as
    LATTICE's code does; it also cuts off a low mode with a mixture model, which we
    leave out)."""
    scored = sorted(k for k in latent if k[0] == "d" and k not in exclude)
    if len(scored) <= count:
        return scored
    # Gumbel top-k: a weighted draw without replacement in one pass.
    keys = {k: math.log(rng.random() or 1e-300) / 16 ** min(max(latent[k], -1.0), 2.0)
            for k in scored}
    return sorted(scored, key=lambda k: -keys[k])[:count]


async def score_slates(state: LatticeState, runtime: LatticeRuntime) -> dict:
    tree, context = tree_of(state, runtime), runtime.context
    slates = [[Candidate(doc_id=key, text=item_text(tree, key, state, runtime) or "(empty)")
               for key in slate] for slate in state["slates"]]
    leaves = [tree.nodes[n].is_leaf for n in state["beam"]]
    judgments = await LatticeAgent().score_slates(context.engine, state["query"], slates,
                                                  leaves, context.params.max_doc_tokens)
    first = len({o.slate for o in state["observations"]})
    observations = [Observation(first + i, key, score, weight=observation_weight(score))
                    for i, item in enumerate(judgments) for key, score in item.parsed.items()]
    return {"judgments": judgments, "observations": state["observations"] + observations,
            "expanded": state["expanded"] + state["beam"],
            "trace": [{"iteration": state["iteration"] + 1, "expanded": state["beam"],
                       "llm_calls": len(judgments),
                       "tokens": sum(j.prompt_tokens + j.completion_tokens for j in judgments),
                       "unreadable": sum(not j.parsed for j in judgments)}]}


def observation_weight(score: float) -> float:
    """High scores count a little more in the fit (LATTICE's weighting, 0.38 to 0.62)."""
    return max(1 / (1 + math.exp(-(score - 0.5))), 0.1)


def calibrate_scores(state: LatticeState, runtime: LatticeRuntime) -> dict:
    return {"latent": calibrate(state["observations"]).latent}


def update_paths(state: LatticeState, runtime: LatticeRuntime) -> dict:
    """p(v) = alpha * latent(v) + (1 - alpha) * p(parent), top-down over every node seen;
    the next beam is the best unexpanded nodes by p (ties: the deeper one)."""
    tree, params = tree_of(state, runtime), runtime.context.params
    latent = state["latent"]
    path = {ROOT: 1.0}
    for node in tree.nodes[1:]:  # breadth-first ids: a parent comes before its children
        if node.parent in path and node_key(node.id) in latent:
            path[node.id] = (params.alpha * latent[node_key(node.id)]
                             + (1 - params.alpha) * path[node.parent])
    expanded = set(state["expanded"])
    frontier = [n for n in path if n not in expanded]
    # Ties go to the deeper node, so equally promising branches are finished first.
    beam = sorted(frontier, key=lambda n: (-round(path[n], 9), -tree.nodes[n].depth, n)
                  )[:params.beam]
    return {"path": path, "beam": beam, "iteration": state["iteration"] + 1}


def check_stop(state: LatticeState, runtime: LatticeRuntime) -> str:
    if state["beam"] and state["iteration"] < runtime.context.params.iterations:
        return "expand_beam"
    return "rank"


def rank(state: LatticeState, runtime: LatticeRuntime) -> dict:
    """Scored documents by calibrated score; ties go to the higher path relevance of the
    leaf that holds them, then the id."""
    tree = tree_of(state, runtime)
    leaf_of = {r: n.id for n in tree.nodes for r in n.docs}
    path, latent = state["path"], state["latent"]
    rows = [int(k[1:]) for k in latent if k[0] == "d"]
    ordered = sorted(rows, key=lambda r: (-latent[doc_key(r)], -path.get(leaf_of[r], 0.0),
                                          tree.doc_ids[r]))
    return {"ranking": [ScoredDoc(doc_id=tree.doc_ids[r], score=latent[doc_key(r)])
                        for r in ordered]}


async def final_rerank(state: LatticeState, runtime: LatticeRuntime) -> dict:
    """Reranks the top `rerank_depth` with another registered method, as a subgraph."""
    params = runtime.context.params
    if params.rerank_method is None:
        return {}
    tree, ranking = tree_of(state, runtime), state["ranking"]
    head = ranking[:params.rerank_depth]
    rows = {d: i for i, d in enumerate(tree.doc_ids)}
    candidates = [Candidate(doc_id=d.doc_id, rank=i + 1, score=d.score,
                            text=item_text(tree, doc_key(rows[d.doc_id]), state, runtime))
                  for i, d in enumerate(head)]
    return await rerank_head(runtime.context, params.rerank_method, "lattice",
                             state["query"], candidates, ranking[len(head):])


def build_graph() -> Any:
    """A fresh compiled lattice graph."""
    graph = StateGraph(LatticeState, context_schema=RerankContext)
    for name, node in (("prepare", prepare), ("expand_beam", expand_beam),
                       ("score_slates", score_slates), ("calibrate", calibrate_scores),
                       ("update_paths", update_paths), ("rank", rank),
                       ("final_rerank", final_rerank)):
        graph.add_node(name, node)
    graph.add_edge(START, "prepare")
    graph.add_edge("prepare", "expand_beam")
    graph.add_edge("expand_beam", "score_slates")
    graph.add_edge("score_slates", "calibrate")
    graph.add_edge("calibrate", "update_paths")
    graph.add_conditional_edges("update_paths", check_stop, ["expand_beam", "rank"])
    graph.add_edge("rank", "final_rerank")
    graph.add_edge("final_rerank", END)
    return graph.compile(name="lattice")


METHOD = MethodSpec(
    name="lattice", build_graph=build_graph, params=LatticeParams, kind="search",
    reranks=True,
    description="LATTICE: LLM beam search down the index's semantic tree with calibrated "
                "path relevance; with candidates, over a tree built from them",
    aliases=("tree_search",))
