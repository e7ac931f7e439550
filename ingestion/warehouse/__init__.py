"""The warehouses: one module per dialect, the load's shared SQL in ``sql``.

The dialect is the warehouse connection's ``conn_type``; ``DIALECTS`` is the
one list of them.
"""

from __future__ import annotations

from ingestion.connection import Connection
from ingestion.errors import ConfigError
from ingestion.warehouse.base import StagedBatch, Warehouse
from ingestion.warehouse.duckdb import DuckDBWarehouse
from ingestion.warehouse.postgres import PostgresWarehouse
from ingestion.warehouse.redshift import RedshiftWarehouse

DIALECTS: dict[str, type[Warehouse]] = {
    cls.dialect: cls for cls in (DuckDBWarehouse, PostgresWarehouse, RedshiftWarehouse)
}
ALIASES = {"postgresql": "postgres"}

__all__ = ["DIALECTS", "StagedBatch", "Warehouse", "dialect_of", "open_warehouse"]


def dialect_of(connection: Connection) -> str:
    dialect = connection.conn_type.lower()
    dialect = ALIASES.get(dialect, dialect)
    if dialect not in DIALECTS:
        raise ConfigError(
            f"warehouse {connection.label}: conn_type {connection.conn_type!r} is not a "
            f"supported warehouse ({', '.join(DIALECTS)})"
        )
    return dialect


def open_warehouse(connection: Connection) -> Warehouse:
    """The warehouse of the connection's dialect."""
    return DIALECTS[dialect_of(connection)](connection)
