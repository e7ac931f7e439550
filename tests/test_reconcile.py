"""Hard deletes: rows whose key is gone from the source are flagged, in the load's transaction.

The source is a SQLite table (embedded) or a MariaDB table (services) written here; which
rows must be flagged is known from the rows the test deletes; the warehouse is read back
with plain SQL. Redshift's statements are pinned as exact text.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime

import pytest

from ingestion import config, pipeline, reconcile
from ingestion.environments import Connection, Environment
from ingestion.errors import LoadError
from ingestion.load import load
from ingestion.stage import Manifest, ManifestEntry
from ingestion.warehouse import StagedBatch, open_warehouse, sql
from ingestion.warehouse.redshift import RedshiftWarehouse
from ingestion.window import Window
from tests.services_helpers import warehouse_rows

DAY = [Window(datetime(2026, 10, 10 + d), datetime(2026, 10, 11 + d)) for d in range(2)]
ROWS = 300
ITEMS = config.parse_table(
    {
        "name": "items", "primary_key": "id", "mode": "incremental", "cursor": "modified_at",
        "lookback": "1h", "hard_deletes": "reconcile",
    },
    0,
)  # fmt: skip
ACCOUNTS = config.parse_table(
    {"name": "accounts", "primary_key": "id", "mode": "full_refresh", "hard_deletes": "reconcile"}, 0
)
DDL = {
    "items": "CREATE TABLE items (id INT PRIMARY KEY, modified_at DATETIME, val VARCHAR(20))",
    "accounts": "CREATE TABLE accounts (id INT PRIMARY KEY, name VARCHAR(40))",
}
RAW = "select id, _deleted_at, _loaded_at, _batch_id from raw_data.{table} order by id"
AUDIT = (
    "select batch_id, rows_flagged_deleted, rows_unflagged_deleted, rows_deleted, rows_staged "
    "from raw_data._load_audit where status = 'succeeded' order by started_at"
)


def item(n: int, day: int = 0) -> tuple:
    return (n, f"2026-10-{10 + day} {n % 24:02d}:00:00", f"value {n}")


class Setup:
    """One environment: its source (``%s`` placeholders) and its warehouse, read back with SQL."""

    def __init__(self, env: Environment, execute: Callable[[str, tuple], None]) -> None:
        self.env, self.execute = env, execute

    def rows(self, text: str) -> list[tuple]:
        return warehouse_rows(self.env, text)

    def raw(self, table: str) -> dict[int, tuple]:
        """id -> (_deleted_at, _loaded_at, _batch_id)."""
        return {row[0]: row[1:] for row in self.rows(RAW.format(table=table))}

    def audit(self) -> list[tuple]:
        return self.rows(AUDIT)


@pytest.fixture
def embedded_setup(embedded: Environment) -> Setup:
    db = sqlite3.connect(embedded.source.host, isolation_level=None)

    def execute(text: str, params: tuple = ()) -> None:
        db.execute(text.replace("%s", "?"), params)

    for ddl in DDL.values():
        execute(ddl)
    return Setup(embedded, execute)


@pytest.fixture
def services_setup(services: Environment, mysql_db) -> Setup:
    for ddl in DDL.values():
        mysql_db.execute(ddl)
    return Setup(services, mysql_db.execute)


@pytest.fixture(params=["embedded", "services"])
def setup(request: pytest.FixtureRequest) -> Setup:
    return request.getfixturevalue(f"{request.param}_setup")


def fill_items(setup: Setup) -> None:
    for n in range(1, ROWS + 1):
        setup.execute("INSERT INTO items VALUES (%s, %s, %s)", item(n))


def test_hard_delete_is_flagged_comeback_unflagged_and_rerun_changes_nothing(setup: Setup) -> None:
    fill_items(setup)
    _, first = pipeline.run_table(ITEMS, DAY[0], setup.env)
    assert first.rows_inserted == ROWS
    stored = setup.raw("items")
    assert all(deleted is None for deleted, _, _ in stored.values())

    # Day 2: two rows deleted at the source (they never change again), one row added.
    for gone in (7, 8):
        setup.execute("DELETE FROM items WHERE id = %s", (gone,))
    setup.execute("INSERT INTO items VALUES (%s, %s, %s)", item(ROWS + 1, day=1))
    _, second = pipeline.run_table(ITEMS, DAY[1], setup.env)

    after = setup.raw("items")
    assert set(after) == set(range(1, ROWS + 2))  # flagged, never deleted
    flagged = {key for key, (deleted, _, _) in after.items() if deleted is not None}
    assert flagged == {7, 8}
    for key in (7, 8):
        deleted_at, loaded_at, batch_id = after[key]
        assert deleted_at == loaded_at > stored[key][1]  # _loaded_at stamped: dbt sees the change
        assert batch_id == stored[key][2]
    for key in set(stored) - {7, 8}:
        assert after[key] == stored[key]  # untouched
    assert (second.rows_flagged_deleted, second.rows_unflagged_deleted) == (2, 0)
    assert setup.audit()[-1][:4] == (second.batch_id, 2, 0, 0)

    # Day 2 again: row 7 is back (restored with its old cursor, outside the window).
    setup.execute("INSERT INTO items VALUES (%s, %s, %s)", item(7))
    _, third = pipeline.run_table(ITEMS, DAY[1], setup.env)
    back = setup.raw("items")
    assert back[7][0] is None and back[7][1] > after[7][1]
    assert back[8] == after[8]  # still flagged, not stamped again
    assert (third.rows_flagged_deleted, third.rows_unflagged_deleted) == (0, 1)
    assert setup.audit()[-1][1:3] == (0, 1)

    # The same interval once more: nothing to flag or un-flag, the table is unchanged.
    _, rerun = pipeline.run_table(ITEMS, DAY[1], setup.env)
    assert setup.raw("items") == back
    assert (rerun.rows_flagged_deleted, rerun.rows_unflagged_deleted, rerun.rows_inserted) == (0, 0, 0)


def test_a_row_in_the_batch_is_never_flagged_even_when_the_key_snapshot_lacks_it(setup: Setup) -> None:
    """The key snapshot is read after the data: a row inserted in between is in the
    snapshot; a row deleted in between is in the batch. The batch's keys count as present."""
    fill_items(setup)
    pipeline.run_table(ITEMS, DAY[0], setup.env)
    setup.execute("INSERT INTO items VALUES (%s, %s, %s)", item(ROWS + 1, day=1))
    extracted = pipeline.run_extract(ITEMS, DAY[1], setup.env)
    setup.execute("DELETE FROM items WHERE id = %s", (ROWS + 1,))
    setup.execute("DELETE FROM items WHERE id = %s", (5,))
    source = pipeline.open_source(setup.env.source)
    try:  # a key snapshot read after both deletes
        reconcile.extract_keys(ITEMS, source, pipeline.environment_stage(setup.env), extracted.manifest_url)
    finally:
        source.close()

    result = pipeline.run_load(ITEMS, extracted.manifest_url, DAY[1], setup.env)

    after = setup.raw("items")
    assert after[ROWS + 1][0] is None  # in the batch: exists
    assert after[5][0] is not None  # in neither
    assert (result.rows_flagged_deleted, result.rows_inserted) == (1, 1)


def test_a_stale_batch_loaded_late_reconciles_nothing(setup: Setup) -> None:
    """A batch extracted before a newer one that loaded first carries an old key snapshot:
    loading it must neither un-flag a row gone since nor flag a row that came since."""
    fill_items(setup)
    pipeline.run_table(ITEMS, DAY[0], setup.env)
    stale = pipeline.run_extract(ITEMS, DAY[0], setup.env)  # keys 1..ROWS, 7 among them
    time.sleep(1.1)  # batch ids order extracts by the second
    setup.execute("DELETE FROM items WHERE id = %s", (7,))
    setup.execute("INSERT INTO items VALUES (%s, %s, %s)", item(ROWS + 1, day=1))
    pipeline.run_table(ITEMS, DAY[1], setup.env)
    before = setup.raw("items")
    assert before[7][0] is not None and before[ROWS + 1][0] is None

    late = pipeline.run_load(ITEMS, stale.manifest_url, DAY[0], setup.env)

    assert (late.rows_flagged_deleted, late.rows_unflagged_deleted) == (0, 0)
    assert setup.raw("items") == before  # 7 still flagged, ROWS + 1 not flagged, nothing replaced
    assert setup.audit()[-1][:3] == (stale.batch_id, 0, 0)


def test_a_failed_load_flags_nothing(setup: Setup) -> None:
    fill_items(setup)
    pipeline.run_table(ITEMS, DAY[0], setup.env)
    before = setup.raw("items")
    setup.execute("DELETE FROM items WHERE id = %s", (9,))
    setup.execute("INSERT INTO items VALUES (%s, %s, %s)", item(ROWS + 1, day=1))
    extracted = pipeline.run_extract(ITEMS, DAY[1], setup.env)

    def fail() -> None:
        raise RuntimeError("the warehouse went away before the commit")

    warehouse = open_warehouse(setup.env.warehouse)
    stage = pipeline.environment_stage(setup.env)
    with pytest.raises(LoadError, match="nothing changed"):
        load(ITEMS, extracted.manifest_url, DAY[1], warehouse, stage, before_commit=fail)

    assert setup.raw("items") == before  # neither the new row nor the flag
    result = load(ITEMS, extracted.manifest_url, DAY[1], warehouse, stage)
    assert setup.raw("items")[9][0] is not None
    assert (result.rows_flagged_deleted, result.rows_inserted) == (1, 1)


def test_full_refresh_with_reconcile_flags_gone_rows_instead_of_deleting_them(setup: Setup) -> None:
    for n in range(1, ROWS + 1):
        setup.execute("INSERT INTO accounts VALUES (%s, %s)", (n, f"name {n}"))
    pipeline.run_table(ACCOUNTS, DAY[0], setup.env)
    stored = setup.raw("accounts")
    setup.execute("DELETE FROM accounts WHERE id = %s", (3,))

    _, second = pipeline.run_table(ACCOUNTS, DAY[1], setup.env)

    after = setup.raw("accounts")
    assert set(after) == set(stored)
    assert after[3][0] is not None and after[3][0] == after[3][1]
    assert {key: row for key, row in after.items() if key != 3} == {
        key: row for key, row in stored.items() if key != 3
    }
    assert (second.rows_deleted, second.rows_flagged_deleted, second.rows_inserted) == (0, 1, 0)

    setup.execute("INSERT INTO accounts VALUES (%s, %s)", (3, "name 3"))
    _, third = pipeline.run_table(ACCOUNTS, DAY[1], setup.env)
    assert setup.raw("accounts")[3][0] is None
    assert (third.rows_unflagged_deleted, third.rows_inserted, third.rows_replaced) == (1, 0, 0)


def test_an_existing_raw_table_gains_the_deleted_at_column(setup: Setup) -> None:
    """A raw table made before hard deletes were reconciled has no ``_deleted_at``."""
    fill_items(setup)
    plain = replace(ITEMS, hard_deletes="off")
    pipeline.run_table(plain, DAY[0], setup.env)
    db = open_warehouse(setup.env.warehouse).connect()
    cursor = db.cursor()
    cursor.execute('alter table raw_data.items drop column "_deleted_at"')
    db.commit()
    db.close()
    setup.execute("DELETE FROM items WHERE id = %s", (4,))

    _, result = pipeline.run_table(ITEMS, DAY[1], setup.env)

    assert setup.raw("items")[4][0] is not None
    assert "added _deleted_at timestamp" in (result.schema_changes or "")


def test_without_reconcile_nothing_is_flagged_and_no_keys_are_staged(embedded_setup: Setup) -> None:
    fill_items(embedded_setup)
    plain = replace(ITEMS, hard_deletes="off")
    pipeline.run_table(plain, DAY[0], embedded_setup.env)
    embedded_setup.execute("DELETE FROM items WHERE id = %s", (4,))

    extracted, result = pipeline.run_table(plain, DAY[1], embedded_setup.env)

    assert all(row[0] is None for row in embedded_setup.raw("items").values())
    assert result.rows_flagged_deleted == 0
    stage = pipeline.environment_stage(embedded_setup.env)
    assert reconcile.read_keys_manifest(stage, extracted.manifest_url) is None


def test_the_key_snapshot_sits_next_to_the_data_manifest(embedded_setup: Setup) -> None:
    fill_items(embedded_setup)
    extracted = pipeline.run_extract(ITEMS, DAY[0], embedded_setup.env)

    stage = pipeline.environment_stage(embedded_setup.env)
    keys = reconcile.read_keys_manifest(stage, extracted.manifest_url)
    assert keys is not None and keys.url == extracted.manifest_url.replace(
        "/manifest.json", "/keys/manifest.json"
    )
    assert keys.record_count == ROWS
    table = stage.open_parquet(keys.entries[0].url).read()
    assert table.column_names == ["id"]
    assert sorted(table.column("id").to_pylist()) == list(range(1, ROWS + 1))


@pytest.mark.parametrize(
    ("value", "expected"), [(None, "off"), ("off", "off"), (False, "off"), ("reconcile", "reconcile")]
)
def test_hard_deletes_setting(value, expected: str) -> None:
    entry = {"name": "t", "primary_key": "id", "mode": "full_refresh"}
    if value is not None:
        entry["hard_deletes"] = value
    assert config.parse_table(entry, 0).hard_deletes == expected


def test_an_unknown_hard_deletes_value_names_the_table() -> None:
    entry = {"name": "orders", "primary_key": "id", "mode": "full_refresh", "hard_deletes": "delete"}
    with pytest.raises(config.ConfigError, match="table 'orders': hard_deletes 'delete' must be one of"):
        config.parse_table(entry, 0)


# ------------------------------------------------------------------ Redshift's SQL

LINES = config.parse_table(
    {
        "name": "order_lines", "primary_key": ["order_id", "line_no"], "mode": "incremental",
        "cursor": "updated_at", "hard_deletes": "reconcile",
    },
    0,
)  # fmt: skip
TARGET = '"raw_data"."order_lines"'


def test_redshift_key_table_statements() -> None:
    assert sql.create_keys_sql("raw_data", LINES) == (
        'create temporary table "order_lines__keys" as\n'
        'select "order_id", "line_no"\n'
        f"from {TARGET}\n"
        "where 1 = 0"
    )
    assert sql.add_batch_keys_sql(LINES) == (
        'insert into "order_lines__keys" ("order_id", "line_no")\n'
        'select "order_id", "line_no"\n'
        'from "order_lines__stage"'
    )


def test_redshift_flag_and_unflag_statements() -> None:
    keys = sql.keys_table(LINES)
    match = f'present."order_id" = {TARGET}."order_id" and present."line_no" = {TARGET}."line_no"'
    assert sql.flag_deleted_sql("raw_data", LINES, keys) == (
        f"update {TARGET}\n"
        'set "_deleted_at" = %(loaded_at)s, "_loaded_at" = %(loaded_at)s\n'
        f'where {TARGET}."_deleted_at" is null\n'
        "    and not exists (\n"
        '        select 1 from "order_lines__keys" as present\n'
        f"        where {match}\n"
        "    )"
    )
    assert sql.unflag_deleted_sql("raw_data", LINES, keys) == (
        f"update {TARGET}\n"
        'set "_deleted_at" = null, "_loaded_at" = %(loaded_at)s\n'
        f'where {TARGET}."_deleted_at" is not null\n'
        "    and exists (\n"
        '        select 1 from "order_lines__keys" as present\n'
        f"        where {match}\n"
        "    )"
    )


class RecordingCursor:
    def __init__(self, count: int) -> None:
        self.count, self.statements = count, []

    def execute(self, statement: str, params=None) -> None:
        self.statements.append(statement)

    def fetchone(self) -> tuple:
        return (self.count,)


def test_redshift_copies_the_key_snapshot_by_its_manifest() -> None:
    redshift = RedshiftWarehouse(
        Connection("pipeline_warehouse", "redshift", extra={"iam_role": "arn:aws:iam::1:role/copy"})
    )
    url = "s3://bucket/stage/order_lines/20261030T000000Z_20261031T000000Z/a1/keys/manifest.json"
    manifest = Manifest(url, (ManifestEntry(url.replace("manifest.json", "part-00000.parquet"), 10, 4),))
    cursor = RecordingCursor(4)

    loaded = redshift.bulk_load(
        cursor, sql.keys_table(LINES), StagedBatch(manifest, None, LINES.primary_key, {})
    )

    assert loaded == 4
    assert cursor.statements == [
        f"copy \"order_lines__keys\"\nfrom '{url}'\niam_role 'arn:aws:iam::1:role/copy'\n"
        "manifest\nformat as parquet",
        'select count(*) from "order_lines__keys"',
    ]
