"""The source's server-side query timeout: the server stops a query that runs too long.

A runaway extract (a missing index, a window far wider than usual, a lock the read
waits on) would otherwise hold a connection and a snapshot on the OLTP database for
hours. Every statement of a source connection runs under a session limit, set when
the connection opens from ``extra.query_timeout`` of the source connection (seconds,
default :data:`DEFAULT_SECONDS`; 0 turns it off):

* MariaDB: ``max_statement_time`` (seconds, any statement);
* MySQL 5.7.8+: ``max_execution_time`` (milliseconds, read-only ``SELECT``, which is
  every query of an extract).

The server says which it is in its version string. A query stopped by the limit fails
with a :class:`SourceError` naming the table and the setting; it is retryable (the
load on the source may have passed), and the cure for a table that keeps hitting it is
a higher limit or ``chunks: N`` (smaller queries).
"""

from __future__ import annotations

from ingestion.connection import Connection
from ingestion.errors import ConfigError, SourceError

DEFAULT_SECONDS = 3600.0
SETTING = "query_timeout"
#: MariaDB's ER_STATEMENT_TIMEOUT and MySQL's ER_QUERY_TIMEOUT.
TIMEOUT_ERRORS = {1969, 3024}


def seconds(connection: Connection) -> float:
    """The connection's query timeout in seconds (0: none)."""
    value = (connection.extra or {}).get(SETTING, DEFAULT_SECONDS)
    try:
        limit = float(value)
    except (TypeError, ValueError):
        limit = -1.0
    if isinstance(value, bool) or not limit >= 0:
        raise ConfigError(
            f"{connection.label}: extra.{SETTING} {value!r} must be a number of seconds (0: no limit)"
        )
    return limit


def session_sql(server_version: str, limit: float) -> str:
    """The statement that limits every later statement of the session."""
    if "mariadb" in server_version.lower():
        return f"SET SESSION max_statement_time = {limit:.3f}"
    return f"SET SESSION max_execution_time = {round(limit * 1000)}"


def error(table: str, doing: str, connection: Connection) -> SourceError:
    """The error of a query the server stopped at the limit."""
    return SourceError(
        f"table {table!r}: {doing} stopped by the source's query timeout "
        f"({seconds(connection):g} s, extra.{SETTING} of {connection.setting}); raise the limit, "
        "or split the table's extract with chunks: N in the table config",
        retryable=True,
    )
