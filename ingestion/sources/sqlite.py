"""The embedded source: a SQLite file whose tables are declared with MySQL column types."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from datetime import datetime
from pathlib import Path

import pyarrow as pa

from ingestion import keyrange
from ingestion.config import TableConfig
from ingestion.errors import SourceError, first_line
from ingestion.keyrange import KeyRange
from ingestion.sources.base import (
    collector_paused,
    rows_to_batch,
    select_sql,
    source_schema,
    unique_key_in,
)
from ingestion.types import Column
from ingestion.window import Window


def quote(identifier: str) -> str:
    """A double-quoted SQLite identifier: quotes inside are doubled."""
    return '"' + identifier.replace('"', '""') + '"'


def _sqlite_bound(value: datetime) -> str:
    # SQLite compares the stored text: 'YYYY-MM-DD HH:MM:SS', fraction only when set.
    return value.isoformat(sep=" ")


class SQLiteSource:
    """The embedded source: a SQLite file whose tables carry MySQL column types."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        if not self.path.exists():
            raise SourceError(
                f"source database {self.path} does not exist; generate it with `python -m ingestion generate`"
            )
        self.connection = sqlite3.connect(self.path, isolation_level=None)

    def _error(self, table: TableConfig, exc: sqlite3.Error) -> SourceError:
        return SourceError(f"table {table.name!r}: reading {self.path} failed: {first_line(exc)}")

    def columns(self, table: TableConfig) -> list[Column]:
        try:
            rows = self.connection.execute(f"PRAGMA table_info({quote(table.source_table)})").fetchall()
        except sqlite3.Error as exc:
            raise self._error(table, exc) from None
        if not rows:
            raise SourceError(
                f"table {table.name!r}: source table {table.source_table!r} not found in {self.path}; "
                "check source_table in the table config",
                retryable=False,
            )
        return [Column(name=row[1], source_type=row[2] or "text") for row in rows]

    def key_is_unique(self, table: TableConfig) -> bool:
        info = self.connection.execute(f"PRAGMA table_info({quote(table.source_table)})").fetchall()
        pairs = [("primary", row[1]) for row in info if row[5] > 0]
        for index in self.connection.execute(f"PRAGMA index_list({quote(table.source_table)})").fetchall():
            if index[2]:  # unique
                pairs += [
                    (index[1], row[2])
                    for row in self.connection.execute(f"PRAGMA index_info({quote(index[1])})")
                ]
        return unique_key_in(table, pairs)

    def key_boundaries(
        self, table: TableConfig, columns: Sequence[Column], window: Window, chunks: int
    ) -> list[tuple]:
        def query(what: str, sql: str, params: list) -> list[tuple]:
            try:
                return self.connection.execute(sql, params).fetchall()
            except sqlite3.Error as exc:
                raise self._error(table, exc) from None

        key = keyrange.key_columns(table, columns)
        return keyrange.boundaries(
            table, key, window, chunks, qualified_table=quote(table.source_table), quote=quote,
            placeholder="?", query=query, bound=_sqlite_bound,
        )  # fmt: skip

    def read(
        self,
        table: TableConfig,
        columns: Sequence[Column],
        window: Window,
        batch_rows: int,
        key_range: KeyRange | None = None,
    ) -> Iterator[pa.RecordBatch]:
        sql, params = select_sql(
            table, columns, window, quote(table.source_table), quote, "?", _sqlite_bound, key_range
        )
        schema = source_schema(columns)
        # A read transaction is one consistent snapshot of the file.
        self.connection.execute("BEGIN")
        try:
            cursor = self.connection.execute(sql, params)
            while True:
                with collector_paused():
                    rows = cursor.fetchmany(batch_rows)
                    batch = rows_to_batch(rows, columns, schema) if rows else None
                if batch is None:
                    break
                yield batch
        except sqlite3.Error as exc:
            raise self._error(table, exc) from None
        finally:
            self.connection.execute("COMMIT")

    def close(self) -> None:
        self.connection.close()
