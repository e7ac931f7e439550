"""The SQLite source (the embedded environment): its window bounds."""

from __future__ import annotations

import sqlite3

import pytest

from ingestion.environments import Environment
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
