"""One table, one window, end to end through ``pipeline.run_*`` on the embedded
environment: SQLite source, local stage, DuckDB warehouse.

Every expected value is computed from the SQLite file (read with ``sqlite3``) or written
literally; the warehouse is read back with ``duckdb`` (``tests/embedded_helpers.py``).
"""

from __future__ import annotations

from datetime import datetime

import pytest

from ingestion import pipeline
from ingestion.environments import Environment
from ingestion.window import Window
from tests.embedded_helpers import (
    INCREMENTAL,
    KEYS,
    audit_rows,
    business,
    interval,
    raw_rows,
    run,
    source_rows,
    window_rows,
)

# ------------------------------------------------------------------ one window


@pytest.mark.parametrize("table", INCREMENTAL)
@pytest.mark.parametrize("index", [0, 1, 2])
def test_window_rows_land_in_raw_data_exactly_once(
    source: Environment, tables: dict, table: str, index: int
) -> None:
    expected = window_rows(source, table, interval(index))
    assert expected, "the demo data must put rows in every window"

    run(source, tables, table, index)

    loaded = raw_rows(source, table)
    keys = [tuple(row[k] for k in KEYS[table]) for row in loaded]
    assert len(keys) == len(set(keys)) == len(expected)
    assert business(loaded) == expected


@pytest.mark.parametrize("table", INCREMENTAL)
def test_overlapping_windows_load_each_key_once(source: Environment, tables: dict, table: str) -> None:
    for index in (0, 1, 2):
        run(source, tables, table, index)

    loaded = raw_rows(source, table)
    keys = [tuple(row[k] for k in KEYS[table]) for row in loaded]
    assert len(keys) == len(set(keys))
    assert business(loaded) == source_rows(source, table)


@pytest.mark.parametrize("table", INCREMENTAL)
def test_rerun_same_window_leaves_table_unchanged(source: Environment, tables: dict, table: str) -> None:
    run(source, tables, table, 0)
    run(source, tables, table, 1)
    before = raw_rows(source, table)
    assert len(before) == len(
        {tuple(r[k] for k in KEYS[table]) for i in (0, 1) for r in window_rows(source, table, interval(i))}
    )

    _, rerun = run(source, tables, table, 1)

    assert raw_rows(source, table) == before
    assert (rerun.rows_inserted, rerun.rows_replaced, rerun.rows_deleted) == (0, 0, 0)


# ------------------------------------------------------------------ a window without rows


@pytest.mark.parametrize("table", INCREMENTAL)
def test_window_without_rows_loads_nothing_and_writes_an_audit_row(
    source: Environment, tables: dict, table: str
) -> None:
    window = Window(datetime(2027, 1, 1), datetime(2027, 1, 2))

    extracted, result = pipeline.run_table(tables[table], window, source)

    assert raw_rows(source, table) == []
    assert (extracted.rows, extracted.files, result.rows_staged, result.rows_inserted) == (0, 1, 0, 0)
    audit = audit_rows(source)
    assert len(audit) == 1
    assert (audit[0]["table_name"], audit[0]["window_start"], audit[0]["window_end"]) == (
        table,
        datetime(2027, 1, 1),
        datetime(2027, 1, 2),
    )
    assert (audit[0]["rows_staged"], audit[0]["rows_inserted"], audit[0]["files"]) == (0, 0, 1)
