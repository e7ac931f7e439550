"""The Airflow adapter: errors a retry cannot fix fail the task at once, the others retry."""

from __future__ import annotations

import pytest
from airflow.sdk.exceptions import AirflowFailException

from ingestion.airflow_tasks import failing_fast
from ingestion.errors import ConfigError, LoadError, SchemaDriftError, SourceError, StageError


@pytest.mark.parametrize(
    "error",
    [
        ConfigError("table 'nps': primary_key missing"),
        SchemaDriftError("table raw_data.nps: column score smallint -> decimal(10, 2)"),
        SourceError("column 'x': MySQL type 'geometry' has no mapping", retryable=False),
        LoadError("connection 'pipeline_warehouse': set extra.iam_role", retryable=False),
    ],
    ids=["config", "schema-drift", "unmappable-type", "missing-setting"],
)
def test_an_error_a_retry_cannot_fix_fails_the_task_without_retrying(error: Exception) -> None:
    with pytest.raises(AirflowFailException, match=type(error).__name__) as raised:
        with failing_fast():
            raise error
    assert raised.value.__cause__ is error


@pytest.mark.parametrize(
    "error",
    [
        SourceError("source connection 'pipeline_source': cannot connect to MySQL"),
        StageError("cannot reach S3 at http://127.0.0.1:5555"),
        LoadError("table raw_data.nps: load failed, nothing changed: server closed the connection"),
        ConnectionResetError("connection reset by peer"),
    ],
    ids=["source-connection", "stage", "load", "not-ours"],
)
def test_connection_errors_are_raised_as_they_are_so_airflow_retries(error: Exception) -> None:
    with pytest.raises(type(error)) as raised:
        with failing_fast():
            raise error
    assert raised.value is error
