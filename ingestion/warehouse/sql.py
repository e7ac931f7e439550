"""The load's SQL text, the same for every warehouse (steps 1, 3 and 4 of a load).

PostgreSQL and Redshift run exactly this text (so the PostgreSQL tests run the
SQL Redshift runs; ``tests/warehouse/test_redshift.py`` pins it); DuckDB runs it
too, with its own placeholders. Identifiers are always quoted (``quote``);
values are always bound (``%(name)s``).
"""

from __future__ import annotations

from collections.abc import Sequence

from ingestion.batch import EXTRACTED_AT, LOADED_AT
from ingestion.config import TableConfig

AUDIT_TABLE = "_load_audit"
AUDIT_COLUMNS = (
    "table_name", "mode", "window_start", "window_end", "batch_id", "manifest_url", "files",
    "rows_staged", "rows_inserted", "rows_replaced", "rows_deleted", "bytes", "started_at",
    "finished_at", "duration_seconds",
)  # fmt: skip


def quote(identifier: str) -> str:
    """A double-quoted identifier (PostgreSQL, Redshift, DuckDB): quotes inside are doubled."""
    return '"' + identifier.replace('"', '""') + '"'


def target_table(raw_schema: str, table: TableConfig) -> str:
    return f"{quote(raw_schema)}.{quote(table.name)}"


def staging_table(table: TableConfig) -> str:
    return quote(f"{table.name}__stage")


def latest_table(table: TableConfig) -> str:
    return quote(f"{table.name}__latest")


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
    order.append(EXTRACTED_AT)
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
    return (
        f"insert into {quote(raw_schema)}.{quote(AUDIT_TABLE)} ({', '.join(AUDIT_COLUMNS)})\n"
        f"values ({', '.join(f'%({c})s' for c in AUDIT_COLUMNS)})"
    )
