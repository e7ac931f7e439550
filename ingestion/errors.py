"""Errors a user sees. Each names the table, row or setting that is wrong."""


class PipelineError(Exception):
    """Base class of every error this package raises on purpose."""


class ConfigError(PipelineError):
    """The table config or an environment setting is invalid."""


class ExtractError(PipelineError):
    """Reading the source or writing the stage failed."""


class LoadError(PipelineError):
    """Loading a staged batch into the warehouse failed; nothing was changed."""
