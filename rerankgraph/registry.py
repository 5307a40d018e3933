"""Method registry: name -> how to build its graph, which parameters it takes, its kind.

Built-in methods are collected exactly as plugins are: a module (or entry point in the
`rerankgraph.methods` group) exposes a `MethodSpec`, and the registry registers it.
"""

from __future__ import annotations

import importlib
from importlib.metadata import entry_points
from pathlib import PurePath
from types import ModuleType
from typing import Any

from pydantic import BaseModel

from rerankgraph.errors import UnknownMethodError
from rerankgraph.graphs.fusion import fusion_label
from rerankgraph.serving.model_store import EMBEDDED_MODEL_NAME, is_embedded_alias
from rerankgraph.spec import FusionParams, MethodKind, MethodSpec

__all__ = ["MethodKind", "MethodSpec", "get_method", "list_methods", "register",
           "running_defaults"]

BUILTIN_METHODS = ("cascade", "dear", "first", "grade", "groupwise", "lattice", "listwise",
                   "pairwise", "pointwise", "retrieve", "rubric", "rvr", "setwise", "vic")

_METHODS: dict[str, MethodSpec] = {}
_ALIASES: dict[str, str] = {}
_loaded = False


def register(spec: MethodSpec) -> MethodSpec:
    """Adds a method. A name or alias that is already taken raises ValueError."""
    for name in (spec.name, *spec.aliases):
        if name in _METHODS or name in _ALIASES:
            raise ValueError(f"method name {name!r} is already registered")
    _METHODS[spec.name] = spec
    for alias in spec.aliases:
        _ALIASES[alias] = spec.name
    return spec


def _register_found(found: object) -> None:
    # An entry point may name a MethodSpec, or a module with a METHOD (or that
    # registers itself on import, as plugins written before METHOD did).
    spec = found.METHOD if isinstance(found, ModuleType) else found
    if isinstance(spec, MethodSpec) and spec.name not in _METHODS:
        register(spec)


def _load_methods() -> None:
    global _loaded
    if _loaded:
        return
    _loaded = True
    for name in BUILTIN_METHODS:
        _register_found(importlib.import_module(f"rerankgraph.graphs.{name}"))
    for entry in entry_points(group="rerankgraph.methods"):
        _register_found(entry.load())


def get_method(name: str) -> MethodSpec:
    """Returns the method registered under `name` or an alias of it."""
    _load_methods()
    canonical = _ALIASES.get(name, name)
    if canonical not in _METHODS:
        raise UnknownMethodError(f"unknown method {name!r}; registered methods: "
                                 f"{', '.join(sorted(_METHODS))}")
    return _METHODS[canonical]


def list_methods() -> list[MethodSpec]:
    _load_methods()
    return [_METHODS[n] for n in sorted(_METHODS)]


def running_defaults(spec: MethodSpec, model: str | None = None,
                     params: dict[str, Any] | BaseModel | None = None) -> dict[str, Any]:
    """Each parameter as it runs on `model` (a judge alias, a folder or a hub id; None:
    the embedded judge), given `params`. A rerank method's fusion is the model's own
    where the caller sets none, and its weight the model's (graphs/fusion.py): the
    values provenance then records, not the parameter model's bare defaults."""
    made = spec.make_params(params)
    values = {name: getattr(made, name) if name in made.model_fields_set else field.default
              for name, field in spec.params.model_fields.items()}
    if isinstance(made, FusionParams):
        name = EMBEDDED_MODEL_NAME if is_embedded_alias(model) else PurePath(
            str(model).rstrip("/")).name
        label, weight = fusion_label(made, name)
        values["fusion"] = label
        values["fusion_weight"] = weight if label.startswith(("interpolate", "rrf")) else None
    return values


# LangGraph Studio (langgraph.json) builds graphs from zero-argument factories; methods
# whose graph embeds other methods are built here, where the registry can find them.
def cascade_graph() -> Any:
    """The default cascade, for Studio."""
    return get_method("cascade").graph(None, get_method)


def dear_graph() -> Any:
    """dear with its default stages, for Studio."""
    return get_method("dear").graph(None, get_method)
