"""Errors a user sees: one hierarchy, each naming the table, row or setting at fault.

``retryable`` tells the orchestrator whether running the task again can help:
a lost connection or a timeout can heal, a bad setting or a schema change that
needs a decision cannot (Airflow then fails the task without retrying).
"""

from __future__ import annotations


class PipelineError(Exception):
    """Base class of every error this package raises on purpose."""

    retryable = False

    def __init__(self, message: str, *, retryable: bool | None = None) -> None:
        super().__init__(message)
        if retryable is not None:
            self.retryable = retryable


class ConfigError(PipelineError):
    """The table config, a connection or an environment setting is invalid."""


class SourceError(PipelineError):
    """Reading the source database failed (connection errors may heal: retryable)."""

    retryable = True


class StageError(PipelineError):
    """Writing or reading the stage (folder or S3) failed."""

    retryable = True


class LoadError(PipelineError):
    """Loading a staged batch into the warehouse failed; nothing was changed."""

    retryable = True


class SchemaDriftError(LoadError):
    """The source's columns changed in a way that needs a decision; nothing was changed."""

    retryable = False


def first_line(exc: BaseException) -> str:
    """The first non-empty line of an error's message (drivers add hints, context and
    query dumps on further lines), or the error's class name when it says nothing."""
    for line in str(exc).splitlines():
        if line.strip():
            return line.strip()
    return type(exc).__name__


# The extract's errors before sources and stage had names of their own.
ExtractError = SourceError
