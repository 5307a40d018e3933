"""Ray Data batch backend (`ray.data.llm`) for the single-pass methods.

pointwise and rubric make one independent call per document, so a whole job is one
map over (query, document) rows: Ray Data runs vLLM replicas across a cluster and
streams the rows through them. The prompts, the parsing and the provenance are the same
as on the other engines; only the transport differs. The multi-step methods (windows,
heaps, rounds) need replies before their next calls and stay on `batch --base-url`.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from rerankgraph.errors import InputError, ModelError
from rerankgraph.serving.base import ChatRequest, Completion
from rerankgraph.serving.platform import (
    apply_cpu_env_defaults,
    default_engine_settings,
    is_cpu_build,
    refuse_if_engines_disabled,
)
from rerankgraph.types import Judgment, RerankRequest, RerankResult

RAY_METHODS = ("pointwise", "rubric")


def sampling_params(request: ChatRequest) -> dict[str, Any]:
    """The request's sampling settings as Ray Data's vLLM stage takes them."""
    params: dict[str, Any] = {"max_tokens": request.max_tokens,
                              "temperature": request.temperature}
    if request.seed is not None:
        params["seed"] = request.seed
    if request.top_logprobs is not None:
        params["logprobs"] = request.top_logprobs
    if request.choice is not None:
        params["structured_outputs"] = {"choice": list(request.choice)}
    elif request.regex is not None:
        params["structured_outputs"] = {"regex": request.regex}
    elif request.json_schema is not None:
        params["structured_outputs"] = {"json": request.json_schema}
    return params


def completion_from_row(row: dict[str, Any], max_tokens: int | None = None) -> Completion:
    """A Completion from a Ray Data output row. Ray Data reports no finish reason; as
    vLLM decides it, a reply that used all `max_tokens` stopped for "length"."""
    positions = []
    for position in row.get("logprobs") or []:
        by_token: dict[str, float] = {}
        for item in position.values():
            token = item.get("decoded_token") or ""
            by_token[token] = max(by_token.get(token, float("-inf")), float(item["logprob"]))
        positions.append(by_token)
    generated = int(row["num_generated_tokens"])
    reason = None if max_tokens is None else "length" if generated >= max_tokens else "stop"
    return Completion(texts=(row["generated_text"],), logprobs=(tuple(positions),),
                      prompt_tokens=int(row["num_input_tokens"]), completion_tokens=generated,
                      finish_reasons=(reason,))


def check_ray_method(method: str) -> None:
    """Raises InputError unless `method` (a canonical name) is single-pass."""
    if method not in RAY_METHODS:
        raise InputError(f"method {method!r} needs replies between its calls; the Ray Data "
                         f"backend runs {', '.join(RAY_METHODS)}. Use --base-url with a "
                         "Ray-backed vLLM server instead")


def rerank_with_ray_data(method: str, requests: Sequence[RerankRequest], model: str,
                         params: dict[str, Any] | None = None, *, batch_size: int = 64,
                         concurrency: int = 1, max_model_len: int = 4096) -> list[RerankResult]:
    """Reranks every request with `method` through one Ray Data pipeline. Every
    provenance record carries the whole pipeline's wall time."""
    from transformers import AutoTokenizer

    from rerankgraph.agents.base import FittedDoc, judgment
    from rerankgraph.agents.pointwise import PointwiseAgent
    from rerankgraph.agents.rubric import RubricAgent, read_rubric
    from rerankgraph.graphs.fusion import fused_ranking
    from rerankgraph.graphs.scoring import rank_judged
    from rerankgraph.registry import get_method
    from rerankgraph.sdk import summarize

    spec = get_method(method)
    check_ray_method(spec.name)
    refuse_if_engines_disabled(f"Ray Data's vLLM replicas for {model!r}")
    try:
        import ray
        from ray.data.llm import build_processor, vLLMEngineProcessorConfig
    except ImportError as exc:
        raise ModelError("Ray Data is not installed: pip install 'rerankgraph[ray]'") from exc
    checked: Any = spec.make_params(params)
    if getattr(checked, "samples", 1) > 1:
        raise InputError(f"samples={checked.samples}: the Ray Data backend returns one reply "
                         "per row; use --backend vllm for K samples")
    agent: Any = PointwiseAgent() if spec.name == "pointwise" else RubricAgent()
    tokenizer = AutoTokenizer.from_pretrained(model)
    rows = []
    asked: dict[tuple[str, str], tuple[FittedDoc, ChatRequest]] = {}
    for item in requests:
        for candidate in item.candidates:
            ids = tokenizer.encode(candidate.full_text, add_special_tokens=False)
            budget = checked.max_doc_tokens
            truncated = len(ids) > budget
            text = str(tokenizer.decode(ids[:budget])) if truncated else candidate.full_text
            call = agent.chat_request(item.query.text, text, checked)
            asked[item.query.id, candidate.doc_id] = (FittedDoc(candidate, text, truncated), call)
            rows.append({"query_id": item.query.id, "doc_id": candidate.doc_id,
                         "truncated": truncated, "messages": list(call.messages),
                         "sampling_params": sampling_params(call)})

    apply_cpu_env_defaults()
    config = vLLMEngineProcessorConfig(
        model_source=model, batch_size=batch_size, concurrency=concurrency,
        engine_kwargs={"max_model_len": max_model_len, "enable_prefix_caching": True,
                       **default_engine_settings(max_model_len)},
        # Ray Data asks for one GPU per replica by default; on the CPU build, a CPU.
        placement_group_config={"bundles": [{"CPU": 1}]} if is_cpu_build() else None,
        log_engine_metrics=False)
    processor = build_processor(
        config,
        preprocess=lambda row: {"messages": row["messages"],
                                "sampling_params": row["sampling_params"]},
        postprocess=lambda row: {"query_id": row["query_id"], "doc_id": row["doc_id"],
                                 "truncated": row["truncated"],
                                 "generated_text": row["generated_text"],
                                 "logprobs": row.get("logprobs"),
                                 "num_input_tokens": row["num_input_tokens"],
                                 "num_generated_tokens": row["num_generated_tokens"]})
    started = time.perf_counter()
    if not ray.is_initialized():
        ray.init(include_dashboard=False, log_to_driver=False)
    outputs = processor(ray.data.from_items(rows)).take_all()
    wall = time.perf_counter() - started

    judgments: dict[str, list[Judgment]] = {r.query.id: [] for r in requests}
    for row in outputs:
        doc, call = asked[row["query_id"], row["doc_id"]]
        completion = completion_from_row(row, call.max_tokens)
        if isinstance(agent, RubricAgent):  # with its samples' scores and drops
            judgments[row["query_id"]].append(
                agent.record(call, doc, completion, read_rubric(completion)))
            continue
        score, status, note = agent.read(completion)
        judgments[row["query_id"]].append(
            judgment(agent.name, call, [doc], completion, score, status, note))
    # The graph's last step, fusion with the first stage, as the graph would run it.
    results = []
    for item in requests:
        found = judgments[item.query.id]
        ranking, label = fused_ranking(item.candidates,
                                       rank_judged(agent, item.candidates, found), checked, model)
        results.append(RerankResult(
            query_id=item.query.id, ranking=tuple(ranking),
            provenance=summarize(spec.name, f"ray-data:{model}", found, wall, fusion=label)))
    return results
