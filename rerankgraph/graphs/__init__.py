"""One LangGraph StateGraph per method. Importing this package registers them all."""

from rerankgraph.graphs import (  # noqa: F401
    first,
    groupwise,
    listwise,
    pairwise,
    pointwise,
    rubric,
    setwise,
)
