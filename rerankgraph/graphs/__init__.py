"""One LangGraph StateGraph per method. Importing this package registers them all."""

from rerankgraph.graphs import pointwise, rubric  # noqa: F401
