"""The warehouses: one module per dialect, the load's shared SQL in ``sql``.

The dialect is the warehouse connection's ``conn_type``; ``DIALECTS`` is the
one list of them. A dialect's module (and pyarrow and the driver behind it) is
imported when a warehouse of that dialect is opened, not with this package: the
DAG file names the dbt target and each model's Asset (``dialect_of``,
``asset_uri``) on every parse.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ingestion.connection import Connection
from ingestion.errors import ConfigError

if TYPE_CHECKING:
    from ingestion.warehouse.base import StagedBatch, Warehouse

#: dialect -> (module, class) of its warehouse.
CLASSES = {
    "duckdb": ("ingestion.warehouse.duckdb", "DuckDBWarehouse"),
    "postgres": ("ingestion.warehouse.postgres", "PostgresWarehouse"),
    "redshift": ("ingestion.warehouse.redshift", "RedshiftWarehouse"),
}
#: The port of the dialect's server when the connection names none.
DEFAULT_PORTS = {"postgres": 5432, "redshift": 5439}
ALIASES = {"postgresql": "postgres"}

__all__ = ["DIALECTS", "StagedBatch", "Warehouse", "asset_uri", "dialect_of", "open_warehouse"]


def dialect_of(connection: Connection) -> str:
    dialect = connection.conn_type.lower()
    dialect = ALIASES.get(dialect, dialect)
    if dialect not in CLASSES:
        raise ConfigError(
            f"warehouse {connection.label}: conn_type {connection.conn_type!r} is not a "
            f"supported warehouse ({', '.join(CLASSES)})"
        )
    return dialect


def warehouse_class(dialect: str) -> type[Warehouse]:
    module, name = CLASSES[dialect]
    return getattr(importlib.import_module(module), name)


def open_warehouse(connection: Connection) -> Warehouse:
    """The warehouse of the connection's dialect."""
    return warehouse_class(dialect_of(connection))(connection)


def duckdb_path(connection: Connection) -> str:
    if not connection.host:
        raise ConfigError(f"connection {connection.conn_id!r}: host (DuckDB file path) missing")
    return connection.host


def asset_uri(connection: Connection, schema: str, table: str, dialect: str | None = None) -> str:
    """The table's Airflow Asset URI in the providers' form
    (``<dialect>://host:port/database/schema/table``), which OpenLineage reads as
    namespace ``<dialect>://host:port`` and name ``database.schema.table``; DuckDB's is
    ``duckdb://<absolute file path>/<schema>/<table>`` (the file is the database). No secret."""
    dialect = dialect or dialect_of(connection)
    if dialect == "duckdb":
        return f"duckdb://{Path(duckdb_path(connection)).resolve()}/{schema}/{table}"
    c = connection
    return f"{dialect}://{c.host}:{c.port or DEFAULT_PORTS.get(dialect)}/{c.schema}/{schema}/{table}"


def __getattr__(name: str) -> Any:
    """``DIALECTS`` (dialect -> class), ``StagedBatch`` and ``Warehouse``, imported on first use."""
    if name == "DIALECTS":
        return {dialect: warehouse_class(dialect) for dialect in CLASSES}
    if name in ("StagedBatch", "Warehouse"):
        from ingestion.warehouse import base

        return getattr(base, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
