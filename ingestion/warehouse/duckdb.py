"""DuckDB (the embedded environment's warehouse): a local file, loaded with ``read_parquet``."""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any

from ingestion.errors import LoadError
from ingestion.warehouse import duckdb_path
from ingestion.warehouse.base import StagedBatch, Warehouse
from ingestion.warehouse.sql import quote

log = logging.getLogger(__name__)


class DuckDBWarehouse(Warehouse):
    dialect = "duckdb"
    loads_into_target = True

    @property
    def path(self) -> str:
        return duckdb_path(self.connection)

    def connect(self) -> Any:
        import duckdb

        try:
            return duckdb.connect(self.path)
        except duckdb.Error as exc:
            raise LoadError(
                f"connection {self.connection.conn_id!r}: cannot open {self.path}: {exc}"
            ) from None

    def create_database(self) -> str:
        Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        return f"warehouse: DuckDB file {self.path}"

    @staticmethod
    def _params(sql: str, params: dict | None) -> tuple[str, dict | None]:
        """The shared SQL's pyformat template in DuckDB's terms: ``%(name)s`` becomes
        ``$name`` and ``%%`` (a ``%`` of a quoted name) becomes ``%``, in one pass."""
        if params:
            sql = re.sub(r"%\((\w+)\)s|%%", lambda m: f"${m.group(1)}" if m.group(1) else "%", sql)
        return sql, params

    def execute(self, cursor: Any, sql: str, params: dict | None = None) -> int:
        log.debug("%s", sql)
        sql, params = self._params(sql, params)
        cursor.execute(sql, params) if params else cursor.execute(sql)
        if sql.lstrip().lower().startswith(("insert", "delete", "update")):
            return int(cursor.fetchone()[0])
        return -1

    def scalar(self, cursor: Any, sql: str, params: dict | None = None) -> Any:
        sql, params = self._params(sql, params)
        return cursor.execute(sql, params).fetchone()[0]

    def begin(self, db: Any) -> None:
        db.execute("begin transaction")

    def cursor(self, db: Any) -> Any:
        # DuckDB's cursor() is a separate connection with its own transaction.
        return db

    def fetch_all(self, cursor: Any, sql: str, params: dict | None = None) -> list[tuple]:
        sql, params = self._params(sql, params)
        return cursor.execute(sql, params).fetchall()

    # ``information_schema.columns``' answer read from ``duckdb_columns()``, the table
    # function that view selects from (the view costs a few milliseconds more per query).
    column_types_sql = (
        "select column_name, data_type, character_maximum_length, numeric_precision, numeric_scale\n"
        "from duckdb_columns()\n"
        "where database_name = current_database() and schema_name = %(schema)s\n"
        "    and table_name = %(table)s\norder by column_index"
    )

    def normalize_type(
        self, data_type: str, length: int | None, precision: int | None, scale: int | None
    ) -> str:
        """DuckDB spells ``DECIMAL(8,2)``, ``FLOAT`` (real), ``DOUBLE``; its VARCHAR has no length."""
        data_type = data_type.lower()
        if data_type.startswith("decimal"):
            return f"decimal({precision}, {scale})"
        return {"float": "real", "double": "double precision"}.get(data_type, data_type)

    def bulk_load(self, cursor: Any, into: str, batch: StagedBatch) -> int:
        if not batch.stage.is_local:
            raise LoadError("the DuckDB warehouse loads from a local-folder stage only", retryable=False)
        # The file list is a bound parameter too: a path never becomes SQL text.
        paths = [batch.stage.path(entry.url) for entry in batch.manifest.entries]
        select_list = [quote(c) for c in batch.file_columns] + ["?"] * len(batch.constants)
        # Without insertion order the insert appends the files' row groups in parallel, in
        # any order (nothing reads a raw table's rows in file order: the merge orders by
        # cursor, extract and values). A setting of this connection only, for this statement
        # (after a failure the load rolls back and closes the connection).
        cursor.execute("set session preserve_insertion_order = false")
        cursor.execute(
            f"insert into {into} ({', '.join(quote(c) for c in batch.target_columns)})\n"
            f"select {', '.join(select_list)} from read_parquet(?)",
            [*(value.as_py() for value in batch.constants.values()), paths],
        )
        loaded = int(cursor.fetchone()[0])
        cursor.execute("reset session preserve_insertion_order")
        return loaded
