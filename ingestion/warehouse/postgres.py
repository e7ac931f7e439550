"""PostgreSQL (the services environment's stand-in for Redshift): binary ``COPY FROM STDIN``."""

from __future__ import annotations

import io
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pyarrow as pa

from ingestion.config import TableConfig
from ingestion.errors import LoadError, first_line
from ingestion.warehouse import DEFAULT_PORTS, pgcopy
from ingestion.warehouse.base import StagedBatch, View, Warehouse
from ingestion.warehouse.sql import quote, target_table

# Views (and materialized views) whose rewrite rule depends on the table, then views over
# those, with the depth of the deepest path: creating them in depth order rebuilds the chain.
DEPENDENT_VIEWS_SQL = """with recursive dependents (view_oid, depth) as (
    select rewrite.ev_class, 1
    from pg_depend as dependency
    join pg_rewrite as rewrite on rewrite.oid = dependency.objid
    where dependency.classid = 'pg_rewrite'::regclass
        and dependency.refclassid = 'pg_class'::regclass
        and dependency.refobjid = %(table)s::regclass
        and rewrite.ev_class <> dependency.refobjid
    union
    select rewrite.ev_class, dependents.depth + 1
    from dependents
    join pg_depend as dependency
        on dependency.refobjid = dependents.view_oid
        and dependency.refclassid = 'pg_class'::regclass
        and dependency.classid = 'pg_rewrite'::regclass
    join pg_rewrite as rewrite on rewrite.oid = dependency.objid
    where rewrite.ev_class <> dependents.view_oid and dependents.depth < 32
)
select namespace.nspname, class.relname, pg_get_viewdef(class.oid), class.relkind,
    max(dependents.depth) as depth
from dependents
join pg_class as class on class.oid = dependents.view_oid
join pg_namespace as namespace on namespace.oid = class.relnamespace
where class.relkind in ('v', 'm')
group by 1, 2, 3, 4
order by depth, 1, 2"""


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


# A batch with fewer rows than this fraction of the target's is merged by index lookups.
INDEX_MERGE_FRACTION = 0.1


def key_index_name(table: TableConfig) -> str:
    """``<table>__key``, cut to PostgreSQL's 63-byte names (on a character boundary)."""
    name = f"{table.name}__key"
    while len(name.encode()) > 63:
        name = name[:-1]
    return name


class PostgresWarehouse(Warehouse):
    dialect = "postgres"
    loads_into_target = True
    default_port = DEFAULT_PORTS["postgres"]
    binary_type = "bytea"
    default_sslmode = "prefer"

    def connect_params(self) -> dict[str, Any]:
        """What ``psycopg2.connect`` gets: the connection's fields and extras."""
        conn = self.connection
        extra = conn.extra or {}
        return {
            "host": conn.host,
            "port": conn.port or self.default_port,
            "user": conn.login,
            "password": conn.password or None,
            "dbname": conn.schema,
            "sslmode": extra.get("sslmode", self.default_sslmode),
            "connect_timeout": int(extra.get("connect_timeout", 30)),
            "application_name": "pipeline-load",
        }

    def connect(self) -> Any:
        import psycopg2

        conn = self.connection
        params = self.connect_params()
        host, port = params["host"], params["port"]
        try:
            return psycopg2.connect(**params)
        except psycopg2.Error as exc:
            reason = first_line(exc)
            if "database" in reason and "does not exist" in reason:
                hint = f"create it (`python -m ingestion init-warehouse`) or fix the schema of {conn.setting}"
            elif "role" in reason or "authentication" in reason or "password" in reason:
                hint = f"check login and password of {conn.setting}"
            else:
                hint = f"check that the server runs there and the host and port of {conn.setting}"
            raise LoadError(
                f"warehouse {conn.label}: cannot connect to {self.dialect} at {host}:{port}, "
                f"database {conn.schema!r}, as {params['user']!r}: {reason}; {hint}",
                retryable=hint.startswith("check that"),
            ) from None

    def create_database(self) -> str:
        admin = type(self)(replace(self.connection, schema="postgres")).connect()
        admin.autocommit = True
        name = self.connection.schema or ""
        try:
            cursor = admin.cursor()
            cursor.execute("select 1 from pg_database where datname = %s", (name,))
            if cursor.fetchone():
                return f"warehouse: PostgreSQL database {name} exists"
            cursor.execute(f"create database {quote(name)}")
            return f"warehouse: created PostgreSQL database {name}"
        finally:
            admin.close()

    def text_type(self, char_length: int | None) -> str:
        return f"varchar({char_length})" if char_length else "text"

    def dependent_views(self, cursor: Any, raw_schema: str, table: TableConfig) -> list[View]:
        """Views that read the table, directly or through other views, innermost first.

        PostgreSQL refuses to alter the type of a column a view reads ("cannot alter type of
        a column used by a view or rule"), so the load drops them and creates them again
        from these definitions in its transaction.
        """
        rows = self.fetch_all(cursor, DEPENDENT_VIEWS_SQL, {"table": target_table(raw_schema, table)})
        return [View(schema, name, definition, kind == "m") for schema, name, definition, kind, _ in rows]

    def lock(self, cursor: Any, raw_schema: str, table: TableConfig) -> None:
        cursor.execute(f"lock table {target_table(raw_schema, table)} in exclusive mode")

    def lock_ddl(self, cursor: Any) -> None:
        cursor.execute("select pg_advisory_xact_lock(hashtext('pipeline-load-ddl'))")

    def prepare_merge(self, cursor: Any, raw_schema: str, table: TableConfig, batch_rows: int) -> None:
        """Index the key of a target that holds rows, so the merge finds the batch's keys
        by index lookups instead of reading and hashing the whole target twice (delete,
        then insert). Into an empty target, ``finish_merge`` builds it after the insert
        (one sorted build instead of an insert per row into the index).

        The planner does not always take those lookups: a staging table just filled has no
        statistics, a raw table often none yet either, and with the default costs it
        reads the whole target into a hash for every batch (``ours_merge`` in the README's
        "Benchmark"). A batch under ``INDEX_MERGE_FRACTION`` of the target's rows is
        therefore joined by index lookups only (hash and merge joins off for this
        transaction); a larger one is left to the planner. JIT compilation is off too:
        these statements are short, and its compiling took longer than they ran."""
        cursor.execute("set local jit = off")
        target = target_table(raw_schema, table)
        if not self.scalar(cursor, f"select exists (select 1 from {target})"):
            return
        self.index_key(cursor, raw_schema, table)
        # reltuples: kept by VACUUM, ANALYZE and CREATE INDEX; -1 when none has run yet
        target_rows = self.scalar(
            cursor, "select reltuples from pg_class where oid = %(table)s::regclass", {"table": target}
        )
        if target_rows is not None and batch_rows < INDEX_MERGE_FRACTION * target_rows:
            cursor.execute("set local enable_hashjoin = off")
            cursor.execute("set local enable_mergejoin = off")

    def finish_merge(self, cursor: Any, raw_schema: str, table: TableConfig) -> None:
        self.index_key(cursor, raw_schema, table)
        for setting in ("enable_hashjoin", "enable_mergejoin", "jit"):
            cursor.execute(f"reset {setting}")

    def index_key(self, cursor: Any, raw_schema: str, table: TableConfig) -> None:
        """An index on the key columns (once per table; nothing when it exists). Not a
        unique constraint: the raw table's guarantees stay the merge's, and a NULL in a key
        column loads as before. A direct bulk-load into an empty table does not build it."""
        columns = ", ".join(quote(c) for c in table.primary_key)
        cursor.execute(
            f"create index if not exists {quote(key_index_name(table))} "
            f"on {target_table(raw_schema, table)} ({columns})"
        )

    def bulk_load(self, cursor: Any, into: str, batch: StagedBatch) -> int:
        """Binary ``COPY FROM STDIN``: PostgreSQL parses it faster than text (see pgcopy)."""
        stream = BufferStream(pgcopy.copy_stream(batch.record_batches(), list(batch.constants.values())))
        column_list = ", ".join(quote(c) for c in batch.target_columns)
        cursor.copy_expert(
            f"copy {into} ({column_list}) from stdin with (format binary)", stream, size=1 << 20
        )
        return cursor.rowcount
