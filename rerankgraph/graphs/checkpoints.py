"""A checkpoint serializer that knows rerankgraph's state types.

LangGraph's checkpointers store state with msgpack and warn (later: refuse) when they
read back a type no one registered. Give a saver this serializer to resume a method's
graph from any of its steps:

    saver = InMemorySaver(serde=checkpoint_serializer())
"""

from __future__ import annotations

import dataclasses
import enum
import importlib
import inspect
import pkgutil
import typing
from collections.abc import Iterable

from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer
from pydantic import BaseModel

from rerankgraph import graphs, types


def state_schemas() -> list[type]:
    """Every state TypedDict the graph modules of `rerankgraph.graphs` define."""
    found = []
    for info in pkgutil.iter_modules(graphs.__path__):
        module = importlib.import_module(f"{graphs.__name__}.{info.name}")
        found += [value for value in vars(module).values()
                  if typing.is_typeddict(value) and value.__module__ == module.__name__]
    return found


def _records(hint: object, seen: set[type]) -> None:
    """Adds to `seen` every record (pydantic model, dataclass) and enum that `hint`
    names, and those their fields name in turn."""
    for arg in typing.get_args(hint):
        _records(arg, seen)
    if not inspect.isclass(hint) or hint in seen:
        return
    if issubclass(hint, enum.Enum):
        seen.add(hint)
        return
    if issubclass(hint, BaseModel):
        seen.add(hint)
        fields: Iterable[object] = [f.annotation for f in hint.model_fields.values()]
    elif dataclasses.is_dataclass(hint):
        seen.add(hint)
        fields = typing.get_type_hints(hint).values()
    elif typing.is_typeddict(hint):  # a dict in msgpack: only its fields need registering
        fields = typing.get_type_hints(hint).values()
    else:
        return
    for field in fields:
        _records(field, seen)


def state_types() -> list[tuple[str, str]]:
    """(module, name) of every record and enum a graph's state can hold: those the
    graphs' state TypedDicts name, walked through their fields, and every record of
    `rerankgraph.types`. Sorted."""
    seen: set[type] = {value for value in vars(types).values()
                       if inspect.isclass(value) and value.__module__ == types.__name__}
    for schema in state_schemas():
        _records(schema, seen)
    return sorted((t.__module__, t.__qualname__) for t in seen)


def checkpoint_serializer() -> JsonPlusSerializer:
    """A serializer for LangGraph checkpointers that reads rerankgraph's state types
    (and nothing else beyond LangGraph's own safe types)."""
    return JsonPlusSerializer(allowed_msgpack_modules=state_types())
