"""The sources: ``base`` (the interface and what they share), ``sqlite``, ``mysql``."""

from __future__ import annotations

from ingestion.connection import Connection
from ingestion.errors import ConfigError
from ingestion.sources.base import Source

__all__ = ["Source", "open_source"]


def open_source(connection: Connection) -> Source:
    """The source reader for the source connection's type."""
    if connection.conn_type == "sqlite":
        from ingestion.sources.sqlite import SQLiteSource

        return SQLiteSource(connection.host or "")
    if connection.conn_type == "mysql":
        from ingestion.sources.mysql import MySQLSource

        return MySQLSource(connection)
    raise ConfigError(
        f"source {connection.label}: conn_type {connection.conn_type!r} is not a "
        "supported source (mysql, or sqlite for the embedded environment)"
    )
