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
