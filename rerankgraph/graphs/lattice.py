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

import numpy as np
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
UNREADABLE_TRIES = 2  # a node whose slate cannot be read is tried once more


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
    slates_scored: int  # every slate sent so far, read or not: the next slate's id
    unreadable: dict[int, int]  # node -> slates of it that could not be read


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
                          on_chunk: SummaryProgress | None = None, chunk: int = 4,
                          item_tokens: int = 32, words: int = 30) -> list[Judgment]:
    """Fills every node's summary, deepest level first, from its children's texts. A
    level's nodes go to the engine together, in chunks of `chunk` all in flight, so a
    reply cache keeps every finished chunk of a killed build. `on_chunk(depth, done,
    total, judgments)` is called after each chunk. The writer reads `item_tokens` of
    each child and writes at most `words` words."""
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
            found = await agent.summarize(engine, items, leaf, item_tokens, words)
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
                              "latent": {}, "path": {ROOT: 1.0}, "iteration": 0,
                              "slates_scored": 0, "unreadable": {}}
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
    """A slate per beam node: its children plus calibration items, in a seeded shuffle
    (reshuffled when a slate of the node is tried again). Leaf slates share one draw of
    calibration documents per iteration, as LATTICE's code does."""
    tree, params = tree_of(state, runtime), runtime.context.params
    base = f"{runtime.context.seed}:{state['query'].id}"
    drawn = calibration_docs(state["latent"], params.leaf_calibration,
                             random.Random(f"{base}:iteration {state['iteration']}"))
    slates = []
    for node_id in state["beam"]:
        node = tree.nodes[node_id]
        attempt = state["unreadable"].get(node_id, 0)
        rng = random.Random(f"{base}:{node_id}" + (f":{attempt}" if attempt else ""))
        own = own_items(tree, node_id)
        if node.is_leaf:
            extra = [key for key in drawn if key not in set(own)]
        else:
            extra = [node_key(n) for n in [anchor_node(tree, state["path"], node_id)]
                     if n is not None and node_key(n) not in own]
        slate = own + extra
        rng.shuffle(slate)
        slates.append(slate)
    return {"slates": slates}


def anchor_node(tree: Tree, path: dict[int, float], node_id: int) -> int | None:
    """The scored node at the expanded node's own depth with the best path relevance,
    often the node itself (LATTICE's code): its children are scored beside a node of
    their parent's level, which ties the levels' scores together. None at the root."""
    depth = tree.nodes[node_id].depth
    peers = [n for n in path if n != ROOT and tree.nodes[n].depth == depth]
    return max(peers, key=lambda n: (path[n], -n)) if peers else None


def calibration_docs(latent: dict[str, float], count: int, rng: random.Random) -> list[str]:
    """Up to `count` scored documents, drawn without replacement with weight 16^score
    above the low mode of the scores and 1e-4 below it (LATTICE's code cuts where a
    two-component Gaussian mixture's density is lowest between its means), so the best
    documents found so far anchor the slate most often."""
    scored = sorted(k for k in latent if k[0] == "d")
    if len(scored) <= count:
        return scored
    values = np.array([max(latent[k], -1.0) for k in scored])
    cut = mixture_cut(values)
    weights = {k: 16 ** min(v, 2.0) if v > cut else 1e-4 for k, v in zip(scored, values,
                                                                          strict=True)}
    # Gumbel top-k: a weighted draw without replacement in one pass.
    keys = {k: math.log(rng.random() or 1e-300) / weights[k] for k in scored}
    return sorted(scored, key=lambda k: -keys[k])[:count]


def mixture_cut(values: np.ndarray) -> float:
    """The score where a two-component Gaussian mixture's density is lowest between its
    two means; the lowest score when the values do not split."""
    from sklearn.mixture import GaussianMixture

    if len(np.unique(values)) < 2:
        return float(values.min()) - 1.0
    mixture = GaussianMixture(n_components=2, random_state=0).fit(values.reshape(-1, 1))
    low, high = sorted(float(m) for m in mixture.means_.ravel())
    grid = np.linspace(values.min(), values.max(), 1000)
    between = grid[(grid >= low) & (grid <= high)]
    if between.size == 0:
        return float(values.min()) - 1.0
    density = mixture.score_samples(between.reshape(-1, 1))
    return float(between[int(np.argmin(density))])


async def score_slates(state: LatticeState, runtime: LatticeRuntime) -> dict:
    """Scores every slate; each slate gets its own id (its bias in the calibration).
    A slate that cannot be read leaves its node unexpanded, to be tried again; the
    second time, the node is given up and its children are scored 0, as LATTICE's code
    scores items it could not read. Children missing from a read reply are scored 0 too."""
    tree, context = tree_of(state, runtime), runtime.context
    slates = [[Candidate(doc_id=key, text=item_text(tree, key, state, runtime) or "(empty)")
               for key in slate] for slate in state["slates"]]
    leaves = [tree.nodes[n].is_leaf for n in state["beam"]]
    judgments = await LatticeAgent().score_slates(context.engine, state["query"], slates,
                                                  leaves, context.params)
    first = state["slates_scored"]
    unreadable = dict(state["unreadable"])
    observations, expanded, retried, given_up = [], [], [], []
    for i, (node_id, slate, item) in enumerate(zip(state["beam"], state["slates"], judgments,
                                                   strict=True)):
        own = set(own_items(tree, node_id))
        if not item.parsed:
            unreadable[node_id] = unreadable.get(node_id, 0) + 1
            if unreadable[node_id] < UNREADABLE_TRIES:
                retried.append(node_id)
                continue
            given_up.append(node_id)
        scores = {key: item.parsed.get(key, 0.0) for key in slate
                  if key in item.parsed or key in own}
        observations += [Observation(first + i, key, score, weight=observation_weight(score))
                         for key, score in scores.items()]
        expanded.append(node_id)
    return {"judgments": judgments, "observations": state["observations"] + observations,
            "expanded": state["expanded"] + expanded, "slates_scored": first + len(judgments),
            "unreadable": unreadable,
            "trace": [{"iteration": state["iteration"] + 1, "expanded": expanded,
                       "llm_calls": len(judgments),
                       "tokens": sum(j.prompt_tokens + j.completion_tokens for j in judgments),
                       "unreadable": sum(not j.parsed for j in judgments),
                       "retried": retried, "given_up": given_up}]}


def own_items(tree: Tree, node_id: int) -> list[str]:
    """The keys of a node's children: its documents at a leaf, else its child nodes."""
    node = tree.nodes[node_id]
    return [doc_key(r) for r in node.docs] if node.is_leaf else [node_key(c)
                                                                  for c in node.children]


def observation_weight(score: float) -> float:
    """High scores count a little more in the fit (LATTICE's weighting, 0.38 to 0.62)."""
    return max(1 / (1 + math.exp(-(score - 0.5))), 0.1)


def calibrate_scores(state: LatticeState, runtime: LatticeRuntime) -> dict:
    return {"latent": calibrate(state["observations"]).latent}


def update_paths(state: LatticeState, runtime: LatticeRuntime) -> dict:
    """p(v) = alpha * latent(v) + (1 - alpha) * p(parent), top-down over every node seen,
    except that a node scored at most `path_cutoff` gets its own score (LATTICE's code:
    a parent's relevance does not keep a rejected branch alive). The next beam is the
    best unexpanded nodes by p (ties: the deeper one)."""
    tree, params = tree_of(state, runtime), runtime.context.params
    path = path_relevance(tree, state["latent"], params.alpha, params.path_cutoff)
    expanded = set(state["expanded"])
    frontier = [n for n in path if n not in expanded]
    # Ties go to the deeper node, so equally promising branches are finished first.
    beam = sorted(frontier, key=lambda n: (-round(path[n], 9), -tree.nodes[n].depth, n)
                  )[:params.beam]
    return {"path": path, "beam": beam, "iteration": state["iteration"] + 1}


def path_relevance(tree: Tree, latent: dict[str, float], alpha: float, cutoff: float | None
                   ) -> dict[int, float]:
    path = {ROOT: 1.0}
    for node in tree.nodes[1:]:  # breadth-first ids: a parent comes before its children
        score = latent.get(node_key(node.id))
        if node.parent in path and score is not None:
            path[node.id] = score if cutoff is not None and score <= cutoff else (
                alpha * score + (1 - alpha) * path[node.parent])
    return path


def check_stop(state: LatticeState, runtime: LatticeRuntime) -> str:
    if state["beam"] and state["iteration"] < runtime.context.params.iterations:
        return "expand_beam"
    return "rank"


def rank(state: LatticeState, runtime: LatticeRuntime) -> dict:
    """Scored documents by alpha * calibrated + (1 - alpha) * p(leaf that holds them), as
    LATTICE's code ranks them (`ranking=path`), or by the calibrated score alone
    (`ranking=calibrated`); ties go to the leaf's path relevance, then the id."""
    tree, params = tree_of(state, runtime), runtime.context.params
    leaf_of = {r: n.id for n in tree.nodes for r in n.docs}
    path, latent = state["path"], state["latent"]
    rows = [int(k[1:]) for k in latent if k[0] == "d"]

    def score(row: int) -> float:
        own = latent[doc_key(row)]
        if params.ranking == "calibrated":
            return own
        return params.alpha * own + (1 - params.alpha) * path.get(leaf_of[row], 0.0)

    scores = {r: score(r) for r in rows}
    ordered = sorted(rows, key=lambda r: (-scores[r], -path.get(leaf_of[r], 0.0),
                                          tree.doc_ids[r]))
    return {"ranking": [ScoredDoc(doc_id=tree.doc_ids[r], score=scores[r]) for r in ordered]}


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
