"""The SQLite source (the embedded environment): its window bounds, its rows as Arrow batches."""

from __future__ import annotations

import gc
import sqlite3
from datetime import date, datetime
from pathlib import Path

import pyarrow as pa
import pytest

from ingestion.config import parse_table
from ingestion.environments import Environment
from ingestion.errors import SourceError
from ingestion.sources.sqlite import SQLiteSource
from ingestion.window import Window
from tests.embedded_helpers import interval, raw_rows, run, window_rows


# The extract reads cursor >= start - lookback and cursor < end (window.py: [start, end)).
# For interval 1 with a 2h lookback: [2026-10-30 22:00:00, 2026-11-01 00:00:00).
@pytest.mark.parametrize(
    ("row_id", "modified_at", "read"),
    [
        pytest.param(9001, "2026-10-30 22:00:00", True, id="at-extract-start-read"),
        pytest.param(9002, "2026-10-30 21:59:59", False, id="before-extract-start-not-read"),
        pytest.param(9003, "2026-10-31 23:59:59", True, id="second-before-end-read"),
        pytest.param(9004, "2026-11-01 00:00:00", False, id="at-window-end-not-read"),
    ],
)
def test_window_is_half_open_at_whole_second_bounds(
    source: Environment, tables: dict, row_id: int, modified_at: str, read: bool
) -> None:
    db = sqlite3.connect(source.source.host)
    with db:
        db.execute(
            "INSERT INTO nps (id, created_at, modified_at, score, deleted) VALUES (?, ?, ?, 7, 0)",
            (row_id, modified_at, modified_at),
        )
    db.close()

    extracted, _ = run(source, tables, "nps", 1)

    ids = {row["id"] for row in raw_rows(source, "nps")}
    assert (row_id in ids) is read
    assert extracted.rows == len(window_rows(source, "nps", interval(1)))


# ------------------------------------------------------------------ reading rows into batches

EVERY_ROW = Window(datetime(2000, 1, 1), datetime(2100, 1, 1))


def read_all(path: Path, ddl: str, rows: list[tuple], batch_rows: int, seen: list | None = None) -> list:
    """Create table ``t`` in a new SQLite file and read it back; ``seen`` collects whether
    the garbage collector was on at each batch the read hands on."""
    db = sqlite3.connect(path)
    with db:
        db.execute(ddl)
        db.executemany(f"INSERT INTO t VALUES ({', '.join('?' * len(rows[0]))})", rows)
    db.close()
    source = SQLiteSource(path)
    try:
        table = parse_table({"name": "t", "primary_key": "id", "mode": "full_refresh"}, 0)
        batches = []
        for batch in source.read(table, source.columns(table), EVERY_ROW, batch_rows):
            batches.append(batch)
            if seen is not None:
                seen.append(gc.isenabled())
        return batches
    finally:
        source.close()


def test_rows_read_in_batches_keep_every_value_and_type(tmp_path: Path) -> None:
    ddl = "CREATE TABLE t (id INT PRIMARY KEY, at DATETIME, day DATE, small TINYINT, note TEXT)"
    rows = [
        (1, "2026-10-30 09:00:00", "2026-10-30", -128, "a"),
        (2, b"2026-10-31 23:59:59.5", b"2026-10-31", 127, ""),  # stored as blobs
        (3, "0000-00-00 00:00:00", "2026-00-01", 0, None),  # zero dates are NULL
        (4, None, None, None, "d"),
        (5, "2026-11-01 00:00:00", "2026-11-01", 5, "e"),
    ]
    batches = read_all(tmp_path / "s.sqlite", ddl, rows, batch_rows=2)

    assert [b.num_rows for b in batches] == [2, 2, 1]
    assert batches[0].schema.types == [pa.int32(), pa.timestamp("us"), pa.date32(), pa.int16(), pa.string()]
    assert [row for b in batches for row in b.to_pylist()] == [
        {"id": 1, "at": datetime(2026, 10, 30, 9), "day": date(2026, 10, 30), "small": -128, "note": "a"},
        {"id": 2, "at": datetime(2026, 10, 31, 23, 59, 59, 500000), "day": date(2026, 10, 31), "small": 127,
         "note": ""},
        {"id": 3, "at": None, "day": None, "small": 0, "note": None},
        {"id": 4, "at": None, "day": None, "small": None, "note": "d"},
        {"id": 5, "at": datetime(2026, 11, 1), "day": date(2026, 11, 1), "small": 5, "note": "e"},
    ]  # fmt: skip


def test_a_datetime_that_is_not_utf8_is_an_error_naming_the_column(tmp_path: Path) -> None:
    rows = [(1, "2026-10-30 09:00:00"), (2, b"\xff\xfe")]
    with pytest.raises(SourceError, match=r"column 'at' \(DATETIME\)"):
        read_all(tmp_path / "s.sqlite", "CREATE TABLE t (id INT PRIMARY KEY, at DATETIME)", rows, 10)


@pytest.mark.parametrize("enabled", [True, False])
def test_the_garbage_collector_is_as_it_was_at_every_batch_and_after(tmp_path: Path, enabled: bool) -> None:
    was = gc.isenabled()
    (gc.enable if enabled else gc.disable)()
    seen: list[bool] = []
    try:
        rows = [(n,) for n in range(5)]
        batches = read_all(tmp_path / "s.sqlite", "CREATE TABLE t (id INT PRIMARY KEY)", rows, 2, seen)
        after = gc.isenabled()
    finally:
        (gc.enable if was else gc.disable)()
    assert [b.num_rows for b in batches] == [2, 2, 1]
    assert seen == [enabled] * 3
    assert after is enabled
