"""Sources: read one table's rows for a window as Arrow record batches.

Every source has the same interface, so :mod:`ingestion.extract` does not
know which database it reads:

* ``columns(table)`` - the table's columns with their declared MySQL types;
* ``read(table, columns, window, batch_rows)`` - an iterator of record batches
  read in one consistent snapshot, with the window bounds as bind parameters.

``SQLiteSource`` is the embedded environment's stand-in for MySQL (its tables
are declared with MySQL types); ``MySQLSource`` lives in ``mysql_source.py``.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

import pyarrow as pa
import pyarrow.compute as pc

from ingestion.config import TableConfig
from ingestion.errors import ExtractError
from ingestion.types import Column, is_temporal
from ingestion.window import Window

ZERO_DATE = r"^0000|^\d{4}-00|^\d{4}-\d{2}-00"


class Source(Protocol):
    def columns(self, table: TableConfig) -> list[Column]: ...

    def read(
        self, table: TableConfig, columns: Sequence[Column], window: Window, batch_rows: int
    ) -> Iterator[pa.RecordBatch]: ...

    def key_is_unique(self, table: TableConfig) -> bool: ...

    def close(self) -> None: ...


def unique_key_in(table: TableConfig, index_columns: Sequence[tuple[str, str]]) -> bool:
    """Is the configured key exactly the columns of one unique index?

    ``index_columns`` lists (index name, column) pairs of the source's unique
    indexes. Then one consistent snapshot holds each key once, and the load
    may skip its dedupe.
    """
    indexes: dict[str, set[str]] = {}
    for index, column in index_columns:
        indexes.setdefault(index, set()).add(column.lower())
    wanted = {c.lower() for c in table.primary_key}
    return any(columns == wanted for columns in indexes.values())


def select_sql(
    table: TableConfig,
    columns: Sequence[Column],
    window: Window,
    qualified_table: str,
    quote: str,
    placeholder: str,
    bound: Any = None,
) -> tuple[str, list[Any]]:
    """The extract query: every row (full refresh) or the cursor window, bounds bound."""
    column_list = ", ".join(f"{quote}{c.name}{quote}" for c in columns)
    sql = f"SELECT {column_list} FROM {qualified_table}"
    params: list[Any] = []
    if table.is_incremental:
        cursor = f"{quote}{table.cursor}{quote}"
        sql += f" WHERE {cursor} >= {placeholder} AND {cursor} < {placeholder}"
        convert = bound or (lambda value: value)
        params = [convert(window.extract_start(table.lookback)), convert(window.end)]
    return sql, params


def to_arrow(values: Sequence[Any], column: Column) -> pa.Array:
    """Convert one column of Python values (as a driver returns them) to Arrow."""
    target = column.arrow_type
    if is_temporal(column):
        if any(isinstance(v, (str, bytes)) for v in values):
            text = pa.array([v.decode() if isinstance(v, bytes) else v for v in values], pa.string())
            zero = pc.fill_null(pc.match_substring_regex(text, ZERO_DATE), False)
            text = pc.if_else(zero, pa.scalar(None, pa.string()), text)
            return cast_column(text, target, column)
        return pa.array(values, target)
    try:
        return pa.array(values, target)
    except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, OverflowError):
        text = pa.array(
            [None if v is None else (v.decode() if isinstance(v, bytes) else str(v)) for v in values],
            pa.string(),
        )
        return cast_column(text, target, column)


def cast_column(text: pa.Array, target: pa.DataType, column: Column) -> pa.Array:
    """Arrow's C++ cast of a column's text, with an error naming the column."""
    try:
        return text.cast(target)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        raise ExtractError(
            f"column {column.name!r} ({column.source_type}): value does not fit {target}: {exc}"
        ) from None


def rows_to_batch(rows: Sequence[tuple], columns: Sequence[Column], schema: pa.Schema) -> pa.RecordBatch:
    by_column = list(zip(*rows, strict=True)) if rows else [() for _ in columns]
    arrays = [to_arrow(values, column) for values, column in zip(by_column, columns, strict=True)]
    return pa.RecordBatch.from_arrays(arrays, schema=schema)


def source_schema(columns: Sequence[Column]) -> pa.Schema:
    """Arrow schema of the source columns; each field remembers its MySQL type."""
    return pa.schema(pa.field(c.name, c.arrow_type, metadata={"source_type": c.source_type}) for c in columns)


def _sqlite_bound(value: datetime) -> str:
    # SQLite compares the stored text: 'YYYY-MM-DD HH:MM:SS', fraction only when set.
    return value.isoformat(sep=" ")


class SQLiteSource:
    """The embedded source: a SQLite file whose tables carry MySQL column types."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        if not self.path.exists():
            raise ExtractError(
                f"source database {self.path} does not exist; generate it with `python -m ingestion generate`"
            )
        self.connection = sqlite3.connect(self.path, isolation_level=None)

    def columns(self, table: TableConfig) -> list[Column]:
        rows = self.connection.execute(f'PRAGMA table_info("{table.source_table}")').fetchall()
        if not rows:
            raise ExtractError(f"table {table.name!r}: source table {table.source_table!r} not found")
        return [Column(name=row[1], source_type=row[2] or "text") for row in rows]

    def key_is_unique(self, table: TableConfig) -> bool:
        info = self.connection.execute(f'PRAGMA table_info("{table.source_table}")').fetchall()
        pairs = [("primary", row[1]) for row in info if row[5] > 0]
        for index in self.connection.execute(f'PRAGMA index_list("{table.source_table}")').fetchall():
            if index[2]:  # unique
                pairs += [
                    (index[1], row[2]) for row in self.connection.execute(f'PRAGMA index_info("{index[1]}")')
                ]
        return unique_key_in(table, pairs)

    def read(
        self, table: TableConfig, columns: Sequence[Column], window: Window, batch_rows: int
    ) -> Iterator[pa.RecordBatch]:
        sql, params = select_sql(
            table, columns, window, f'"{table.source_table}"', '"', "?", bound=_sqlite_bound
        )
        schema = source_schema(columns)
        # A read transaction is one consistent snapshot of the file.
        self.connection.execute("BEGIN")
        try:
            cursor = self.connection.execute(sql, params)
            while rows := cursor.fetchmany(batch_rows):
                yield rows_to_batch(rows, columns, schema)
        finally:
            self.connection.execute("COMMIT")

    def close(self) -> None:
        self.connection.close()
