"""The error hierarchy (``ingestion/errors.py``): whether running a task again can help."""

from __future__ import annotations

import pytest

from ingestion.errors import (
    ConfigError,
    ExtractError,
    LoadError,
    PipelineError,
    SchemaDriftError,
    SourceError,
    StageError,
)

# A lost connection or a timeout can heal; a bad setting or a schema change cannot.
RETRYABLE_BY_DEFAULT = {
    PipelineError: False,
    ConfigError: False,
    SourceError: True,
    StageError: True,
    LoadError: True,
    SchemaDriftError: False,
}
CLASSES = list(RETRYABLE_BY_DEFAULT)
IDS = [cls.__name__ for cls in CLASSES]


@pytest.mark.parametrize("cls", CLASSES, ids=IDS)
def test_each_error_class_has_its_retryable_default(cls: type[PipelineError]) -> None:
    assert cls("table 'nps': something failed").retryable is RETRYABLE_BY_DEFAULT[cls]


@pytest.mark.parametrize("cls", CLASSES, ids=IDS)
def test_retryable_argument_overrides_the_default_of_that_error_only(cls: type[PipelineError]) -> None:
    default = RETRYABLE_BY_DEFAULT[cls]

    overridden = cls("table 'nps': something failed", retryable=not default)

    assert overridden.retryable is not default
    assert cls("table 'nps': another failure").retryable is default
    assert cls.retryable is default


@pytest.mark.parametrize("cls", CLASSES, ids=IDS)
def test_retryable_none_keeps_the_default(cls: type[PipelineError]) -> None:
    assert cls("table 'nps': something failed", retryable=None).retryable is RETRYABLE_BY_DEFAULT[cls]


@pytest.mark.parametrize("cls", CLASSES, ids=IDS)
def test_message_is_the_text_the_user_sees(cls: type[PipelineError]) -> None:
    assert str(cls("table 'nps': primary_key missing", retryable=True)) == "table 'nps': primary_key missing"


def test_every_error_is_a_pipeline_error_and_schema_drift_is_a_load_error() -> None:
    assert all(issubclass(cls, PipelineError) for cls in CLASSES)
    assert issubclass(SchemaDriftError, LoadError)
    assert ExtractError is SourceError  # the extract's errors under their older name
