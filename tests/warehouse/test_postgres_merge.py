"""The merge into a PostgreSQL table that holds rows finds the batch's keys by an index.

The source is a MariaDB table written here; the expected rows are the ones written, the
warehouse is read back with plain SQL (``pg_indexes`` for the index)."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

import pytest

from ingestion import config, load, pipeline
from ingestion.environments import Environment
from ingestion.warehouse import open_warehouse
from ingestion.warehouse.postgres import key_index_name
from ingestion.window import Window
from tests.services_helpers import warehouse_rows

WINDOW = Window(datetime(2026, 10, 30), datetime(2026, 10, 31))
PAIRS = config.parse_table({"name": "pairs", "primary_key": ["a", "b"], "mode": "full_refresh"}, 0)
DDL = "CREATE TABLE pairs (a INT, b INT, note VARCHAR(20), PRIMARY KEY (a, b))"


INDEXES = "select indexname, indexdef from pg_indexes where schemaname = 'raw_data' and tablename = 'pairs'"
ROWS = "select a, b, note from raw_data.pairs order by a, b"


def test_a_merge_indexes_the_key_once_and_a_direct_load_leaves_it_out(
    services: Environment, mysql_db
) -> None:
    rows = [(a, b, f"n{a}.{b}") for a in range(1, 21) for b in range(1, 4)]
    mysql_db.execute(DDL)
    mysql_db.executemany("INSERT INTO pairs VALUES (%s, %s, %s)", rows)
    pipeline.run_table(PAIRS, WINDOW, services)  # into an empty table: no merge, no index
    assert warehouse_rows(services, INDEXES) == []

    mysql_db.execute("UPDATE pairs SET note = 'changed' WHERE a = 3 AND b = 2")
    mysql_db.execute("INSERT INTO pairs VALUES (21, 1, 'new')")
    pipeline.run_table(PAIRS, WINDOW, services)  # the first merge into rows builds it
    pipeline.run_table(PAIRS, WINDOW, services)

    indexes = warehouse_rows(services, INDEXES)
    assert [name for name, _ in indexes] == ["pairs__key"]
    assert indexes[0][1].endswith("USING btree (a, b)")
    expected = sorted([*(r if r[:2] != (3, 2) else (3, 2, "changed") for r in rows), (21, 1, "new")])
    assert warehouse_rows(services, ROWS) == expected


def test_a_merge_into_an_empty_table_indexes_the_key_after_its_insert(
    services: Environment, mysql_db
) -> None:
    mysql_db.execute(DDL)
    mysql_db.executemany("INSERT INTO pairs VALUES (%s, %s, %s)", [(1, 1, "x"), (1, 2, None)])
    extracted = pipeline.run_extract(PAIRS, WINDOW, services)
    load.load(
        PAIRS, extracted.manifest_url, WINDOW, open_warehouse(services.warehouse),
        pipeline.environment_stage(services), force_staging=True,
    )  # fmt: skip
    assert [name for name, _ in warehouse_rows(services, INDEXES)] == ["pairs__key"]
    assert warehouse_rows(services, ROWS) == [(1, 1, "x"), (1, 2, None)]


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("nps", "nps__key"),
        ("t" * 70, "t" * 63),
        ("é" * 40, "é" * 31),  # 2 bytes each: 62 bytes, the next would make 64
    ],
)
def test_the_key_index_name_fits_postgres_63_bytes(name: str, expected: str) -> None:
    table = replace(
        config.parse_table({"name": "x", "primary_key": "id", "mode": "full_refresh"}, 0), name=name
    )
    assert key_index_name(table) == expected


EVENTS = config.parse_table(
    {"name": "events", "primary_key": "id", "cursor": "modified_at", "mode": "incremental"}, 0
)
TARGET_ROWS = 50_000


def _plans(pg_warehouse, batch_rows: int) -> tuple[str, str, dict[str, str], bool]:
    """The plans of the merge's delete and insert after ``prepare_merge`` (with a staging
    table of ``batch_rows`` rows against TARGET_ROWS rows, neither analysed), the planner
    settings then, and whether ``finish_merge`` gave back the ones before."""
    warehouse = open_warehouse(pg_warehouse)
    db = warehouse.connect()
    try:
        cursor = db.cursor()
        cursor.execute("create schema raw_data")
        cursor.execute(
            "create table raw_data.events (id bigint, modified_at timestamp, note text, _loaded_at timestamp)"
        )
        cursor.execute(
            "insert into raw_data.events select g, timestamp '2026-01-01' + g * interval '1 second', "
            f"'n' || g, now() from generate_series(1, {TARGET_ROWS}) as g"
        )
        cursor.execute(
            'create temporary table "events__stage" as select id, modified_at, note from raw_data.events '
            f"where id > {TARGET_ROWS - batch_rows // 2}"
        )
        cursor.execute(
            "insert into \"events__stage\" select g, now(), 'new' "
            f"from generate_series({TARGET_ROWS + 1}, {TARGET_ROWS + batch_rows - batch_rows // 2}) as g"
        )
        settings = (
            "select name, setting from pg_settings "
            "where name in ('enable_hashjoin', 'enable_mergejoin', 'jit')"
        )
        before = dict(warehouse.fetch_all(cursor, settings))
        warehouse.prepare_merge(cursor, "raw_data", EVENTS, batch_rows)
        during = dict(warehouse.fetch_all(cursor, settings))
        plans = []
        columns = ["id", "modified_at", "note"]
        for statement in (
            load.q.delete_older_sql("raw_data", EVENTS, '"events__stage"'),
            load.q.insert_new_sql("raw_data", EVENTS, columns, '"events__stage"'),
        ):
            cursor.execute("explain " + statement, {"loaded_at": datetime(2026, 1, 2)})
            plans.append("\n".join(row[0] for row in cursor.fetchall()))
        warehouse.finish_merge(cursor, "raw_data", EVENTS)
        restored = dict(warehouse.fetch_all(cursor, settings)) == before
        return plans[0], plans[1], during, restored
    finally:
        db.rollback()
        db.close()


def test_a_small_batch_is_merged_by_index_lookups_and_the_settings_are_reset(pg_warehouse) -> None:
    delete, insert, during, restored = _plans(pg_warehouse, batch_rows=200)
    for plan in (delete, insert):
        assert "Index" in plan and "events__key" in plan, plan
        assert "Hash" not in plan and "Merge Join" not in plan, plan
    assert during == {"enable_hashjoin": "off", "enable_mergejoin": "off", "jit": "off"}
    assert restored


def test_a_batch_of_a_tenth_of_the_target_or_more_is_left_to_the_planner(pg_warehouse) -> None:
    _, _, during, _ = _plans(pg_warehouse, batch_rows=TARGET_ROWS // 5)
    assert during["enable_hashjoin"] == "on" and during["enable_mergejoin"] == "on"
    assert during["jit"] == "off"
