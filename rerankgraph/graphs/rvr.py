"""`rvr`: retrieve, verify, refine (after WISER, "Wider Search, Deeper Thinking, and
Adaptive Fusion", 2025), with optional Vote-in-Context fusion.

    expand -> retrieve -> fuse -> verify --(unsure)--> refine --(new variants)--> retrieve
                                     |                    |
                                     +---(confident, or the round limit)---+--> finalize

Search wider: the LLM writes query variants and every variant goes through every
retriever of the index. Verify: a judge reads the fused top documents it has not seen
and says how confident it is that they answer the query. Refine: when it is not, the
LLM reflects on what is missing and writes new variants. All rounds' lists are fused
together, and documents judged relevant lead the final ranking. Changes from the
paper: the lists are fused by plain RRF (or the vic judge), not weighted per path, and
a refinement that only repeats earlier variants ends the loop.
"""

from __future__ import annotations

import asyncio
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
from rerankgraph.retrievers.fusion import FOUND_BY, found_by_metadata, fuse
from rerankgraph.spec import MethodSpec
from rerankgraph.types import Candidate, Judgment, ScoredDoc

RvrRuntime = Runtime[RerankContext[RvrParams]]
EXPAND, VERIFY, REFINE = ExpandAgent(), VerifyAgent(), RefineAgent()


class Variant(TypedDict):
    label: str  # "query", "keywords 1", "answer", "round 2 · 1"
    text: str
    round: int


class RvrState(TracedState, total=False):
    round: int
    variants: list[Variant]  # every round's, in order
    runs: dict[str, list[tuple[str, float]]]  # "bm25 · keywords 1" -> hits
    fused: list[tuple[str, float]]
    verdicts: dict[str, bool]  # doc id -> judged relevant; each document judged once
    confidence: float
    missing: str
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
    """The original query, and the variants the LLM writes for it."""
    first_stages(runtime)
    params = runtime.context.params
    variants = [Variant(label="query", text=state["query"].text, round=1)]
    judgments = []
    if params.variants:
        judgment = await EXPAND.expand(runtime.context.engine, state["query"], params.variants)
        judgments.append(judgment)
        written = list(judgment.parsed)
        keywords = len(written) - (1 if params.variants >= 2 and written else 0)
        for i, text in enumerate(written):
            label = f"keywords {i + 1}" if i < keywords else "answer"
            variants.append(Variant(label=label, text=text, round=1))
    kept = unique(variants, [])
    return {"round": 1, "variants": kept, "runs": {}, "verdicts": {}, "stop": "",
            "judgments": judgments,
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


async def retrieve(state: RvrState, runtime: RvrRuntime) -> dict:
    """This round's variants through every retriever: one batch per retriever, the
    retrievers concurrently."""
    stages, params = first_stages(runtime), runtime.context.params
    fresh = [v for v in state["variants"] if v["round"] == state["round"]]
    queries = {str(i): v["text"] for i, v in enumerate(fresh)}
    results = await asyncio.gather(*(asearch(retriever, queries, params.depth)
                                     for _, retriever in stages))
    runs = dict(state["runs"])
    for (name, _), found in zip(stages, results, strict=True):
        for i, variant in enumerate(fresh):
            runs[f"{name} · {variant['label']}"] = found.get(str(i), [])
    known = {d for hits in state["runs"].values() for d, _ in hits}
    new_docs = {d for hits in runs.values() for d, _ in hits} - known
    return {"runs": runs, "trace": [step(state, [], phase="retrieve", lists=len(runs),
                                         new_documents=len(new_docs))]}


async def fuse_lists(state: RvrState, runtime: RvrRuntime) -> dict:
    """RRF of every list so far; with fusion=vic, the vic judge then reorders the RRF
    top `fuse_depth`, seeing which lists found each candidate at which rank."""
    params = runtime.context.params
    fused = fuse(state["runs"], "rrf", params.rrf_k)
    if params.fusion != "vic" or len(state["runs"]) < 2:
        return {"fused": fused}
    head = candidates(runtime, (d for d, _ in fused[:params.fuse_depth]), state)
    defaults = VicParams.model_validate({"max_doc_tokens": params.max_doc_tokens})
    window = max(min(defaults.window, len(head)), 2)
    vic_params = defaults.model_copy(update={"window": window,
                                             "stride": min(defaults.stride, window)})
    result = await vic.build_graph().ainvoke(
        {"query": state["query"], "candidates": head},
        context=RerankContext(engine=runtime.context.engine, params=vic_params,
                              seed=runtime.context.seed))
    judgments = result["judgments"]
    scores = [s for _, s in fused[:len(head)]]  # the RRF scores, handed down the new order
    reordered = [(d.doc_id, s) for d, s in zip(result["ranking"], scores, strict=True)]
    return {"fused": reordered + fused[len(head):], "judgments": judgments,
            "trace": [step(state, judgments, phase="fuse with vic", candidates=len(head))]}


async def verify(state: RvrState, runtime: RvrRuntime) -> dict:
    """The judge reads the top documents it has not judged, beside those it judged
    relevant before, and rates its confidence that they answer the query."""
    params = runtime.context.params
    verdicts = dict(state["verdicts"])
    fresh = [d for d, _ in state["fused"] if d not in verdicts][:params.verify_depth]
    earlier = [d for d, _ in state["fused"] if verdicts.get(d)][:params.verify_depth]
    if not fresh and not earlier:  # nothing retrieved: nothing to judge, not confident
        return {"confidence": 0.0, "missing": "",
                "trace": [step(state, [], phase="verify", judged=[], confidence=0.0,
                               missing="no document was retrieved")]}
    shown = candidates(runtime, [*earlier, *fresh], state)
    judgment = await VERIFY.verify(runtime.context.engine, state["query"],
                                   shown[:len(earlier)], shown[len(earlier):],
                                   params.max_doc_tokens)
    verdict = judgment.parsed
    for doc_id in fresh:
        verdicts[doc_id] = doc_id in verdict["relevant"]
    return {"verdicts": verdicts, "confidence": verdict["confidence"],
            "missing": verdict["missing"], "judgments": [judgment],
            "trace": [step(state, [judgment], phase="verify", judged=fresh,
                           relevant=verdict["relevant"], confidence=verdict["confidence"],
                           missing=verdict["missing"], status=str(judgment.status))]}


def after_verify(state: RvrState, runtime: RvrRuntime) -> str:
    params = runtime.context.params
    if state["confidence"] >= params.threshold and state["round"] >= params.min_rounds:
        return "finalize"
    if state["round"] >= params.rounds:
        return "finalize"
    return "refine"


async def refine(state: RvrState, runtime: RvrRuntime) -> dict:
    """Reflection on what is missing, and new variants for the next round. Variants
    that repeat earlier ones are dropped; when none is left, the loop ends."""
    params = runtime.context.params
    best = candidates(runtime, (d for d, _ in state["fused"][:params.verify_depth]), state)
    count = max(params.variants, 1)
    judgment = await REFINE.refine(runtime.context.engine, state["query"],
                                   [v["text"] for v in state["variants"]], state["missing"],
                                   best, count, params.max_doc_tokens)
    following = state["round"] + 1
    written = [Variant(label=f"round {following} · {i + 1}", text=text, round=following)
               for i, text in enumerate(judgment.parsed["queries"])]
    kept = unique(written, state["variants"])
    update: dict[str, Any] = {"judgments": [judgment]}
    if not judgment.parsed["queries"]:
        update["stop"] = "the reflection could not be read"
    elif not kept:
        update["stop"] = "the refined variants repeat earlier ones"
    else:
        update |= {"round": following, "variants": [*state["variants"], *kept]}
    update["trace"] = [step(state, [judgment], phase="refine",
                            reflection=judgment.parsed["reflection"],
                            variants=[v["text"] for v in kept],
                            repeated=len(written) - len(kept), status=str(judgment.status))]
    return update


def after_refine(state: RvrState) -> str:
    return "finalize" if state.get("stop") else "retrieve"


async def finalize(state: RvrState, runtime: RvrRuntime) -> dict:
    """Documents judged relevant first, then the rest of the fused list, cut to `k`;
    then the optional rerank. The trace's last step says why the loop stopped."""
    params = runtime.context.params
    relevant = [(d, s) for d, s in state["fused"] if state["verdicts"].get(d)]
    rest = [(d, s) for d, s in state["fused"] if not state["verdicts"].get(d)]
    ordered = [d for d, _ in relevant + rest][:params.k]
    ranking = [ScoredDoc(doc_id=d, score=float(len(ordered) - i)) for i, d in enumerate(ordered)]
    stop = state.get("stop") or stop_reason(state, params)
    update: dict[str, Any] = {"ranking": ranking, "stop": stop,
                              "trace": [{"round": state["round"], "phase": "stop",
                                         "reason": stop, "confidence": state["confidence"],
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
    if state["confidence"] >= params.threshold:
        return f"confident ({state['confidence']:g} >= {params.threshold:g})"
    return (f"round limit {params.rounds} reached (confidence {state['confidence']:g} < "
            f"{params.threshold:g})")


def build_graph() -> Any:
    """A fresh compiled rvr graph."""
    graph = StateGraph(RvrState, context_schema=RerankContext)
    for name, node in (("expand", expand), ("retrieve", retrieve), ("fuse", fuse_lists),
                       ("verify", verify), ("refine", refine), ("finalize", finalize)):
        graph.add_node(name, node)
    graph.add_edge(START, "expand")
    graph.add_edge("expand", "retrieve")
    graph.add_edge("retrieve", "fuse")
    graph.add_edge("fuse", "verify")
    graph.add_conditional_edges("verify", after_verify, ["refine", "finalize"])
    graph.add_conditional_edges("refine", after_refine, ["retrieve", "finalize"])
    graph.add_edge("finalize", END)
    return graph.compile(name="rvr")


METHOD = MethodSpec(
    name="rvr", build_graph=build_graph, params=RvrParams, kind="search",
    description="retrieve-verify-refine (WISER): LLM query variants through bm25 and "
                "dense, fused (RRF or vic), verified, refined while unsure",
    aliases=("wiser", "retrieve_verify_refine"))
