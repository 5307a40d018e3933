"""Runtime context handed to every graph: the engine and the method's settings.

It travels as LangGraph runtime context, not state, so state stays serializable.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rerankgraph.serving.base import Engine


@dataclass(frozen=True)
class RerankContext:
    engine: Engine
    params: Any  # the method's own parameter model (see MethodSpec.params)
    seed: int = 0
    strict: bool = False
