"""Typed errors. Each message is one line that names the problem and how to fix it."""

from __future__ import annotations


class RerankgraphError(Exception):
    """Base class of every error rerankgraph raises on purpose."""


class InputError(RerankgraphError, ValueError):
    """Bad input from the user: a file, a line, a field or an argument."""


class UnknownMethodError(InputError, KeyError):
    """A method name that is not registered."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


class PromptTooLongError(InputError):
    """A prompt that does not fit the model's context even with its query and documents
    cut to their token budgets: the request's fault, not the engine's."""


class ModelError(RerankgraphError):
    """A model that cannot be found, downloaded or loaded."""


class EngineError(RerankgraphError):
    """The engine failed after its retries ran out (connection, timeout, 5xx, 4xx)."""


class StrictModeError(RerankgraphError):
    """A reply needed a repair or a fallback while strict mode was on."""


class OutputError(RerankgraphError):
    """An output that cannot be written; the message says where finished work is kept."""
