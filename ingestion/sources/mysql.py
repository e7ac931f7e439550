"""The MySQL (and MariaDB) source: stream one table's window into Arrow record batches.

* One consistent snapshot: ``REPEATABLE READ`` and ``START TRANSACTION WITH CONSISTENT
  SNAPSHOT, READ ONLY`` (no lock taken); session time zone ``+00:00``, ``utf8mb4``.
* Bound window: the query from :func:`ingestion.sources.base.select_sql` with ``%s``
  placeholders; identifiers quoted with backticks (doubled inside); the connection runs
  one statement per call (no multi-statement flag).
* Unbuffered and bounded: ``SSCursor`` streams the result; every column arrives as raw
  ``bytes`` (mysqlclient's C fast path, no Python call per value), chunks of rows become
  one Arrow ``struct<binary, ...>`` array each, and Arrow's C++ casts give every column
  its exact type (``decimal128`` from the decimal text, timestamps from their text).
  Zero dates fail the cast and become NULL. Memory is one batch (capped by rows and bytes).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import MySQLdb
import MySQLdb.converters
import MySQLdb.cursors
import pyarrow as pa
import pyarrow.compute as pc

from ingestion import keyrange
from ingestion.config import TableConfig
from ingestion.environments import Connection
from ingestion.errors import SourceError, first_line
from ingestion.keyrange import KeyRange
from ingestion.sources import timeout
from ingestion.sources.base import ZERO_DATE, cast_column, select_sql, source_schema, unique_key_in
from ingestion.types import Column, parse_type
from ingestion.window import Window

# Rows per fetchmany call, and the size a chunk aims for when rows are wide.
CHUNK_ROWS = 2_000
CHUNK_BYTES = 1 << 20
# A yielded batch holds at most batch_rows rows and about this many bytes of raw values
# (the converted batch is smaller; the extract holds a few of these at once: the raw
# chunks and their concatenation, the converted batch, the one being written).
BATCH_BYTES = 4 << 20
# Seconds the server waits for the client to take more of the streamed result.
NET_WRITE_TIMEOUT = 3600

# Encoders (Python value -> SQL literal) of mysqlclient for the bound parameters, and
# every MySQL field type decoded as raw bytes: mysqlclient's C fast path, no Python call
# (with use_unicode=False, text columns too).
CONVERSIONS: dict[Any, Any] = {
    key: value for key, value in MySQLdb.converters.conversions.items() if not isinstance(key, int)
}
CONVERSIONS.update({field_type: bytes for field_type in range(256)})

_NULL_STRING = pa.scalar(None, pa.string())
# MySQL's "access denied" errors: a retry cannot help.
ACCESS_DENIED = {1044, 1045, 1698}


def quote(identifier: str) -> str:
    """A backtick-quoted MySQL identifier: backticks inside are doubled."""
    return "`" + identifier.replace("`", "``") + "`"


def _formatted(identifier: str) -> str:
    """``quote`` for a statement run with parameters: mysqlclient fills them in with
    Python's ``%`` formatting (always, as the extract query passes a list even when
    empty), so a ``%`` in a name is doubled as well."""
    return quote(identifier).replace("%", "%%")


class MySQLSource:
    """A MySQL/MariaDB database read through one connection (Airflow ``mysql`` connection)."""

    def __init__(self, connection: Connection, *, default_schema: str | None = None) -> None:
        self.connection = connection
        self.default_schema = default_schema or connection.schema
        self._db: Any = None

    # -- connection ---------------------------------------------------------------------------

    def _connect(self) -> Any:
        if self._db is not None:
            return self._db
        conn = self.connection
        extra = conn.extra or {}
        options: dict[str, Any] = {
            "host": conn.host or "127.0.0.1",
            "port": int(conn.port or 3306),
            "user": conn.login or "",
            "password": conn.password or "",
            "charset": "utf8mb4",
            "use_unicode": False,  # text arrives as utf8mb4 bytes, validated by Arrow's cast
            "conv": CONVERSIONS,
            "autocommit": False,
            "multi_statements": False,  # one statement per call, whatever a name holds
            "connect_timeout": conn.extra_int("connect_timeout", 30),
        }
        if extra.get("unix_socket"):
            options["unix_socket"] = extra["unix_socket"]
        if extra.get("ssl"):
            options["ssl"] = extra["ssl"]
        try:
            db = MySQLdb.connect(**options)
        except MySQLdb.Error as exc:
            code = exc.args[0] if exc.args and isinstance(exc.args[0], int) else None
            denied = code in ACCESS_DENIED
            hint = (
                "check login and password" if denied else "check that MySQL runs there and the host and port"
            )
            raise SourceError(
                f"source {conn.label}: cannot connect to MySQL at {options['host']}:{options['port']} "
                f"as {options['user']!r}: {mysql_message(exc)}; {hint} of {conn.setting}",
                retryable=not denied,
            ) from None
        cursor = db.cursor()
        cursor.execute("SET SESSION time_zone = '+00:00'")
        cursor.execute(f"SET SESSION net_write_timeout = {NET_WRITE_TIMEOUT}")
        cursor.execute("SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        if timeout.seconds(conn):
            cursor.execute(timeout.session_sql(db.get_server_info(), timeout.seconds(conn)))
        cursor.close()
        self._db = db
        return db

    def _discard(self) -> None:
        """Drop the connection (e.g. with an unread streaming result); reconnect on next use."""
        db, self._db = self._db, None
        if db is not None:
            try:
                db.close()
            except MySQLdb.Error:
                pass

    def close(self) -> None:
        self._discard()

    # -- Source protocol ------------------------------------------------------------------------

    def schema_of(self, table: TableConfig) -> str:
        schema = table.source_schema or self.default_schema
        if not schema:
            raise SourceError(
                f"table {table.name!r}: no source schema; set source_schema in the table config "
                f"or the database (schema) of connection {self.connection.conn_id!r}"
            )
        return schema

    def _catalog(self, table: TableConfig, what: str, sql: str, params: tuple) -> list[tuple]:
        """One information_schema query, with an error naming the table and what was read."""
        db = self._connect()
        cursor = db.cursor()
        try:
            cursor.execute(sql, params)
            rows = cursor.fetchall()
            db.rollback()
        except MySQLdb.Error as exc:
            self._discard()
            raise self._error(table.name, f"reading its {what}", exc) from None
        finally:
            cursor.close()
        return [tuple(_text(value) for value in row) for row in rows]

    def columns(self, table: TableConfig) -> list[Column]:
        schema = self.schema_of(table)
        rows = self._catalog(
            table,
            "columns",
            "SELECT COLUMN_NAME, COLUMN_TYPE FROM information_schema.COLUMNS "
            "WHERE TABLE_SCHEMA = %s AND TABLE_NAME = %s ORDER BY ORDINAL_POSITION",
            (schema, table.source_table),
        )
        if not rows:
            known = self._catalog(
                table,
                "database",
                "SELECT 1 FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = %s",
                (schema,),
            )
            if not known:
                raise SourceError(
                    f"table {table.name!r}: MySQL database {schema!r} does not exist on "
                    f"{self.connection.host}; check source_schema in the table config or the "
                    f"schema of {self.connection.setting}",
                    retryable=False,
                )
            raise SourceError(
                f"table {table.name!r}: source table {table.source_table!r} not found in MySQL "
                f"database {schema!r} ({self.connection.setting}); check source_table "
                "and source_schema in the table config",
                retryable=False,
            )
        return [Column(name=name, source_type=kind) for name, kind in rows]

    def _error(self, table: str, doing: str, exc: MySQLdb.Error) -> SourceError:
        """A failed query as an error naming the table; the query timeout said as such."""
        if exc.args and exc.args[0] in timeout.TIMEOUT_ERRORS:
            return timeout.error(table, doing, self.connection)
        return SourceError(f"table {table!r}: {doing} failed: {mysql_message(exc)}")

    def key_boundaries(
        self, table: TableConfig, columns: Sequence[Column], window: Window, chunks: int
    ) -> list[tuple]:
        qualified = f"{_formatted(self.schema_of(table))}.{_formatted(table.source_table)}"
        return keyrange.boundaries(
            table, keyrange.key_columns(table, columns), window, chunks, qualified_table=qualified,
            quote=_formatted, placeholder="%s",
            query=lambda what, sql, params: self._catalog(table, what, sql, tuple(params)),
        )  # fmt: skip

    def key_is_unique(self, table: TableConfig) -> bool:
        """True when the configured primary key is the source's primary or a unique key."""
        rows = self._catalog(
            table,
            "keys",
            "SELECT INDEX_NAME, COLUMN_NAME FROM information_schema.STATISTICS "
            "WHERE TABLE_SCHEMA = %s AND TABLE_NAME = %s AND NON_UNIQUE = 0",
            (self.schema_of(table), table.source_table),
        )
        return unique_key_in(table, rows)

    def read(
        self,
        table: TableConfig,
        columns: Sequence[Column],
        window: Window,
        batch_rows: int,
        key_range: KeyRange | None = None,
    ) -> Iterator[pa.RecordBatch]:
        schema = source_schema(columns)
        qualified = f"{_formatted(self.schema_of(table))}.{_formatted(table.source_table)}"
        sql, params = select_sql(table, columns, window, qualified, _formatted, "%s", key_range=key_range)
        raw_type = pa.struct([pa.field(c.name, pa.binary()) for c in columns])
        converters = [_converter(column) for column in columns]
        batch_rows = max(1, int(batch_rows))

        db = self._connect()
        cursor = db.cursor(MySQLdb.cursors.SSCursor)
        try:
            cursor.execute("START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY")
            cursor.execute(sql, list(params))  # always formatted, even when empty: see _formatted
        except MySQLdb.Error as exc:
            self._discard()
            raise self._error(table.name, "the extract query", exc) from None

        def failed(exc: MySQLdb.Error) -> SourceError:
            return self._error(table.name, "reading rows", exc)

        batches = _batches(cursor, failed, raw_type, converters, schema, batch_rows)
        finished = False
        try:
            yield from batches
            finished = True
        finally:
            batches.close()
            if finished:
                try:
                    cursor.close()
                    db.commit()  # ends the read-only snapshot transaction
                except MySQLdb.Error:
                    self._discard()
            else:
                # The streamed result was not read to the end (the consumer stopped or an
                # error): the connection cannot run another statement before it is, so it is
                # dropped rather than drained.
                self._discard()


def _batches(
    cursor: Any,
    failed: Any,
    raw_type: pa.StructType,
    converters: list,
    schema: pa.Schema,
    batch_rows: int,
) -> Iterator[pa.RecordBatch]:
    """Fetch chunks of rows as struct<binary...> arrays; convert them in batches."""
    pending: list[pa.StructArray] = []
    pending_rows = pending_bytes = 0
    chunk_rows = 1  # probe the row width before taking big chunks
    while True:
        try:
            rows = cursor.fetchmany(min(chunk_rows, batch_rows - pending_rows))
        except MySQLdb.Error as exc:
            raise failed(exc) from None
        more = bool(rows)
        if more:
            chunk = pa.array(rows, raw_type)
            rows = None
            pending.append(chunk)
            pending_rows += len(chunk)
            pending_bytes += chunk.nbytes
            chunk_rows = max(1, min(CHUNK_ROWS, CHUNK_BYTES * len(chunk) // max(1, chunk.nbytes)))
            if pending_rows < batch_rows and pending_bytes < BATCH_BYTES:
                continue
        if pending:
            raw = pa.concat_arrays(pending) if len(pending) > 1 else pending[0]
            pending, pending_rows, pending_bytes = [], 0, 0
            yield _to_batch(raw, converters, schema)
        if not more:
            return


def mysql_message(exc: BaseException) -> str:
    """A MySQLdb error as one line: ``MySQL error 1045: Access denied ...``."""
    args = getattr(exc, "args", ())
    if len(args) >= 2 and isinstance(args[0], int):
        return f"MySQL error {args[0]}: {first_line(args[1])}"
    return first_line(exc)


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, (bytes, bytearray)) else str(value)


def _converter(column: Column):
    """A function: binary array of the column's MySQL text values -> its Arrow array."""
    target = column.arrow_type
    base = parse_type(column.source_type, column.name)[0]
    if pa.types.is_binary(target):
        return lambda raw: raw
    if pa.types.is_string(target):
        return lambda raw: cast_column(raw, target, column)
    if base == "bit":
        return lambda raw: pa.array(
            [None if v is None else int.from_bytes(v, "big") for v in raw.to_pylist()], target
        )
    if pa.types.is_timestamp(target) or pa.types.is_date32(target):
        return lambda raw: _temporal(raw.view(pa.string()), target, column)
    return lambda raw: cast_column(raw, target, column)


def _temporal(text: pa.Array, target: pa.DataType, column: Column) -> pa.Array:
    try:
        return text.cast(target)
    except pa.ArrowInvalid:
        pass  # zero dates ('0000-00-00', a zero month or day) become NULL
    zero = pc.fill_null(pc.match_substring_regex(text, ZERO_DATE), False)
    return cast_column(pc.if_else(zero, _NULL_STRING, text), target, column)


def _to_batch(raw: pa.StructArray, converters: list, schema: pa.Schema) -> pa.RecordBatch:
    arrays = [convert(values) for convert, values in zip(converters, raw.flatten(), strict=True)]
    return pa.RecordBatch.from_arrays(arrays, schema=schema)
