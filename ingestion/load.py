"""Load: one merge, three bulk-loads.

Every warehouse runs the same steps inside one transaction:

1. create a temporary staging table shaped like the staged Parquet files;
2. bulk-load the manifest's files into it (the only dialect-specific step):
   DuckDB ``read_parquet``, PostgreSQL binary ``COPY ... FROM STDIN`` fed from
   the Parquet files, Redshift ``COPY ... FROM '<manifest>' MANIFEST FORMAT AS PARQUET``;
3. keep one row per primary key (latest cursor, then latest extract, then the
   row's values, so the choice never depends on file order); then
   ``incremental``: delete the target rows whose cursor is older and insert the
   keys the target does not hold, so a row already stored with the same or a
   newer cursor is kept as it is (a rerun changes nothing, an old backfill
   never overwrites newer data); ``full_refresh``: ``DELETE`` every target row
   and insert the batch (never ``TRUNCATE``: it commits on Redshift; never
   drop-and-rename: dbt's views on the raw tables depend on them);
4. write an audit row to ``raw_data._load_audit``;
5. commit. Any failure rolls back and leaves ``raw_data`` exactly as it was.

Straight into the target: when the batch's key is unique (one snapshot of a
unique index) and the merge could only insert every row (``full_refresh``,
after its ``DELETE``, or an empty target), steps 1 and 3 would copy the whole
batch a second time. A warehouse that can bulk-load into the target with the
load's constant columns (PostgreSQL, DuckDB) then loads it there directly, in
the same transaction; the result is the same table. Redshift always stages:
its ``COPY`` of Parquet cannot fill ``_loaded_at``.
"""

from __future__ import annotations

import io
import logging
import re
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa

from ingestion import pgcopy
from ingestion.config import TableConfig
from ingestion.environments import Connection, warehouse_dialect
from ingestion.errors import LoadError
from ingestion.stage import Manifest, Stage
from ingestion.types import Column, warehouse_type
from ingestion.window import Window

log = logging.getLogger(__name__)

RAW_SCHEMA = "raw_data"
AUDIT_TABLE = "_load_audit"
LOADED_AT = "_loaded_at"


def quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


@dataclass(frozen=True)
class LoadResult:
    table: str
    batch_id: str
    manifest_url: str
    files: int
    rows_staged: int
    rows_inserted: int
    rows_replaced: int
    rows_deleted: int
    bytes: int
    seconds: float

    def as_dict(self) -> dict:
        return asdict(self)


# --------------------------------------------------------------------------- SQL
# Steps 1, 3 and 4: the same text for every warehouse.


BATCH_ID_LENGTH = 64


def column_definitions(dialect: str, schema: pa.Schema) -> list[str]:
    """Warehouse columns of the staged Parquet schema (fields remember their MySQL type)."""
    definitions = []
    for field in schema:
        source_type = (field.metadata or {}).get(b"source_type")
        if source_type:
            char_length = Column(field.name, source_type.decode()).char_length
        else:
            char_length = BATCH_ID_LENGTH if field.name == "_batch_id" else None
        definitions.append(f"{quote(field.name)} {warehouse_type(dialect, field.type, char_length)}")
    return definitions


def create_target_sql(dialect: str, raw_schema: str, table: TableConfig, schema: pa.Schema) -> str:
    columns = [*column_definitions(dialect, schema), f"{quote(LOADED_AT)} timestamp"]
    body = ",\n    ".join(columns)
    sql = f"create table if not exists {target_table(raw_schema, table)} (\n    {body}\n)"
    if dialect == "redshift":
        sortkey = table.cursor or table.primary_key[0]
        sql += f"\ndistkey ({quote(table.primary_key[0])})\nsortkey ({quote(sortkey)})"
    return sql


def create_audit_sql(raw_schema: str) -> str:
    return f"""create table if not exists {quote(raw_schema)}.{quote(AUDIT_TABLE)} (
    table_name varchar(128),
    mode varchar(16),
    window_start timestamp,
    window_end timestamp,
    batch_id varchar(64),
    manifest_url varchar(1024),
    files integer,
    rows_staged bigint,
    rows_inserted bigint,
    rows_replaced bigint,
    rows_deleted bigint,
    bytes bigint,
    started_at timestamp,
    finished_at timestamp,
    duration_seconds double precision
)"""


def target_table(raw_schema: str, table: TableConfig) -> str:
    return f"{quote(raw_schema)}.{quote(table.name)}"


def staging_table(table: TableConfig) -> str:
    return quote(f"{table.name}__stage")


def latest_table(table: TableConfig) -> str:
    return quote(f"{table.name}__latest")


def create_staging_sql(raw_schema: str, table: TableConfig, columns: Sequence[str]) -> str:
    column_list = ", ".join(quote(c) for c in columns)
    return (
        f"create temporary table {staging_table(table)} as\n"
        f"select {column_list}\nfrom {target_table(raw_schema, table)}\nwhere 1 = 0"
    )


def dedupe_sql(table: TableConfig, columns: Sequence[str]) -> str:
    """One row per primary key: latest cursor, latest extract, then by value."""
    column_list = ", ".join(quote(c) for c in columns)
    order = [table.cursor] if table.cursor else []
    order.append("_extracted_at")
    order += [c for c in columns if c not in order and c not in table.primary_key]
    order_by = ", ".join(f"{quote(c)} desc nulls last" for c in order)
    partition = ", ".join(quote(c) for c in table.primary_key)
    return (
        f"create temporary table {latest_table(table)} as\n"
        f"select {column_list}\nfrom (\n"
        f"    select {column_list},\n"
        f"        row_number() over (partition by {partition} order by {order_by}) as _row_rank\n"
        f"    from {staging_table(table)}\n"
        f") as ranked\nwhere _row_rank = 1"
    )


def _key_match(table: TableConfig, left: str, right: str) -> str:
    return " and ".join(f"{left}.{quote(k)} = {right}.{quote(k)}" for k in table.primary_key)


def delete_older_sql(raw_schema: str, table: TableConfig, latest: str | None = None) -> str:
    target = target_table(raw_schema, table)
    latest = latest or latest_table(table)
    cursor = quote(table.cursor or "")
    return (
        f"delete from {target}\nusing {latest}\n"
        f"where {_key_match(table, target, latest)}\n"
        f"    and ({target}.{cursor} < {latest}.{cursor} or {target}.{cursor} is null)"
    )


def delete_all_sql(raw_schema: str, table: TableConfig) -> str:
    return f"delete from {target_table(raw_schema, table)}"


def insert_new_sql(
    raw_schema: str, table: TableConfig, columns: Sequence[str], latest: str | None = None
) -> str:
    """Insert the keys the target does not hold (after the older versions were deleted)."""
    target = target_table(raw_schema, table)
    insert_list = ", ".join(quote(c) for c in [*columns, LOADED_AT])
    select_list = ", ".join(f"latest.{quote(c)}" for c in columns)
    return (
        f"insert into {target} ({insert_list})\n"
        f"select {select_list}, %(loaded_at)s\n"
        f"from {latest or latest_table(table)} as latest\n"
        f"left join {target} as target\n    on {_key_match(table, 'target', 'latest')}\n"
        f"where target.{quote(table.primary_key[0])} is null"
    )


def insert_all_sql(
    raw_schema: str, table: TableConfig, columns: Sequence[str], latest: str | None = None
) -> str:
    """Full refresh: the target was emptied in this transaction, insert every row."""
    target = target_table(raw_schema, table)
    insert_list = ", ".join(quote(c) for c in [*columns, LOADED_AT])
    select_list = ", ".join(quote(c) for c in columns)
    return (
        f"insert into {target} ({insert_list})\n"
        f"select {select_list}, %(loaded_at)s\n"
        f"from {latest or latest_table(table)}"
    )


def insert_audit_sql(raw_schema: str) -> str:
    columns = (
        "table_name", "mode", "window_start", "window_end", "batch_id", "manifest_url", "files",
        "rows_staged", "rows_inserted", "rows_replaced", "rows_deleted", "bytes", "started_at",
        "finished_at", "duration_seconds",
    )  # fmt: skip
    return (
        f"insert into {quote(raw_schema)}.{quote(AUDIT_TABLE)} ({', '.join(columns)})\n"
        f"values ({', '.join(f'%({c})s' for c in columns)})"
    )


# ------------------------------------------------------------------- warehouses


@dataclass(frozen=True)
class StagedBatch:
    """One extract attempt as the bulk-load sees it.

    ``constants`` are columns with one value for every row (the load metadata),
    by column name: they are sent once, not read from the files per row.
    """

    manifest: Manifest
    stage: Stage
    columns: Sequence[str]
    constants: dict[str, pa.Scalar]

    @property
    def file_columns(self) -> list[str]:
        """The columns read from the Parquet files."""
        return [c for c in self.columns if c not in self.constants]

    @property
    def target_columns(self) -> list[str]:
        """Every column the bulk-load fills, in the order it sends them."""
        return [*self.file_columns, *self.constants]


class Warehouse:
    """A warehouse connection; subclasses differ only in connecting and bulk-loading."""

    dialect = ""
    #: Whether ``bulk_load`` can fill the target itself, constant columns included.
    loads_into_target = False

    def __init__(self, connection: Connection) -> None:
        self.connection = connection

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

    def lock(self, cursor: Any, raw_schema: str, table: TableConfig) -> None:
        """Serialise concurrent loads of one table."""

    def lock_ddl(self, cursor: Any) -> None:
        """Serialise the ``create ... if not exists`` of concurrent first loads."""

    def table_columns(self, cursor: Any, raw_schema: str, name: str) -> list[str]:
        cursor.execute(
            "select column_name from information_schema.columns "
            "where table_schema = %(schema)s and table_name = %(table)s order by ordinal_position",
            {"schema": raw_schema, "table": name},
        )
        return [row[0] for row in cursor.fetchall()]

    def bulk_load(self, cursor: Any, into: str, batch: StagedBatch) -> int:
        """Load the batch's files (exactly the manifest's) into the table ``into``
        (the staging table, or the target when ``loads_into_target``); return the rows loaded."""
        raise NotImplementedError


class DuckDBWarehouse(Warehouse):
    dialect = "duckdb"
    loads_into_target = True

    def connect(self) -> Any:
        import duckdb

        if not self.connection.host:
            raise LoadError(f"connection {self.connection.conn_id!r}: host (DuckDB file path) missing")
        return duckdb.connect(self.connection.host)

    @staticmethod
    def _params(sql: str, params: dict | None) -> tuple[str, dict | None]:
        if params:
            sql = re.sub(r"%\((\w+)\)s", r"$\1", sql)
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

    def table_columns(self, cursor: Any, raw_schema: str, name: str) -> list[str]:
        rows = cursor.execute(
            "select column_name from information_schema.columns "
            "where table_schema = ? and table_name = ? order by ordinal_position",
            [raw_schema, name],
        ).fetchall()
        return [row[0] for row in rows]

    def bulk_load(self, cursor: Any, into: str, batch: StagedBatch) -> int:
        if not batch.stage.is_local:
            raise LoadError("the DuckDB warehouse loads from a local-folder stage only")
        paths = [batch.stage.path(entry.url) for entry in batch.manifest.entries]
        files = ", ".join("'" + path.replace("'", "''") + "'" for path in paths)
        select_list = [quote(c) for c in batch.file_columns] + ["?"] * len(batch.constants)
        cursor.execute(
            f"insert into {into} ({', '.join(quote(c) for c in batch.target_columns)})\n"
            f"select {', '.join(select_list)} from read_parquet([{files}])",
            [value.as_py() for value in batch.constants.values()],
        )
        return int(cursor.fetchone()[0])


class BufferStream(io.RawIOBase):
    """A read-only file over an iterator of buffers (what ``COPY FROM STDIN`` reads).

    One buffer (one encoded record batch) is held at a time.
    """

    def __init__(self, buffers: Iterator[bytes | pa.Buffer]) -> None:
        self.buffers = buffers
        self.buffer = memoryview(b"")
        self.offset = 0

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        """Up to ``size`` bytes of the current buffer; b"" at the end."""
        while self.offset >= len(self.buffer):
            buffer = next(self.buffers, None)
            if buffer is None:
                return b""
            self.buffer, self.offset = memoryview(buffer), 0
        end = len(self.buffer) if size < 0 else self.offset + size
        chunk = self.buffer[self.offset : end]
        self.offset += len(chunk)
        return chunk.tobytes()


def manifest_batches(manifest: Manifest, stage: Stage, columns: Sequence[str]) -> Iterator[pa.RecordBatch]:
    """The manifest's rows, one Parquet row group at a time (bounded memory)."""
    for entry in manifest.entries:
        parquet = stage.open_parquet(entry.url)
        for index in range(parquet.num_row_groups):
            yield from parquet.read_row_group(index, columns=list(columns)).to_batches()


class PostgresWarehouse(Warehouse):
    dialect = "postgres"
    loads_into_target = True

    default_port = 5432
    default_sslmode = "prefer"

    def connect(self) -> Any:
        import psycopg2

        conn = self.connection
        extra = conn.extra or {}
        return psycopg2.connect(
            host=conn.host,
            port=conn.port or self.default_port,
            user=conn.login,
            password=conn.password or None,
            dbname=conn.schema,
            sslmode=extra.get("sslmode", self.default_sslmode),
            connect_timeout=int(extra.get("connect_timeout", 30)),
            application_name="pipeline-load",
        )

    def lock(self, cursor: Any, raw_schema: str, table: TableConfig) -> None:
        cursor.execute(f"lock table {target_table(raw_schema, table)} in exclusive mode")

    def lock_ddl(self, cursor: Any) -> None:
        cursor.execute("select pg_advisory_xact_lock(hashtext('pipeline-load-ddl'))")

    def bulk_load(self, cursor: Any, into: str, batch: StagedBatch) -> int:
        """Binary ``COPY FROM STDIN``: PostgreSQL parses it faster than text (see pgcopy)."""
        batches = manifest_batches(batch.manifest, batch.stage, batch.file_columns)
        stream = BufferStream(pgcopy.copy_stream(batches, list(batch.constants.values())))
        column_list = ", ".join(quote(c) for c in batch.target_columns)
        cursor.copy_expert(
            f"copy {into} ({column_list}) from stdin with (format binary)", stream, size=1 << 20
        )
        return cursor.rowcount


class RedshiftWarehouse(PostgresWarehouse):
    """Redshift speaks the PostgreSQL protocol; only the bulk-load differs."""

    dialect = "redshift"
    loads_into_target = False  # its COPY of Parquet cannot fill _loaded_at
    default_port = 5439
    default_sslmode = "require"

    def lock(self, cursor: Any, raw_schema: str, table: TableConfig) -> None:
        cursor.execute(f"lock {target_table(raw_schema, table)}")

    def lock_ddl(self, cursor: Any) -> None:
        """Redshift has no advisory locks; its catalog serialises the creates."""

    @property
    def iam_role(self) -> str:
        role = (self.connection.extra or {}).get("iam_role")
        if not role:
            raise LoadError(
                f"connection {self.connection.conn_id!r}: set extra.iam_role to the ARN of the "
                "IAM role Redshift assumes to read the stage (COPY ... IAM_ROLE)"
            )
        return role

    def bulk_load(self, cursor: Any, into: str, batch: StagedBatch) -> int:
        """COPY reads the files itself, constant columns included."""
        cursor.execute(copy_sql(into, batch.manifest.url, self.iam_role))
        return int(self.scalar(cursor, f"select count(*) from {into}"))


def copy_sql(into: str, manifest_url: str, iam_role: str) -> str:
    """Redshift's bulk-load of one attempt: only the files its manifest lists."""
    manifest_url = manifest_url.replace("'", "''")
    iam_role = iam_role.replace("'", "''")
    return f"copy {into}\nfrom '{manifest_url}'\niam_role '{iam_role}'\nmanifest\nformat as parquet"


WAREHOUSES: dict[str, type[Warehouse]] = {
    "duckdb": DuckDBWarehouse,
    "postgres": PostgresWarehouse,
    "redshift": RedshiftWarehouse,
}


def init_warehouse(connection: Connection) -> str:
    """Create the warehouse database when it does not exist (services / embedded)."""
    dialect = warehouse_dialect(connection)
    if dialect == "duckdb":
        from pathlib import Path

        Path(connection.host or "").parent.mkdir(parents=True, exist_ok=True)
        return f"warehouse: DuckDB file {connection.host}"
    if dialect == "redshift":
        raise LoadError("init-warehouse does not create Redshift databases; create it in the console")
    admin = PostgresWarehouse(replace(connection, schema="postgres")).connect()
    admin.autocommit = True
    try:
        cursor = admin.cursor()
        cursor.execute("select 1 from pg_database where datname = %s", (connection.schema,))
        if cursor.fetchone():
            return f"warehouse: PostgreSQL database {connection.schema} exists"
        cursor.execute(f"create database {quote(connection.schema or '')}")
        return f"warehouse: created PostgreSQL database {connection.schema}"
    finally:
        admin.close()


def open_warehouse(connection: Connection) -> Warehouse:
    """The warehouse dialect is the connection's type."""
    return WAREHOUSES[warehouse_dialect(connection)](connection)


# ------------------------------------------------------------------------- load


def ensure_tables(
    warehouse: Warehouse, db: Any, cursor: Any, raw_schema: str, table: TableConfig, schema: pa.Schema
) -> None:
    """Create the schema, the audit table and the (empty) target table if missing, in a
    short transaction of their own (creating them changes no data), serialised so that
    parallel first loads do not race."""
    warehouse.begin(db)
    warehouse.lock_ddl(cursor)
    warehouse.execute(cursor, f"create schema if not exists {quote(raw_schema)}")
    warehouse.execute(cursor, create_audit_sql(raw_schema))
    warehouse.execute(cursor, create_target_sql(warehouse.dialect, raw_schema, table, schema))
    db.commit()


def check_target_columns(
    warehouse: Warehouse, cursor: Any, raw_schema: str, table: TableConfig, expected: list[str]
) -> None:
    existing = warehouse.table_columns(cursor, raw_schema, table.name)
    if existing != expected:
        missing = [c for c in expected if c not in existing]
        extra = [c for c in existing if c not in expected]
        raise LoadError(
            f"table {raw_schema}.{table.name}: its columns differ from the staged batch "
            f"(missing in the warehouse: {', '.join(missing) or '-'}; "
            f"not in the batch: {', '.join(extra) or '-'}; or the order differs). "
            "Alter the table to match the source, or drop it to reload."
        )


def merge(
    warehouse: Warehouse,
    cursor: Any,
    raw_schema: str,
    table: TableConfig,
    columns: list[str],
    schema: pa.Schema,
    loaded_at: datetime,
) -> tuple[int, int, int]:
    """Step 3: staging table → target. Returns rows inserted, replaced, deleted."""
    run = warehouse.execute
    if key_is_unique(schema):
        latest = staging_table(table)  # one snapshot of a unique key: nothing to dedupe
    else:
        run(cursor, dedupe_sql(table, columns))
        latest = latest_table(table)
    stamp = {"loaded_at": loaded_at}
    if table.is_incremental:
        replaced = run(cursor, delete_older_sql(raw_schema, table, latest))
        inserted = run(cursor, insert_new_sql(raw_schema, table, columns, latest), stamp)
        deleted = 0
    else:
        deleted = run(cursor, delete_all_sql(raw_schema, table))
        inserted = run(cursor, insert_all_sql(raw_schema, table, columns, latest), stamp)
        replaced = 0
    if latest != staging_table(table):
        run(cursor, f"drop table {latest}")
    run(cursor, f"drop table {staging_table(table)}")
    return inserted, replaced, deleted


def loads_straight_into_target(
    warehouse: Warehouse, cursor: Any, raw_schema: str, table: TableConfig, schema: pa.Schema
) -> bool:
    """Whether the merge could only insert every row of the batch, so the bulk-load
    may fill the target itself: a unique key, and a full refresh or an empty target."""
    if not (warehouse.loads_into_target and key_is_unique(schema)):
        return False
    if not table.is_incremental:
        return True
    target = target_table(raw_schema, table)
    return not warehouse.scalar(cursor, f"select exists (select 1 from {target})")


def load(
    table: TableConfig,
    manifest_url: str,
    window: Window,
    warehouse: Warehouse,
    stage: Stage,
    *,
    raw_schema: str = RAW_SCHEMA,
    before_commit: Callable[[], None] | None = None,
) -> LoadResult:
    """Load one staged attempt into ``raw_schema.<table>`` in one transaction."""
    started_clock = time.monotonic()
    started_at = datetime.now(UTC).replace(tzinfo=None)
    manifest = stage.read_manifest(manifest_url)
    schema = stage.open_parquet(manifest.entries[0].url).schema_arrow
    columns = list(schema.names)
    target_name = f"{raw_schema}.{table.name}"
    log.info(
        "load %s: %d file(s), %s rows listed in %s",
        target_name, len(manifest.entries), f"{manifest.record_count:,}", manifest_url,
    )  # fmt: skip

    db = warehouse.connect()
    try:
        cursor = warehouse.cursor(db)
        run = warehouse.execute
        ensure_tables(warehouse, db, cursor, raw_schema, table, schema)

        warehouse.begin(db)
        check_target_columns(warehouse, cursor, raw_schema, table, [*columns, LOADED_AT])
        warehouse.lock(cursor, raw_schema, table)

        loaded_at = datetime.now(UTC).replace(tzinfo=None)
        constants = batch_constants(schema)
        if loads_straight_into_target(warehouse, cursor, raw_schema, table, schema):
            log.info("load %s: unique key, nothing to merge: bulk-loading into the table", target_name)
            deleted = 0 if table.is_incremental else run(cursor, delete_all_sql(raw_schema, table))
            constants[LOADED_AT] = pa.scalar(loaded_at, pa.timestamp("us"))
            into = target_table(raw_schema, table)
            staged = warehouse.bulk_load(cursor, into, StagedBatch(manifest, stage, columns, constants))
            check_row_count(target_name, staged, manifest)
            inserted, replaced = staged, 0
        else:
            run(cursor, create_staging_sql(raw_schema, table, columns))
            batch = StagedBatch(manifest, stage, columns, constants)
            staged = warehouse.bulk_load(cursor, staging_table(table), batch)
            check_row_count(target_name, staged, manifest)
            inserted, replaced, deleted = merge(
                warehouse, cursor, raw_schema, table, columns, schema, loaded_at
            )

        seconds = round(time.monotonic() - started_clock, 3)
        batch_id = batch_id_of(manifest_url)
        result = LoadResult(
            table=table.name,
            batch_id=batch_id,
            manifest_url=manifest_url,
            files=len(manifest.entries),
            rows_staged=staged,
            rows_inserted=inserted,
            rows_replaced=replaced,
            rows_deleted=deleted,
            bytes=manifest.content_length,
            seconds=seconds,
        )
        run(
            cursor,
            insert_audit_sql(raw_schema),
            {
                "table_name": table.name,
                "mode": table.mode,
                "window_start": window.start,
                "window_end": window.end,
                "batch_id": batch_id,
                "manifest_url": manifest_url,
                "files": result.files,
                "rows_staged": staged,
                "rows_inserted": inserted,
                "rows_replaced": replaced,
                "rows_deleted": deleted,
                "bytes": result.bytes,
                "started_at": started_at,
                "finished_at": datetime.now(UTC).replace(tzinfo=None),
                "duration_seconds": seconds,
            },
        )
        if before_commit is not None:
            before_commit()
        db.commit()
    except LoadError:
        db.rollback()
        raise
    except Exception as exc:
        db.rollback()
        raise LoadError(
            f"table {target_name}: load of {manifest_url} failed, nothing changed: {exc}"
        ) from exc
    finally:
        db.close()
    log.info(
        "load %s: %s staged, %s inserted (%s replacing older versions), %s deleted, %.1fs",
        target_name, f"{staged:,}", f"{inserted:,}", f"{replaced:,}", f"{deleted:,}", seconds,
    )  # fmt: skip
    return result


def check_row_count(target_name: str, loaded: int, manifest: Manifest) -> None:
    if loaded != manifest.record_count:
        raise LoadError(
            f"table {target_name}: bulk-loaded {loaded:,} rows but the manifest lists "
            f"{manifest.record_count:,}; nothing was loaded"
        )


def batch_metadata(schema: pa.Schema) -> dict[str, str]:
    """What the extract recorded about the batch in the Parquet schema."""
    return {
        key.decode(): value.decode()
        for key, value in (schema.metadata or {}).items()
        if key.startswith(b"pipeline.")
    }


def key_is_unique(schema: pa.Schema) -> bool:
    """The extract read the key from a unique index in one snapshot."""
    return batch_metadata(schema).get("pipeline.unique_key") == "true"


def batch_constants(schema: pa.Schema) -> dict[str, pa.Scalar]:
    """Load-metadata columns whose value the extract wrote into every row."""
    metadata = batch_metadata(schema)
    if "pipeline.batch_id" not in metadata or "pipeline.extracted_at" not in metadata:
        return {}
    return {
        "_batch_id": pa.scalar(metadata["pipeline.batch_id"], pa.string()),
        "_extracted_at": pa.scalar(
            datetime.fromisoformat(metadata["pipeline.extracted_at"]), pa.timestamp("us")
        ),
    }


def batch_id_of(manifest_url: str) -> str:
    """The attempt folder that holds the manifest is the batch id."""
    return manifest_url.rstrip("/").rsplit("/", 2)[-2]
