"""rerankgraph: LLM rerankers as LangGraph state machines on vLLM.

`import rerankgraph` stays light: vLLM and torch load only when an engine is built.
"""

from rerankgraph.errors import EngineError, InputError, ModelError, RerankgraphError
from rerankgraph.sdk import Reranker, rerank
from rerankgraph.types import Candidate, Judgment, ParseStatus, Query, RerankResult

__all__ = ["Candidate", "EngineError", "InputError", "Judgment", "ModelError", "ParseStatus",
           "Query", "Reranker", "RerankResult", "RerankgraphError", "rerank"]
__version__ = "0.1.0"
