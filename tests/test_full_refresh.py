"""A full refresh changes only what changed: unchanged rows keep their load metadata.

The source is a SQLite table (embedded) or a MariaDB table (services) written here; the
expected counts are computed from the rows the test changes, the warehouse is read back
with plain SQL. Redshift's statements are pinned as exact text.
"""

from __future__ import annotations

import sqlite3
from datetime import datetime
from decimal import Decimal

import duckdb
import pytest

from ingestion import config, pipeline
from ingestion.batch import Batch
from ingestion.environments import Connection, Environment
from ingestion.load import loads_straight_into_target
from ingestion.warehouse import open_warehouse, sql
from ingestion.warehouse.redshift import RedshiftWarehouse
from ingestion.window import Window
from tests.services_helpers import warehouse_rows

WINDOW = Window(datetime(2026, 10, 30), datetime(2026, 10, 31))
ROWS = 2000
ACCOUNTS = config.parse_table({"name": "accounts", "primary_key": "id", "mode": "full_refresh"}, 0)
DDL = "CREATE TABLE accounts (id INT PRIMARY KEY, name VARCHAR(40), balance DECIMAL(10,2), note TEXT)"


def account(n: int) -> tuple:
    """Row n: every 7th note is NULL (NULL = NULL must count as unchanged)."""
    return (n, f"name {n}", f"{n * 3 % 1000}.{n % 100:02d}", None if n % 7 == 0 else f"note {n}")


# The second extract sees 0.1% of the rows changed (one value to NULL, one NULL to a value),
# one row deleted and one added.
CHANGED = {10: ("note", None), 14: ("note", "now set")}  # 10 had a note; 14 % 7 == 0 had none
DELETED = 500
ADDED = (ROWS + 1, "new account", "1.50", "fresh")
assert len(CHANGED) == ROWS // 1000  # 0.1%


def change_source(execute) -> None:
    for key, (column, value) in CHANGED.items():
        execute(f"UPDATE accounts SET {column} = %s WHERE id = %s", (value, key))
    execute("DELETE FROM accounts WHERE id = %s", (DELETED,))
    execute("INSERT INTO accounts VALUES (%s, %s, %s, %s)", ADDED)


def check_second_load(first: dict, second: dict, result, audit: dict) -> None:
    """first/second: key -> (name, balance, note, _batch_id, _extracted_at, _loaded_at)."""
    touched = set(CHANGED) | {ADDED[0]}
    assert DELETED in first and DELETED not in second
    assert set(second) == (set(first) - {DELETED}) | {ADDED[0]}
    for key, row in second.items():
        if key in touched:
            assert row[3] == result.batch_id, key
            assert row[5] > first[1][5], key  # every first-load row has one _loaded_at
        else:
            assert row == first[key], key  # content and _batch_id, _extracted_at, _loaded_at
    assert second[10][2] is None and second[14][2] == "now set"
    assert second[ADDED[0]][:3] == ("new account", Decimal("1.50"), "fresh")
    counts = (len(CHANGED) + 1, len(CHANGED), 1)  # inserted (changed + new), replaced, deleted
    assert (result.rows_inserted, result.rows_replaced, result.rows_deleted) == counts
    assert (audit["rows_inserted"], audit["rows_replaced"], audit["rows_deleted"]) == counts
    assert audit["status"] == "succeeded" and audit["batch_id"] == result.batch_id


# ------------------------------------------------------------------ embedded (DuckDB)


def duckdb_rows(env: Environment, sql_text: str) -> list[tuple]:
    db = duckdb.connect(env.warehouse.host)
    try:
        return db.execute(sql_text).fetchall()
    finally:
        db.close()


RAW = "select id, name, balance, note, _batch_id, _extracted_at, _loaded_at from raw_data.accounts"
AUDIT = (
    "select batch_id, status, rows_inserted, rows_replaced, rows_deleted from raw_data._load_audit "
    "order by started_at"
)


def audit_dicts(rows: list[tuple]) -> list[dict]:
    names = ("batch_id", "status", "rows_inserted", "rows_replaced", "rows_deleted")
    return [dict(zip(names, row, strict=True)) for row in rows]


@pytest.fixture
def accounts_sqlite(embedded: Environment) -> Environment:
    db = sqlite3.connect(embedded.source.host)
    with db:
        db.execute(DDL)
        db.executemany("INSERT INTO accounts VALUES (?, ?, ?, ?)", [account(n) for n in range(1, ROWS + 1)])
    db.close()
    return embedded


def test_full_refresh_keeps_unchanged_rows_and_replaces_only_changed_ones_on_duckdb(
    accounts_sqlite: Environment, caplog: pytest.LogCaptureFixture
) -> None:
    env = accounts_sqlite
    with caplog.at_level("INFO", logger="ingestion.load"):
        pipeline.run_table(ACCOUNTS, WINDOW, env)
    assert "bulk-loading into the table" in caplog.text  # the first load: an empty target
    first = {row[0]: row[1:] for row in duckdb_rows(env, RAW)}
    assert len(first) == ROWS
    db = sqlite3.connect(env.source.host)
    with db:
        change_source(lambda text, params: db.execute(text.replace("%s", "?"), params))
    db.close()

    caplog.clear()
    with caplog.at_level("INFO", logger="ingestion.load"):
        _, result = pipeline.run_table(ACCOUNTS, WINDOW, env)

    assert "bulk-loading into the table" not in caplog.text  # rows in the target: merged
    second = {row[0]: row[1:] for row in duckdb_rows(env, RAW)}
    audit = audit_dicts(duckdb_rows(env, AUDIT))
    assert len(audit) == 2
    check_second_load(first, second, result, audit[1])


def test_full_refresh_rerun_without_changes_changes_nothing(accounts_sqlite: Environment) -> None:
    pipeline.run_table(ACCOUNTS, WINDOW, accounts_sqlite)
    before = sorted(duckdb_rows(accounts_sqlite, RAW))

    _, rerun = pipeline.run_table(ACCOUNTS, WINDOW, accounts_sqlite)

    assert sorted(duckdb_rows(accounts_sqlite, RAW)) == before
    assert (rerun.rows_inserted, rerun.rows_replaced, rerun.rows_deleted) == (0, 0, 0)


# ------------------------------------------------------------------ services (PostgreSQL)


def test_full_refresh_keeps_unchanged_rows_and_replaces_only_changed_ones_on_postgres(
    services: Environment, mysql_db
) -> None:
    mysql_db.execute(DDL)
    mysql_db.executemany(
        "INSERT INTO accounts VALUES (%s, %s, %s, %s)", [account(n) for n in range(1, ROWS + 1)]
    )
    pipeline.run_table(ACCOUNTS, WINDOW, services)
    first = {row[0]: row[1:] for row in warehouse_rows(services, RAW)}
    assert len(first) == ROWS
    change_source(mysql_db.execute)

    _, result = pipeline.run_table(ACCOUNTS, WINDOW, services)

    second = {row[0]: row[1:] for row in warehouse_rows(services, RAW)}
    audit = audit_dicts(warehouse_rows(services, AUDIT))
    assert len(audit) == 2
    check_second_load(first, second, result, audit[1])


# ------------------------------------------------------------------ Redshift's SQL

CHANNELS = config.parse_table(
    {"name": "user_session_channel", "primary_key": ["userid", "sessionid"], "mode": "full_refresh"}, 0
)
CHANNELS_COLUMNS = ["userid", "sessionid", "channel", "note", "_batch_id", "_extracted_at"]
REDSHIFT = RedshiftWarehouse(Connection("pipeline_warehouse", "redshift", extra={"iam_role": "arn:x"}))


def test_full_refresh_deletes_only_keys_the_batch_no_longer_holds() -> None:
    assert sql.delete_gone_sql("raw_data", CHANNELS, sql.staging_table(CHANNELS)) == (
        'delete from "raw_data"."user_session_channel"\n'
        "where not exists (\n"
        '    select 1 from "user_session_channel__stage" as latest\n'
        '    where latest."userid" = "raw_data"."user_session_channel"."userid" '
        'and latest."sessionid" = "raw_data"."user_session_channel"."sessionid"\n'
        ")"
    )


def test_full_refresh_deletes_changed_rows_comparing_content_null_safely_without_is_distinct_from() -> None:
    statement = sql.delete_changed_sql("raw_data", CHANNELS, CHANNELS_COLUMNS)

    target, latest = '"raw_data"."user_session_channel"', '"user_session_channel__latest"'
    assert statement == (
        f"delete from {target}\n"
        f"using {latest}\n"
        f'where {target}."userid" = {latest}."userid" and {target}."sessionid" = {latest}."sessionid"\n'
        "    and (\n"
        f'        ({target}."channel" <> {latest}."channel" or ({target}."channel" is null and '
        f'{latest}."channel" is not null) or ({target}."channel" is not null and '
        f'{latest}."channel" is null))\n'
        f'        or ({target}."note" <> {latest}."note" or ({target}."note" is null and '
        f'{latest}."note" is not null) or ({target}."note" is not null and {latest}."note" is null))\n'
        "    )"
    )
    assert "distinct" not in statement  # Redshift has no IS [NOT] DISTINCT FROM
    assert "truncate" not in statement


@pytest.mark.parametrize(
    ("stored", "batch", "changed"),
    [
        (("a", None), ("a", None), False),
        (("a", None), ("a", "x"), True),
        (("a", "x"), ("a", None), True),
        (("a", "x"), ("b", "x"), True),
        ((None, None), (None, None), False),
    ],
)
def test_changed_row_predicate_is_null_safe(stored: tuple, batch: tuple, changed: bool) -> None:
    db = duckdb.connect()
    db.execute(
        "create schema raw_data; create table raw_data.user_session_channel "
        "(userid int, sessionid varchar, channel varchar, note varchar, _batch_id varchar)"
    )
    db.execute("create table user_session_channel__latest as select * from raw_data.user_session_channel")
    db.execute("insert into raw_data.user_session_channel values (1, 's', ?, ?, 'old')", list(stored))
    db.execute("insert into user_session_channel__latest values (1, 's', ?, ?, 'new')", list(batch))

    deleted = db.execute(sql.delete_changed_sql("raw_data", CHANNELS, CHANNELS_COLUMNS[:-1])).fetchone()[0]

    assert deleted == (1 if changed else 0)


def test_full_refresh_of_a_table_of_key_columns_only_replaces_nothing() -> None:
    keys_only = sql.delete_changed_sql("raw_data", CHANNELS, ["userid", "sessionid", "_batch_id"])

    assert keys_only.endswith("    and 1 = 0")


class FakeCursor:
    def __init__(self, exists: bool) -> None:
        self.exists, self.statements = exists, []

    def execute(self, statement: str, params=None) -> None:
        self.statements.append(statement)

    def fetchone(self) -> tuple:
        return (self.exists,)


@pytest.mark.parametrize(("exists", "straight"), [(True, False), (False, True)], ids=["rows", "empty"])
def test_a_full_refresh_goes_straight_into_the_table_only_when_it_is_empty(
    exists: bool, straight: bool
) -> None:
    warehouse = open_warehouse(Connection("pipeline_warehouse", "postgres", host="h", schema="d"))
    unique = Batch("20261031T010203Z-1a2b3c4d", datetime(2026, 10, 31), unique_key=True)
    cursor = FakeCursor(exists)

    assert loads_straight_into_target(warehouse, cursor, "raw_data", CHANNELS, unique) is straight
    assert cursor.statements == ['select exists (select 1 from "raw_data"."user_session_channel")']
