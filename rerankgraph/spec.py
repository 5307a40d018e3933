"""What a method is: a graph factory, its parameter model and its kind.

Graph modules declare a `METHOD = MethodSpec(...)`; the registry collects them, so
graphs never import the registry that sits above them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ValidationError

from rerankgraph.errors import InputError

# rerank: reorders the candidates it is given. search: reaches the corpus through the
# retriever or index in its context; candidates are optional.
MethodKind = Literal["rerank", "search"]


@dataclass(frozen=True)
class MethodSpec:
    """A registered method: a graph factory, its parameter model and its kind."""

    name: str
    build_graph: Callable[[], Any]
    params: type[BaseModel]
    description: str
    aliases: tuple[str, ...] = field(default=())
    kind: MethodKind = "rerank"
    uses_engine: bool = True  # False: no LLM call, so no model is loaded for it
    reranks: bool = False  # a search method that also reranks candidates it is given
    fuses: bool = False  # a rerank method over several runs' fused candidates (vic)

    def make_params(self, values: dict[str, Any] | BaseModel | None) -> BaseModel:
        """Validates user parameters; unknown names and bad values raise InputError."""
        if isinstance(values, self.params):
            return values
        try:
            return self.params.model_validate(values or {})
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            if not where:  # a rule across parameters: its message names them
                message = str(first["msg"]).removeprefix("Value error, ")
                raise InputError(f"method {self.name!r}: {message}") from None
            known = ", ".join(self.params.model_fields)
            raise InputError(f"method {self.name!r} parameter {where!r}: {first['msg']} "
                             f"(known parameters: {known})") from None
