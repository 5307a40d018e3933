"""Method registry: name -> how to build its graph and which parameters it takes.

Built-in methods register themselves exactly as a plugin would; plugins are found
through the `rerankgraph.methods` entry-point group.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import Any

from pydantic import BaseModel, ValidationError

from rerankgraph.errors import InputError, UnknownMethodError


@dataclass(frozen=True)
class MethodSpec:
    """A registered method: a graph factory and its parameter model."""

    name: str
    build_graph: Callable[[], Any]
    params: type[BaseModel]
    description: str
    aliases: tuple[str, ...] = field(default=())

    def make_params(self, values: dict[str, Any] | BaseModel | None) -> BaseModel:
        """Validates user parameters; unknown names and bad values raise InputError."""
        if isinstance(values, self.params):
            return values
        try:
            return self.params.model_validate(values or {})
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "params"
            known = ", ".join(self.params.model_fields)
            raise InputError(f"method {self.name!r} parameter {where!r}: {first['msg']} "
                             f"(known parameters: {known})") from None


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


def _load_methods() -> None:
    global _loaded
    if _loaded:
        return
    _loaded = True
    importlib.import_module("rerankgraph.graphs")
    for entry in entry_points(group="rerankgraph.methods"):
        entry.load()


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
