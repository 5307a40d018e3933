"""`rvr`: retrieve, verify, refine (after WISER, "Wider Search, Deeper Thinking, and
Adaptive Fusion", 2025), with optional Vote-in-Context fusion.

    expand -> retrieve -> verify -> fuse --(a path unsure)--> refine --(new queries)--> retrieve
                                      |                          |
                                      +--(all confident, or the round limit)--+--> finalize

Search wider: the LLM writes query variants; each variant is a path, searched through
every retriever of the index. Verify: a judge scores each path's top `verify_depth`
documents 0-100 (each document once), and a path's confidence is its best score, as
WISER's verifier does. Refine: for every path below the threshold, the LLM reflects on
what its best passages miss and writes a new query, which replaces that path. Fuse:
the active paths' lists by RRF, each path weighted by its confidence (WISER's adaptive
fusion; plain RRF and the vic judge are options). Documents the verifier scored at
`relevant_score` or more lead the final ranking, best score first.

Adapted for text: a path is a query variant (WISER's are a text and an image query);
the fused list is RRF rather than a sum of verifier scores, since only each path's top
documents are verified; a refinement that only repeats earlier variants ends the loop.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Iterable
from typing import Any, TypedDict

from langgraph.graph import END, START, StateGraph
from langgraph.runtime import Runtime

from rerankgraph.agents.rvr import ExpandAgent, RefineAgent, RvrParams, VerifyAgent
from rerankgraph.agents.vic import VicParams
from rerankgraph.context import RerankContext
from rerankgraph.errors import InputError
from rerankgraph.graphs import vic
from rerankgraph.graphs.subgraph import TracedState, rerank_head
from rerankgraph.retrievers.base import Retriever, asearch, document_reader
from rerankgraph.retrievers.fusion import (
    FOUND_BY,
    found_by_metadata,
    fuse,
    reciprocal_rank_fusion,
)
from rerankgraph.spec import MethodSpec
from rerankgraph.types import Candidate, Judgment, ScoredDoc

RvrRuntime = Runtime[RerankContext[RvrParams]]
EXPAND, VERIFY, REFINE = ExpandAgent(), VerifyAgent(), RefineAgent()
# A path its verifier found nothing in still counts a little, so its list breaks ties.
MIN_PATH_WEIGHT = 0.05


class Variant(TypedDict):
    label: str  # "query", "keywords 1", "answer", "round 2 · 1"
    text: str
    round: int


class RvrState(TracedState, total=False):
    round: int
    variants: list[Variant]  # every round's, in order (the refiner sees what was tried)
    paths: list[str]  # labels of the variants searched now; a refined one replaces its path
    runs: dict[str, list[tuple[str, float]]]  # "bm25 · keywords 1" -> hits, active paths only
    fused: list[tuple[str, float]]
    scores: dict[str, float]  # doc id -> verifier score in [0, 1]; each document once
    confidence: dict[str, float]  # path label -> its best verifier score, 0-100
    stop: str  # why the loop ended


def first_stages(runtime: RvrRuntime) -> list[tuple[str, Retriever]]:
    """The index's retrievers named in `retrievers`; without an index, the context's
    own retriever (a user's, e.g. a LangChain vector store)."""
    context = runtime.context
    if context.index is not None:
        return [(name, context.index.retriever(name)) for name in context.params.retrievers]
    if context.retriever is not None:
        return [(context.retriever.name, context.retriever)]
    raise InputError("method 'rvr' searches a corpus with its retrievers: give --index "
                     "INDEX (built by `rerankgraph index build`) or a retriever")


def candidates(runtime: RvrRuntime, doc_ids: Iterable[str], state: RvrState
               ) -> list[Candidate]:
    """The documents with their texts and the lists that found them (read once per step,
    not per document)."""
    context = runtime.context
    document = document_reader([context.index, context.retriever])
    found_by = found_by_metadata(state["runs"])
    made = []
    for doc_id in doc_ids:
        title, text = document(doc_id)
        made.append(Candidate(doc_id=doc_id, text=text, title=title or None,
                              metadata={FOUND_BY: found_by.get(doc_id, [])}))
    return made


def step(state: RvrState, judgments: list[Judgment], **facts: Any) -> dict[str, Any]:
    """A trace entry for this round's step with its calls and tokens."""
    return {"round": state.get("round", 1), **facts, "llm_calls": len(judgments),
            "tokens": sum(j.prompt_tokens + j.completion_tokens for j in judgments)}


# -- nodes ----------------------------------------------------------------------------
async def expand(state: RvrState, runtime: RvrRuntime) -> dict:
    """The original query, and the variants the LLM writes for it: one path each."""
    first_stages(runtime)
    params = runtime.context.params
    variants = [Variant(label="query", text=state["query"].text, round=1)]
    judgments = []
    if params.variants:
        judgment = await EXPAND.expand(runtime.context.engine, state["query"], params.variants)
        judgments.append(judgment)
        variants += [Variant(label=v["label"], text=v["text"], round=1)
                     for v in judgment.parsed]
    kept = unique(variants, [])
    return {"round": 1, "variants": kept, "paths": [v["label"] for v in kept], "runs": {},
            "scores": {}, "confidence": {}, "stop": "", "judgments": judgments,
            "trace": [step({"round": 1}, judgments, phase="expand",
                           variants=[v["text"] for v in kept],
                           repeated=len(variants) - len(kept))]}


def unique(new: list[Variant], earlier: list[Variant]) -> list[Variant]:
    """`new` without variants that repeat an earlier or a new one (case and spacing
    aside)."""
    seen = {" ".join(v["text"].lower().split()) for v in earlier}
    kept = []
    for variant in new:
        key = " ".join(variant["text"].lower().split())
        if key and key not in seen:
            seen.add(key)
            kept.append(variant)
    return kept


def run_name(retriever: str, label: str) -> str:
    return f"{retriever} · {label}"


def path_lists(state: RvrState, runtime: RvrRuntime) -> dict[str, list[list[str]]]:
    """Per active path, its lists (one per retriever) as doc ids."""
    names = [name for name, _ in first_stages(runtime)]
    return {label: [[d for d, _ in state["runs"].get(run_name(n, label), [])] for n in names]
            for label in state["paths"]}


async def retrieve(state: RvrState, runtime: RvrRuntime) -> dict:
    """The new paths' queries through every retriever: one batch per retriever, the
    retrievers concurrently. Lists of replaced paths leave the fusion."""
    stages, params = first_stages(runtime), runtime.context.params
    searched = {k.split(" · ", 1)[1] for k in state["runs"]}
    fresh = [v for v in state["variants"] if v["label"] in state["paths"]
             and v["label"] not in searched]
    queries = {str(i): v["text"] for i, v in enumerate(fresh)}
    results = await asyncio.gather(*(asearch(retriever, queries, params.depth)
                                     for _, retriever in stages))
    active = set(state["paths"])
    runs = {k: hits for k, hits in state["runs"].items() if k.split(" · ", 1)[1] in active}
    for (name, _), found in zip(stages, results, strict=True):
        for i, variant in enumerate(fresh):
            runs[run_name(name, variant["label"])] = found.get(str(i), [])
    known = {d for hits in state["runs"].values() for d, _ in hits}
    new_docs = {d for hits in runs.values() for d, _ in hits} - known
    return {"runs": runs, "trace": [step(state, [], phase="retrieve", lists=len(runs),
                                         new_documents=len(new_docs))]}


def path_top(lists: list[list[str]], depth: int) -> list[str]:
    """A path's top `depth` documents: its lists fused by RRF (one list: itself)."""
    return [d for d, _ in reciprocal_rank_fusion(lists)[:depth]] if len(lists) > 1 \
        else lists[0][:depth]


async def verify(state: RvrState, runtime: RvrRuntime) -> dict:
    """The verifier scores every path's top documents it has not scored; each path's
    confidence is its best score (an unread score counts 0)."""
    params = runtime.context.params
    scores = dict(state["scores"])
    tops = {label: path_top(lists, params.verify_depth)
            for label, lists in path_lists(state, runtime).items()}
    fresh = list(dict.fromkeys(d for top in tops.values() for d in top if d not in scores))
    judgments = []
    if fresh:
        judgments = await VERIFY.verify(runtime.context.engine, state["query"],
                                        candidates(runtime, fresh, state),
                                        params.max_doc_tokens)
        for judgment in judgments:
            scores.update(judgment.parsed)
    confidence = {label: 100 * max((scores.get(d, 0.0) for d in top), default=0.0)
                  for label, top in tops.items()}
    return {"scores": scores, "confidence": confidence, "judgments": judgments,
            "trace": [step(state, judgments, phase="verify", judged=fresh,
                           scores={d: round(100 * scores[d]) for d in fresh if d in scores},
                           confidence={k: round(v, 1) for k, v in confidence.items()},
                           unread=sum(d not in scores for d in fresh))]}


async def fuse_lists(state: RvrState, runtime: RvrRuntime) -> dict:
    """The active paths' lists fused: RRF with each path weighted by its confidence
    (weighted), plain RRF (rrf), or the vic judge over the lists' round-robin pool."""
    params = runtime.context.params
    if params.fusion == "weighted":
        weights = {label: max(state["confidence"].get(label, 0.0) / 100, MIN_PATH_WEIGHT)
                   for label in state["paths"]}
        return {"fused": weighted_rrf(path_lists(state, runtime), weights, params.rrf_k)}
    fused = fuse(state["runs"], "rrf", params.rrf_k)
    if params.fusion != "vic":
        return {"fused": fused}
    # The pool's documents (each list's top ceil(K/M)), which vic interleaves with repeats.
    per_list = math.ceil(params.fuse_depth / max(len(state["runs"]), 1))
    pooled = {d for hits in state["runs"].values() for d, _ in hits[:per_list]}
    head = candidates(runtime, (d for d, _ in fused if d in pooled), state)
    vic_params = vic.METHOD.make_params({"max_doc_tokens": params.max_doc_tokens,
                                         "window": params.fuse_depth,
                                         "stride": min(VicParams.model_fields["stride"].default,
                                                    params.fuse_depth),
                                         "fusion": "none"})
    # the pool is not a first stage: nothing is fused with it
    result = await vic.build_graph().ainvoke(
        {"query": state["query"], "candidates": head},
        context=RerankContext(engine=runtime.context.engine, params=vic_params,
                              seed=runtime.context.seed))
    judgments = result["judgments"]
    order = [d.doc_id for d in result["ranking"]]
    rrf = dict(fused)
    scores = sorted((rrf[d] for d in order), reverse=True)  # RRF scores down the new order
    reordered = list(zip(order, scores, strict=True))
    return {"fused": reordered + [(d, s) for d, s in fused if d not in pooled],
            "judgments": judgments,
            "trace": [step(state, judgments, phase="fuse with vic", candidates=len(head))]}


def weighted_rrf(lists: dict[str, list[list[str]]], weights: dict[str, float], k: int
                 ) -> list[tuple[str, float]]:
    """score(d) = sum over paths p of weight(p) * sum over p's lists of 1 / (k + rank);
    best first, ties to the better single rank, then the id."""
    scores: dict[str, float] = {}
    best: dict[str, int] = {}
    for label, path in lists.items():
        for ranking in path:
            for rank, doc_id in enumerate(ranking, start=1):
                scores[doc_id] = scores.get(doc_id, 0.0) + weights[label] / (k + rank)
                best[doc_id] = min(best.get(doc_id, rank), rank)
    order = sorted(scores, key=lambda d: (-scores[d], best[d], d))
    return [(d, scores[d]) for d in order]


def uncertain(state: RvrState, params: RvrParams) -> list[str]:
    return [p for p in state["paths"] if state["confidence"].get(p, 0.0) < params.threshold]


def after_fuse(state: RvrState, runtime: RvrRuntime) -> str:
    params = runtime.context.params
    if not uncertain(state, params) and state["round"] >= params.min_rounds:
        return "finalize"
    if state["round"] >= params.rounds:
        return "finalize"
    return "refine"


async def refine(state: RvrState, runtime: RvrRuntime) -> dict:
    """One reflection over the uncertain paths' best passages, and a new query for each
    uncertain path, which replaces it (a confident path stays). Queries that repeat
    earlier ones are dropped, and their paths kept; when none is new, the loop ends."""
    params = runtime.context.params
    unsure = uncertain(state, params) or list(state["paths"])  # min_rounds: refine all
    lists = path_lists(state, runtime)
    shown = list(dict.fromkeys(d for label in unsure
                               for d in path_top(lists[label], params.verify_depth)))
    shown.sort(key=lambda d: -state["scores"].get(d, 0.0))
    best = candidates(runtime, shown[:params.verify_depth], state)
    judgment = await REFINE.refine(runtime.context.engine, state["query"],
                                   [v["text"] for v in state["variants"]], best, len(unsure),
                                   params.max_doc_tokens)
    following = state["round"] + 1
    written = [Variant(label=f"round {following} · {i + 1}", text=text, round=following)
               for i, text in enumerate(judgment.parsed["queries"])]
    kept = unique(written, state["variants"])
    replaced = {old: new["label"] for old, new in zip(unsure, written, strict=False)
                if new in kept}
    update: dict[str, Any] = {"judgments": [judgment]}
    if not judgment.parsed["queries"]:
        update["stop"] = "the reflection could not be read"
    elif not replaced:
        update["stop"] = "the refined variants repeat earlier ones"
    else:
        update |= {"round": following, "variants": [*state["variants"], *kept],
                   "paths": [replaced.get(p, p) for p in state["paths"]]}
    update["trace"] = [step(state, [judgment], phase="refine",
                            reflection=judgment.parsed["reflection"],
                            replaced=replaced, variants=[v["text"] for v in kept],
                            repeated=len(written) - len(kept), status=str(judgment.status))]
    return update


def after_refine(state: RvrState) -> str:
    return "finalize" if state.get("stop") else "retrieve"


async def finalize(state: RvrState, runtime: RvrRuntime) -> dict:
    """Documents the verifier scored at relevant_score or more first, best score first,
    then the rest of the fused list, cut to `k`; then the optional rerank. The trace's
    last step says why the loop stopped."""
    params = runtime.context.params
    scores, bar = state["scores"], params.relevant_score / 100
    position = {d: i for i, (d, _) in enumerate(state["fused"])}
    leading = sorted((d for d in position if scores.get(d, 0.0) >= bar),
                     key=lambda d: (-scores[d], position[d]))
    rest = [d for d, _ in state["fused"] if scores.get(d, 0.0) < bar]
    ordered = (leading + rest)[:params.k]
    ranking = [ScoredDoc(doc_id=d, score=float(len(ordered) - i)) for i, d in enumerate(ordered)]
    stop = state.get("stop") or stop_reason(state, params)
    best = max(state["confidence"].values(), default=0.0)
    update: dict[str, Any] = {"ranking": ranking, "stop": stop,
                              "trace": [{"round": state["round"], "phase": "stop",
                                         "reason": stop, "confidence": best,
                                         "rounds": state["round"]}]}
    if params.rerank_method is not None:
        head = candidates(runtime, (d.doc_id for d in ranking[:params.rerank_depth]), state)
        reranked = await rerank_head(runtime.context, params.rerank_method, "rvr",
                                     state["query"], head, ranking[len(head):])
        update |= {"ranking": reranked.get("ranking", ranking),
                   "judgments": reranked.get("judgments", []),
                   "trace": update["trace"] + reranked.get("trace", [])}
    return update


def stop_reason(state: RvrState, params: RvrParams) -> str:
    unsure = uncertain(state, params)
    if not unsure:
        return f"confident (every path >= {params.threshold:g})"
    worst = min(state["confidence"].get(p, 0.0) for p in unsure)
    return (f"round limit {params.rounds} reached ({len(unsure)} of {len(state['paths'])} "
            f"paths below {params.threshold:g}, lowest {worst:g})")


def build_graph() -> Any:
    """A fresh compiled rvr graph."""
    graph = StateGraph(RvrState, context_schema=RerankContext)
    for name, node in (("expand", expand), ("retrieve", retrieve), ("fuse", fuse_lists),
                       ("verify", verify), ("refine", refine), ("finalize", finalize)):
        graph.add_node(name, node)
    graph.add_edge(START, "expand")
    graph.add_edge("expand", "retrieve")
    graph.add_edge("retrieve", "verify")
    graph.add_edge("verify", "fuse")
    graph.add_conditional_edges("fuse", after_fuse, ["refine", "finalize"])
    graph.add_conditional_edges("refine", after_refine, ["retrieve", "finalize"])
    graph.add_edge("finalize", END)
    return graph.compile(name="rvr")


METHOD = MethodSpec(
    name="rvr", build_graph=build_graph, params=RvrParams, kind="search",
    description="retrieve-verify-refine (WISER): LLM query variants through bm25 and "
                "dense, each path's top verified, unsure paths refined, fused by "
                "confidence",
    aliases=("wiser", "retrieve_verify_refine"))
