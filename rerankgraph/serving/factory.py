"""The one place that chooses an engine: an HTTP client for a running vLLM server, or
vLLM in this process. A new engine is a module in `serving/` and a branch here.

Engines that are not models (the simulated judge) are built by their own part and
handed to the SDK as a ready engine; this factory never imports them.
"""

from __future__ import annotations

from typing import Any

from rerankgraph.serving.base import Engine


def build_engine(model: str | None = None, base_url: str | None = None,
                 api_key: str | None = None, max_concurrency: int = 64,
                 options: dict[str, Any] | None = None) -> Engine:
    """An OpenAIEngine for `base_url` (serving `model`, or its first model when None),
    else an in-process VllmEngine for `model` (a local HF folder or hub id; default:
    the embedded judge). `options` go to the engine's constructor as they are (for
    vLLM, its own engine arguments)."""
    if base_url is not None:
        from rerankgraph.serving.openai_http import OpenAIEngine

        return OpenAIEngine(base_url, api_key=api_key, model=model,
                            max_concurrency=max_concurrency, **(options or {}))
    from rerankgraph.serving.model_store import resolve_model
    from rerankgraph.serving.vllm_local import VllmEngine

    return VllmEngine(resolve_model(model), max_concurrency=max_concurrency, **(options or {}))
