"""The thin adapter between Airflow and the ingestion package.

Only this module imports Airflow, and only inside functions, so the rest of
the package runs (and is tested) without it. Tasks exchange only the manifest
URL through XCom. The DAG file imports this module on every parse: the modules
that do the work (``pipeline``, ``chunks``, ``retention`` and the readers and
writers behind them) are imported inside the task functions, when a task runs.

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
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from ingestion import config, environments, lineage
from ingestion.connection import Connection
from ingestion.environments import Environment
from ingestion.errors import ConfigError, PipelineError
from ingestion.window import Window

log = logging.getLogger(__name__)

#: The Airflow pool of every task that reads the source (plan, extract, chunks): its
#: slots cap the source connections the DAG opens at once. ``make demo`` creates it
#: with ``PIPELINE_SOURCE_POOL_SLOTS`` slots (default 2).
SOURCE_POOL = "pipeline_source"

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


#: ``dag_run.run_type`` of the runs ``airflow backfill create`` makes.
BACKFILL_RUN_TYPE = "backfill"


def extract_table(
    table_name: str,
    data_interval_start: datetime | None,
    data_interval_end: datetime | None,
    run_type: str | None = None,
) -> str:
    """Extract one table's interval into the stage; return the manifest URL (XCom).

    A scheduled or manual run catches up missed intervals; a backfill run reads its own
    interval only: the backfill asked for exactly those intervals."""
    from ingestion import pipeline

    with failing_fast():
        table = config.get_table(table_name)
        window = interval(data_interval_start, data_interval_end)
        environment = task_environment()
        catch_up = run_type != BACKFILL_RUN_TYPE
        manifest_url = pipeline.run_extract(table, window, environment, catch_up=catch_up).manifest_url
    lineage.report_extract(environment, table)
    return manifest_url


def plan_table_chunks(
    table_name: str, data_interval_start: datetime | None, data_interval_end: datetime | None
) -> list[dict[str, Any]]:
    """Split a chunked table's interval into key ranges: one small JSON value per chunk
    (XCom), each the argument of one mapped extract task."""
    from ingestion import pipeline

    with failing_fast():
        table = config.get_table(table_name)
        window = interval(data_interval_start, data_interval_end)
        planned = pipeline.plan_chunks(table, window, task_environment())
    return [chunk.to_json() for chunk in planned]


def extract_table_chunk(table_name: str, chunk: dict[str, Any]) -> str:
    """Extract one chunk of a chunked table; return its manifest URL (XCom)."""
    from ingestion import chunks, pipeline

    with failing_fast():
        table = config.get_table(table_name)
        environment = task_environment()
        manifest_url = pipeline.run_chunk(table, chunks.Chunk.from_json(chunk), environment).manifest_url
    lineage.report_extract(environment, table)
    return manifest_url


def load_table(
    table_name: str,
    manifest_url: str | Sequence[str],
    data_interval_start: datetime | None,
    data_interval_end: datetime | None,
) -> dict[str, Any]:
    """Load the manifest's files into raw_data.<table> in one transaction; given the
    manifests of a chunked extract's chunks, all of them, through one combined manifest."""
    from ingestion import chunks, pipeline

    with failing_fast():
        table = config.get_table(table_name)
        window = interval(data_interval_start, data_interval_end)
        environment = task_environment()
        if not isinstance(manifest_url, str):
            stage = pipeline.environment_stage(environment)
            # A slice reads the mapped tasks' XComs in one request (iterating asks for
            # one more item than there are, and logs an error when it is missing).
            manifest_url = chunks.combine(table, stage, list(manifest_url[:]))
        result = pipeline.run_load(table, manifest_url, window, environment)
    lineage.report_load(environment, table, result)
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
    warehouse = environment.warehouse
    os.environ[WAREHOUSE_VARIABLE] = warehouse.to_json()
    os.environ["DBT_TARGET"] = environment.dbt_target
    # The same host, port and database as plain values (no secret), which
    # profiles.yml reads first: OpenLineage's dbt reader, which names the models'
    # datasets, renders profiles.yml without dbt's fromjson().
    for name, value in {"HOST": warehouse.host, "PORT": warehouse.port, "DATABASE": warehouse.schema}.items():
        os.environ.pop(f"DBT_WAREHOUSE_{name}", None)
        if value:
            os.environ[f"DBT_WAREHOUSE_{name}"] = str(value)
    # The target's settings the connection implies (Redshift's extra.iam: method iam).
    os.environ.update(environment.dbt_variables())


#: Set to an age (e.g. ``7d``) to end every DAG run with the ``clean_stage`` task;
#: unset (the default), the DAG has no such task.
STAGE_RETENTION_VARIABLE = "PIPELINE_STAGE_RETENTION"


def stage_retention() -> str | None:
    """The DAG's stage retention (``PIPELINE_STAGE_RETENTION``), checked when the DAG
    file is parsed, so a bad value is an import error naming it; None when unset."""
    value = os.environ.get(STAGE_RETENTION_VARIABLE, "").strip()
    if not value:
        return None
    from ingestion import retention

    try:
        retention.parse_age(value)
    except ConfigError:
        raise ConfigError(
            f"{STAGE_RETENTION_VARIABLE}={value!r} is not a duration: use e.g. 7d, 12h or 30m, "
            "or unset it to keep every staged attempt"
        ) from None
    return value


def clean_stage(older_than: str) -> str:
    """Remove the staged attempts older than ``older_than`` that no load needs any more
    (``python -m ingestion stage-clean``'s rules); log each decision, return the summary."""
    from ingestion import retention

    with failing_fast():
        report = retention.clean_environment(task_environment(), retention.parse_age(older_than))
    for line in report.lines():
        log.info("stage retention: %s", line)
    return report.lines()[-1]
