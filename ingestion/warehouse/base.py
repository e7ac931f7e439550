"""What every warehouse dialect answers: connecting, types, DDL, locking, bulk-loading.

A dialect is a subclass of :class:`Warehouse`; the load (``ingestion/load.py``)
talks to one instance and never asks which dialect it is.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from ingestion.batch import BATCH_ID, BATCH_ID_LENGTH, LOAD_COLUMNS
from ingestion.config import TableConfig
from ingestion.connection import Connection
from ingestion.errors import LoadError
from ingestion.progress import Progress
from ingestion.stage import Manifest, Stage
from ingestion.types import Column
from ingestion.warehouse.sql import alter_column_type_sql, quote, target_table

log = logging.getLogger(__name__)

# Rows of the record batches the bulk-load reads from a staged file (slices of its row
# groups): what a dialect that streams the rows holds at once (PostgreSQL renders each
# into binary COPY rows, with temporaries a few times its size), whatever the extract's
# batch size.
READ_BATCH_ROWS = 16_384


@dataclass(frozen=True)
class StagedBatch:
    """One extract attempt as the bulk-load sees it.

    ``constants`` are columns with one value for every row (the load metadata),
    by column name: they are sent once, not read from the files per row.
    ``progress`` counts the rows :meth:`record_batches` yields (and logs them now and then).
    """

    manifest: Manifest
    stage: Stage
    columns: Sequence[str]
    constants: dict[str, pa.Scalar]
    progress: Progress | None = None

    @property
    def file_columns(self) -> list[str]:
        """The columns read from the Parquet files."""
        return [c for c in self.columns if c not in self.constants]

    @property
    def target_columns(self) -> list[str]:
        """Every column the bulk-load fills, in the order it sends them."""
        return [*self.file_columns, *self.constants]

    def record_batches(self) -> Iterator[pa.RecordBatch]:
        """The manifest's rows of the file columns, one Parquet row group at a time, in
        slices of ``READ_BATCH_ROWS``."""
        for entry in self.manifest.entries:
            parquet = self.stage.open_parquet(entry.url)
            try:
                for index in range(parquet.num_row_groups):
                    group = parquet.read_row_group(index, columns=self.file_columns)
                    for batch in group.to_batches(max_chunksize=READ_BATCH_ROWS):
                        if self.progress is not None:
                            self.progress.add(batch.num_rows, batch.nbytes)
                        yield batch
                    group = None  # the row group goes before the next one is read
            finally:
                # The part's read window goes before the next part opens.
                parquet.close(force=True)


@dataclass(frozen=True)
class View:
    """A view (or materialized view) to drop and create again around a column type change."""

    schema: str
    name: str
    definition: str
    materialized: bool = False

    @property
    def qualified(self) -> str:
        return f"{quote(self.schema)}.{quote(self.name)}"

    def drop_sql(self) -> str:
        return f"drop {'materialized view' if self.materialized else 'view'} {self.qualified}"

    def create_sql(self) -> str:
        kind = "materialized view" if self.materialized else "view"
        return f"create {kind} {self.qualified} as\n{self.definition.strip().rstrip(';')}"


class Warehouse:
    """A warehouse connection. Subclasses answer every dialect question."""

    #: The connection ``conn_type`` (and dbt adapter) of the dialect.
    dialect = ""
    #: Whether ``bulk_load`` can fill the target itself, constant columns included.
    loads_into_target = False

    #: The port of the dialect's server when the connection names none.
    default_port: int | None = None

    def __init__(self, connection: Connection) -> None:
        self.connection = connection

    def dbt_variables(self, aws: Connection | None) -> dict[str, str]:
        """Settings of this dialect's dbt target that ``profiles.yml`` reads from plain
        variables (no secret), derived from the connection (and the AWS one); none here."""
        return {}

    def asset_uri(self, schema: str, table: str) -> str:
        """The table's Airflow Asset URI (``ingestion.warehouse.asset_uri``). No secret."""
        from ingestion.warehouse import asset_uri

        return asset_uri(self.connection, schema, table, self.dialect)

    # -- connection and statements ---------------------------------------------------

    def connect(self) -> Any:
        raise NotImplementedError

    def execute(self, cursor: Any, sql: str, params: dict | None = None) -> int:
        """Run one statement; return the number of rows it changed (or -1)."""
        log.debug("%s", sql)
        cursor.execute(sql, params) if params else cursor.execute(sql)
        return cursor.rowcount

    def scalar(self, cursor: Any, sql: str, params: dict | None = None) -> Any:
        cursor.execute(sql, params) if params else cursor.execute(sql)
        return cursor.fetchone()[0]

    def begin(self, db: Any) -> None:
        """DB-API connections open a transaction implicitly."""

    def cursor(self, db: Any) -> Any:
        return db.cursor()

    def create_database(self) -> str:
        """Create the connection's database when it is missing; say what was done."""
        raise LoadError(f"the {self.dialect} warehouse database cannot be created by this tool")

    # -- locking -----------------------------------------------------------------------

    def lock(self, cursor: Any, raw_schema: str, table: TableConfig) -> None:
        """Serialise concurrent loads of one table."""

    def lock_ddl(self, cursor: Any) -> None:
        """Serialise the ``create ... if not exists`` of concurrent first loads."""

    def prepare_merge(self, cursor: Any, raw_schema: str, table: TableConfig, batch_rows: int) -> None:
        """Before the merge's joins of the batch (``batch_rows`` staged rows) to the target
        on its key (e.g. an index)."""

    def finish_merge(self, cursor: Any, raw_schema: str, table: TableConfig) -> None:
        """After the merge's insert, in its transaction."""

    # -- types and DDL -----------------------------------------------------------------

    def column_type(self, data_type: pa.DataType, char_length: int | None = None) -> str:
        """The warehouse column type of an Arrow type (``char_length`` of a MySQL varchar)."""
        if pa.types.is_int16(data_type):
            return "smallint"
        if pa.types.is_int32(data_type):
            return "integer"
        if pa.types.is_int64(data_type):
            return "bigint"
        if pa.types.is_decimal(data_type):
            return f"decimal({data_type.precision}, {data_type.scale})"
        if pa.types.is_float32(data_type):
            return "real"
        if pa.types.is_float64(data_type):
            return "double precision"
        if pa.types.is_timestamp(data_type):
            return "timestamp"
        if pa.types.is_date32(data_type):
            return "date"
        if pa.types.is_string(data_type) or pa.types.is_large_string(data_type):
            return self.text_type(char_length)
        if pa.types.is_binary(data_type) or pa.types.is_large_binary(data_type):
            return self.binary_type
        raise LoadError(f"no {self.dialect} column type for Arrow type {data_type}", retryable=False)

    def text_type(self, char_length: int | None) -> str:
        return "varchar"

    binary_type = "blob"

    def column_types(self, schema: pa.Schema) -> list[tuple[str, str]]:
        """(name, warehouse type) of the staged Parquet schema (fields remember their MySQL type)."""
        types = []
        for field in schema:
            source_type = (field.metadata or {}).get(b"source_type")
            if source_type:
                char_length = Column(field.name, source_type.decode()).char_length
            else:
                char_length = BATCH_ID_LENGTH if field.name == BATCH_ID else None
            types.append((field.name, self.column_type(field.type, char_length)))
        return types

    def column_definitions(self, schema: pa.Schema) -> list[str]:
        """Warehouse columns of the staged Parquet schema."""
        return [f"{quote(name)} {column_type}" for name, column_type in self.column_types(schema)]

    def table_options(self, table: TableConfig) -> str:
        """Text after a raw table's column list (distribution and sort keys)."""
        return ""

    def create_target_sql(self, raw_schema: str, table: TableConfig, schema: pa.Schema) -> str:
        columns = [*self.column_definitions(schema), *(f"{quote(c)} timestamp" for c in LOAD_COLUMNS)]
        body = ",\n    ".join(columns)
        sql = f"create table if not exists {target_table(raw_schema, table)} (\n    {body}\n)"
        return sql + self.table_options(table)

    def table_columns(self, cursor: Any, raw_schema: str, name: str) -> list[str]:
        return [column for column, _ in self.table_column_types(cursor, raw_schema, name)]

    def fetch_all(self, cursor: Any, sql: str, params: dict | None = None) -> list[tuple]:
        cursor.execute(sql, params) if params else cursor.execute(sql)
        return list(cursor.fetchall())

    #: A table's columns: name, data type, length, precision, scale, in the table's order.
    column_types_sql = (
        "select column_name, data_type, character_maximum_length, numeric_precision, numeric_scale\n"
        "from information_schema.columns\n"
        "where table_schema = %(schema)s and table_name = %(table)s\norder by ordinal_position"
    )

    def table_column_types(self, cursor: Any, raw_schema: str, name: str) -> list[tuple[str, str]]:
        """(name, type) of a table's columns from ``information_schema``, in ``column_type``'s
        spelling (``normalize_type``), so a batch's and a table's types compare as text."""
        rows = self.fetch_all(cursor, self.column_types_sql, {"schema": raw_schema, "table": name})
        return [(row[0], self.normalize_type(*row[1:])) for row in rows]

    def normalize_type(
        self, data_type: str, length: int | None, precision: int | None, scale: int | None
    ) -> str:
        """An ``information_schema.columns`` type in ``column_type``'s spelling."""
        data_type = data_type.lower()
        if data_type in ("numeric", "decimal"):
            return f"decimal({precision}, {scale})"
        if data_type == "character varying":
            return f"varchar({length})" if length else "text"
        if data_type == "timestamp without time zone":
            return "timestamp"
        return data_type

    def widen_column_sql(self, raw_schema: str, table: TableConfig, column: str, new_type: str) -> list[str]:
        """Statements that widen a column in place, inside the load's transaction."""
        return [alter_column_type_sql(target_table(raw_schema, table), column, new_type)]

    def dependent_views(self, cursor: Any, raw_schema: str, table: TableConfig) -> list[View]:
        """Views over the table that block altering its column types, outermost last."""
        return []

    # -- bulk-load ---------------------------------------------------------------------

    def bulk_load(self, cursor: Any, into: str, batch: StagedBatch) -> int:
        """Load the batch's files (exactly the manifest's) into the table ``into``
        (the staging table, or the target when ``loads_into_target``); return the rows loaded."""
        raise NotImplementedError
