"""The load's SQL text, the same for every warehouse (steps 1, 3 and 4 of a load).

PostgreSQL and Redshift run exactly this text (so the PostgreSQL tests run the
SQL Redshift runs; ``tests/warehouse/test_redshift.py`` pins it); DuckDB runs it
too, with its own placeholders. Identifiers are always quoted (``quote``);
values are always bound (``%(name)s``; in a statement with parameters a ``%`` of
a name is doubled, see ``with_loaded_at``).
"""

from __future__ import annotations

from collections.abc import Sequence

from ingestion.batch import DELETED_AT, EXTRACTED_AT, LOADED_AT, METADATA_COLUMNS
from ingestion.config import TableConfig

AUDIT_TABLE = "_load_audit"
AUDIT_COLUMNS = (
    "table_name", "mode", "window_start", "window_end", "batch_id", "manifest_url", "files",
    "rows_staged", "rows_inserted", "rows_replaced", "rows_deleted", "bytes", "started_at",
    "finished_at", "duration_seconds", "status", "error_class", "error_message", "schema_changes",
    "rows_flagged_deleted", "rows_unflagged_deleted",
)  # fmt: skip
#: Audit columns added after the first release: an older ``_load_audit`` gets them added
#: (``alter table ... add column``; Redshift has no ``add column if not exists``).
AUDIT_ADDED_COLUMNS = {
    "status": "varchar(16)",
    "error_class": "varchar(128)",
    "error_message": "varchar(1024)",
    "schema_changes": "varchar(1024)",
    "rows_flagged_deleted": "bigint",
    "rows_unflagged_deleted": "bigint",
}


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
    duration_seconds double precision,
    status varchar(16),
    error_class varchar(128),
    error_message varchar(1024),
    schema_changes varchar(1024),
    rows_flagged_deleted bigint,
    rows_unflagged_deleted bigint
)"""


def audit_table(raw_schema: str) -> str:
    return f"{quote(raw_schema)}.{quote(AUDIT_TABLE)}"


def add_column_sql(target: str, column: str, column_type: str) -> str:
    """One column per statement: Redshift adds one column per ``alter table``."""
    return f"alter table {target} add column {quote(column)} {column_type}"


def drop_column_sql(target: str, column: str) -> str:
    return f"alter table {target} drop column {quote(column)}"


def alter_column_type_sql(target: str, column: str, column_type: str) -> str:
    return f"alter table {target} alter column {quote(column)} type {column_type}"


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
    # The rank's name differs from every column's (a source column may be named _row_rank).
    rank = "_row_rank"
    while rank in {c.lower() for c in columns}:
        rank += "_"
    return (
        f"create temporary table {latest_table(table)} as\n"
        f"select {column_list}\nfrom (\n"
        f"    select {column_list},\n"
        f"        row_number() over (partition by {partition} order by {order_by}) as {rank}\n"
        f"    from {staging_table(table)}\n"
        f") as ranked\nwhere {rank} = 1"
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
    """Every row (no longer used by a full refresh, which changes only what changed)."""
    return f"delete from {target_table(raw_schema, table)}"


def insert_new_sql(
    raw_schema: str, table: TableConfig, columns: Sequence[str], latest: str | None = None
) -> str:
    """Insert the keys the target does not hold (after the older versions were deleted)."""
    target = target_table(raw_schema, table)
    insert_list = ", ".join(quote(c) for c in [*columns, LOADED_AT])
    select_list = ", ".join(f"latest.{quote(c)}" for c in columns)
    return with_loaded_at(
        f"insert into {target} ({insert_list})\nselect {select_list}, ",
        f"\nfrom {latest or latest_table(table)} as latest\n"
        f"left join {target} as target\n    on {_key_match(table, 'target', 'latest')}\n"
        f"where target.{quote(table.primary_key[0])} is null",
    )


def insert_all_sql(
    raw_schema: str, table: TableConfig, columns: Sequence[str], latest: str | None = None
) -> str:
    """Every row of the batch into an emptied target (a full refresh now merges instead)."""
    target = target_table(raw_schema, table)
    insert_list = ", ".join(quote(c) for c in [*columns, LOADED_AT])
    select_list = ", ".join(quote(c) for c in columns)
    return with_loaded_at(
        f"insert into {target} ({insert_list})\nselect {select_list}, ",
        f"\nfrom {latest or latest_table(table)}",
    )


def with_loaded_at(before: str, after: str) -> str:
    """A statement run with the ``loaded_at`` parameter. Its text is a pyformat template
    (psycopg2 fills ``%(name)s`` in with Python's ``%``): a ``%`` in a quoted name of the
    text around the placeholder is doubled, so no name can become a placeholder."""
    return before.replace("%", "%%") + "%(loaded_at)s" + after.replace("%", "%%")


def _content_differs(columns: Sequence[str], left: str, right: str) -> str:
    """True when any column differs, NULL-safely, without ``is distinct from`` (Redshift has
    none). Not ``not (a = b or (a is null and b is null))``: with one side NULL, ``a = b`` is
    NULL and so is its negation, and the changed row would be kept. A column NULL on both
    sides makes its term NULL (not true), so it never marks a row changed."""
    terms = [
        f"({a} <> {b} or ({a} is null and {b} is not null) or ({a} is not null and {b} is null))"
        for a, b in ((f"{left}.{quote(c)}", f"{right}.{quote(c)}") for c in columns)
    ]
    return "\n        or ".join(terms)


def content_columns(table: TableConfig, columns: Sequence[str]) -> list[str]:
    """The batch's columns a full refresh compares: not the key, not the load metadata."""
    return [c for c in columns if c not in table.primary_key and c not in METADATA_COLUMNS]


def delete_gone_sql(raw_schema: str, table: TableConfig, latest: str | None = None) -> str:
    """Full refresh: delete the target rows whose key the batch no longer holds."""
    target = target_table(raw_schema, table)
    latest = latest or latest_table(table)
    return (
        f"delete from {target}\nwhere not exists (\n"
        f"    select 1 from {latest} as latest\n"
        f"    where {_key_match(table, 'latest', target)}\n)"
    )


def delete_changed_sql(
    raw_schema: str, table: TableConfig, columns: Sequence[str], latest: str | None = None
) -> str:
    """Full refresh: delete the target rows whose content differs from the batch's row of
    their key (``insert_new_sql`` then inserts them again); unchanged rows stay as stored."""
    target = target_table(raw_schema, table)
    latest = latest or latest_table(table)
    compared = content_columns(table, columns)
    changed = f"(\n        {_content_differs(compared, target, latest)}\n    )" if compared else "1 = 0"
    return (
        f"delete from {target}\nusing {latest}\nwhere {_key_match(table, target, latest)}\n    and {changed}"
    )


def insert_audit_sql(raw_schema: str) -> str:
    return (
        f"insert into {quote(raw_schema)}.{quote(AUDIT_TABLE)} ({', '.join(AUDIT_COLUMNS)})\n"
        f"values ({', '.join(f'%({c})s' for c in AUDIT_COLUMNS)})"
    )


# -- hard deletes (ingestion/reconcile.py) ---------------------------------------------


def keys_table(table: TableConfig) -> str:
    return quote(f"{table.name}__keys")


def create_keys_sql(raw_schema: str, table: TableConfig) -> str:
    """A temporary table for the source's keys, typed like the target's key columns."""
    key_list = ", ".join(quote(k) for k in table.primary_key)
    return (
        f"create temporary table {keys_table(table)} as\n"
        f"select {key_list}\nfrom {target_table(raw_schema, table)}\nwhere 1 = 0"
    )


def add_batch_keys_sql(table: TableConfig) -> str:
    """The batch's keys join the key snapshot: a row in the batch exists at the source."""
    key_list = ", ".join(quote(k) for k in table.primary_key)
    return f"insert into {keys_table(table)} ({key_list})\nselect {key_list}\nfrom {staging_table(table)}"


def flag_deleted_sql(raw_schema: str, table: TableConfig, keys: str) -> str:
    """Stamp ``_deleted_at`` (and ``_loaded_at``, so incremental models see the change) on
    the rows not flagged yet whose key ``keys`` does not hold. The target is named in full
    in the subquery, as in ``delete_gone_sql``."""
    target = target_table(raw_schema, table)
    head = with_loaded_at(f"update {target}\nset {quote(DELETED_AT)} = ", f", {quote(LOADED_AT)} = ")
    return head + with_loaded_at(
        "",
        f"\nwhere {target}.{quote(DELETED_AT)} is null\n    and not exists (\n"
        f"        select 1 from {keys} as present\n"
        f"        where {_key_match(table, 'present', target)}\n    )",
    )


def unflag_deleted_sql(raw_schema: str, table: TableConfig, keys: str) -> str:
    """Clear ``_deleted_at`` (and stamp ``_loaded_at``) of the flagged rows whose key is back."""
    target = target_table(raw_schema, table)
    return with_loaded_at(
        f"update {target}\nset {quote(DELETED_AT)} = null, {quote(LOADED_AT)} = ",
        f"\nwhere {target}.{quote(DELETED_AT)} is not null\n    and exists (\n"
        f"        select 1 from {keys} as present\n"
        f"        where {_key_match(table, 'present', target)}\n    )",
    )
