"""A checkpoint serializer that knows rerankgraph's state types.

LangGraph's checkpointers store state with msgpack and warn (later: refuse) when they
read back a type no one registered. Give a saver this serializer to resume a method's
graph from any of its steps:

    saver = InMemorySaver(serde=checkpoint_serializer())
"""

from __future__ import annotations

import inspect

from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer

from rerankgraph import types


def state_types() -> list[tuple[str, str]]:
    """(module, name) of every record and enum a graph's state can hold."""
    return [(types.__name__, name) for name, value in vars(types).items()
            if inspect.isclass(value) and value.__module__ == types.__name__]


def checkpoint_serializer() -> JsonPlusSerializer:
    """A serializer for LangGraph checkpointers that reads rerankgraph's state types."""
    return JsonPlusSerializer(allowed_msgpack_modules=state_types())
