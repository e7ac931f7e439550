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


def test_dbt_tasks_get_the_iam_settings_of_the_redshift_connection(monkeypatch, tmp_path) -> None:
    """``pre_execute`` of a dbt task: a Redshift connection with ``extra.iam`` selects
    dbt-redshift's ``method: iam`` for the cluster its host names, in the AWS
    connection's region; no password anywhere."""
    import json
    import os

    from ingestion.airflow_tasks import export_dbt_credentials
    from ingestion.warehouse.redshift import DBT_VARIABLES

    for name in DBT_VARIABLES:
        monkeypatch.delenv(name, raising=False)

    warehouse = {
        "conn_type": "redshift", "host": "analytics-cluster.abc123.eu-west-1.redshift.amazonaws.com",
        "port": 5439, "login": "dbt_runner", "schema": "analytics", "extra": {"iam": True},
    }  # fmt: skip
    aws = {"conn_type": "aws", "extra": {"region_name": "eu-west-1"}}
    for name, value in {
        "PIPELINE_ENV": "production",
        "PIPELINE_STAGE_URI": str(tmp_path / "stage"),
        "AIRFLOW_CONN_PIPELINE_SOURCE": '{"conn_type": "mysql", "host": "oltp.internal"}',
        "AIRFLOW_CONN_PIPELINE_WAREHOUSE": json.dumps(warehouse),
        "AIRFLOW_CONN_PIPELINE_AWS": json.dumps(aws),
        "DBT_TARGET": "stale",
        "DBT_REDSHIFT_METHOD": "stale",
        "DBT_REDSHIFT_CLUSTER_ID": "stale",
        "DBT_REDSHIFT_REGION": "stale",
    }.items():
        monkeypatch.setenv(name, value)

    export_dbt_credentials({})

    handed = {k: v for k, v in os.environ.items() if k.startswith(("DBT_REDSHIFT_", "DBT_WAREHOUSE_"))}
    assert handed == {
        "DBT_WAREHOUSE_HOST": warehouse["host"],
        "DBT_WAREHOUSE_PORT": "5439",
        "DBT_WAREHOUSE_DATABASE": "analytics",
        "DBT_REDSHIFT_METHOD": "iam",
        "DBT_REDSHIFT_CLUSTER_ID": "analytics-cluster",
        "DBT_REDSHIFT_IS_SERVERLESS": "false",
        "DBT_REDSHIFT_REGION": "eu-west-1",
    }
    assert os.environ["DBT_TARGET"] == "prod"
    assert "password" not in json.loads(os.environ["AIRFLOW_CONN_PIPELINE_WAREHOUSE"])
