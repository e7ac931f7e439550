"""The thin adapter between Airflow and the ingestion package.

Only this module imports Airflow, and only inside functions, so the rest of
the package runs (and is tested) without it. Tasks exchange only the manifest
URL through XCom.

Credentials are resolved here, in the task process, when a task runs: from the
``AIRFLOW_CONN_*`` variables, else from Airflow's connection store (metadata
database or a secrets backend), else from the environment's loopback default.
Every password found is registered with Airflow's secrets masker. dbt gets the
warehouse connection the same way (``export_dbt_credentials``), never through
a DAG argument, so nothing secret is in the serialized DAG, a templated field
or XCom.
"""

from __future__ import annotations

import json
import logging
import os
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from ingestion import config, environments, pipeline
from ingestion.connection import Connection
from ingestion.environments import Environment
from ingestion.errors import ConfigError, PipelineError
from ingestion.window import Window

log = logging.getLogger(__name__)

SLACK_WEBHOOK_VARIABLE = "PIPELINE_SLACK_WEBHOOK_URL"
WAREHOUSE_VARIABLE = f"AIRFLOW_CONN_{environments.CONN_IDS['warehouse'].upper()}"


def airflow_connection(conn_id: str) -> Connection | None:
    """A connection from Airflow's store (env vars, metadata DB, secrets backends)."""
    from airflow.exceptions import AirflowNotFoundException
    from airflow.sdk import BaseHook

    try:
        return Connection.from_airflow(BaseHook.get_connection(conn_id))
    except AirflowNotFoundException:
        return None


@contextmanager
def failing_fast() -> Iterator[None]:
    """An error a retry cannot fix (``retryable`` false: bad config, an unmappable type,
    schema drift) fails the task at once; the others (connections, timeouts) are retried."""
    from airflow.sdk.exceptions import AirflowFailException

    try:
        yield
    except PipelineError as exc:
        if exc.retryable:
            raise
        raise AirflowFailException(f"{type(exc).__name__}: {exc}") from exc


def task_environment() -> Environment:
    """The environment as a task sees it, its secrets registered with the masker."""
    environment = environments.resolve(lookup=airflow_connection)
    mask_secrets(environment.source, environment.warehouse, environment.aws)
    return environment


def mask_secrets(*connections: Connection | None) -> None:
    """Register the connections' passwords (and secret-named extras) with Airflow's
    secrets masker, so a stray log line shows ``***`` instead. The password's
    JSON-escaped form too: that is how it appears in ``AIRFLOW_CONN_*`` values."""
    from airflow.sdk.log import mask_secret

    for connection in connections:
        if connection is None:
            continue
        if connection.password:
            mask_secret(connection.password)
            mask_secret(json.dumps(connection.password)[1:-1])
        if connection.extra:
            mask_secret(connection.extra)


def interval(data_interval_start: datetime | None, data_interval_end: datetime | None) -> Window:
    if data_interval_start is None or data_interval_end is None:
        raise ConfigError("the task has no data interval; run it from a DAG run")
    return Window(data_interval_start, data_interval_end)


def extract_table(
    table_name: str, data_interval_start: datetime | None, data_interval_end: datetime | None
) -> str:
    """Extract one table's interval into the stage; return the manifest URL (XCom)."""
    with failing_fast():
        table = config.get_table(table_name)
        window = interval(data_interval_start, data_interval_end)
        return pipeline.run_extract(table, window, task_environment(), catch_up=True).manifest_url


def load_table(
    table_name: str,
    manifest_url: str,
    data_interval_start: datetime | None,
    data_interval_end: datetime | None,
) -> dict[str, Any]:
    """Load the manifest's files into raw_data.<table> in one transaction."""
    with failing_fast():
        table = config.get_table(table_name)
        window = interval(data_interval_start, data_interval_end)
        result = pipeline.run_load(table, manifest_url, window, task_environment())
    return {k: v for k, v in result.as_dict().items() if k != "timings"}


def export_dbt_credentials(context: Any = None) -> None:
    """``pre_execute`` of every dbt task: hand dbt the warehouse connection.

    Resolved now, in the task process, from wherever Airflow keeps
    ``pipeline_warehouse`` (environment variable, metadata database, secrets
    backend), and set as ``AIRFLOW_CONN_PIPELINE_WAREHOUSE`` (JSON form) in this
    process's environment only: Cosmos passes its environment on to dbt, and
    ``profiles.yml`` reads that variable, as it does for ``dbt build`` by hand.
    The operator's templated ``env`` stays untouched, so the password is never
    rendered, serialized or stored; the masker hides it from the logs.
    """
    environment = task_environment()
    os.environ[WAREHOUSE_VARIABLE] = environment.warehouse.to_json()
    os.environ["DBT_TARGET"] = environment.dbt_target


def notify_failure(context: dict[str, Any]) -> None:
    """Failure callback: post to Slack when a webhook is configured, always log."""
    ti = context.get("task_instance")
    dag_run = context.get("dag_run")
    text = (
        f":red_circle: {getattr(ti, 'dag_id', '?')}.{getattr(ti, 'task_id', '?')} failed "
        f"for run {getattr(dag_run, 'run_id', '?')}: {context.get('exception')}"
    )
    log.error(text)
    url = os.environ.get(SLACK_WEBHOOK_VARIABLE)
    if not url:
        return
    if not url.startswith("https://"):
        log.warning("%s must be an https:// URL; not notifying", SLACK_WEBHOOK_VARIABLE)
        return
    request = urllib.request.Request(  # noqa: S310 - https only, checked above
        url, data=json.dumps({"text": text}).encode(), headers={"Content-Type": "application/json"}
    )
    try:
        urllib.request.urlopen(request, timeout=10).close()  # noqa: S310 - operator-configured URL
    except OSError as exc:
        log.warning("Slack notification failed: %s", exc)
