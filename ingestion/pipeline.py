"""One table, one window: extract to the stage, then load into the warehouse.

These functions are what the Airflow tasks and the CLI call; they take an
:class:`~ingestion.environments.Environment` and know nothing of Airflow.
"""

from __future__ import annotations

from ingestion.config import TableConfig
from ingestion.environments import Connection, Environment
from ingestion.errors import ConfigError
from ingestion.extract import ExtractResult, extract
from ingestion.load import LoadResult, load, open_warehouse
from ingestion.sources import Source, SQLiteSource
from ingestion.stage import Stage, open_stage
from ingestion.window import Window


def open_source(connection: Connection) -> Source:
    """The source reader for the source connection's type."""
    if connection.conn_type == "sqlite":
        return SQLiteSource(connection.host or "")
    if connection.conn_type == "mysql":
        from ingestion.mysql_source import MySQLSource

        return MySQLSource(connection)
    raise ConfigError(
        f"connection {connection.conn_id!r}: conn_type {connection.conn_type!r} is not a "
        "supported source (mysql, or sqlite for the embedded environment)"
    )


def environment_stage(environment: Environment) -> Stage:
    return open_stage(environment.stage_uri, environment.aws)


def run_extract(table: TableConfig, window: Window, environment: Environment) -> ExtractResult:
    source = open_source(environment.source)
    try:
        return extract(table, window, source, environment_stage(environment))
    finally:
        source.close()


def run_load(table: TableConfig, manifest_url: str, window: Window, environment: Environment) -> LoadResult:
    warehouse = open_warehouse(environment.warehouse)
    return load(table, manifest_url, window, warehouse, environment_stage(environment))


def run_table(
    table: TableConfig, window: Window, environment: Environment
) -> tuple[ExtractResult, LoadResult]:
    extracted = run_extract(table, window, environment)
    return extracted, run_load(table, extracted.manifest_url, window, environment)
