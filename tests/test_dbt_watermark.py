"""The marts' `_loaded_at` watermark has an overlap: a load that commits after a dbt
run has already seen a newer `_loaded_at` (a manual run overlapping a scheduled
one, a worker with a slow clock) still reaches the marts on the next run.

End to end on the embedded environment (SQLite source, DuckDB warehouse): the CLI
generates and loads the data, dbt builds the marts, then rows stamped 30 minutes
before the newest `_loaded_at` in the marts are committed to `raw_data`, as a late
load would, and the marts are run again."""

from __future__ import annotations

from collections import defaultdict
from datetime import date, datetime, timedelta
from pathlib import Path

import duckdb

from tests.airflow_helpers import BIN, dbt, pipeline_env, run

START = date(2026, 10, 30)  # two days across a month boundary
END = START + timedelta(days=2)
TABLES = ("nps", "session_timestamp", "user_session_channel")
MARTS = ("fct_nps_responses", "fct_sessions", "mau_summary")
LATE_BY = timedelta(minutes=30)  # inside the default overlap (watermark_overlap_hours: 1)
LATE_BATCH = "late-commit"
LATE_NPS_ID = 900_001
LATE_SESSION_ID = "late0000000000000000000000000001"  # 32 characters, as the source's
LATE_USER_ID = 900_001  # a user of no other session: it raises the month's active_users
LATE_SESSION_START = datetime(2026, 10, 31, 12, 0)


def rows(db: duckdb.DuckDBPyConnection, sql: str, *params: object) -> list[tuple]:
    return db.execute(sql, list(params)).fetchall()


def mau_from_raw(db: duckdb.DuckDBPyConnection) -> dict[date, tuple[int, int]]:
    """Month → (distinct active users, sessions), from the raw tables in plain Python."""
    user_of_session = dict(rows(db, "select sessionid, userid from raw_data.user_session_channel"))
    users: dict[date, set[int]] = defaultdict(set)
    sessions: dict[date, int] = defaultdict(int)
    for session_id, started in rows(db, "select sessionid, ts from raw_data.session_timestamp"):
        if session_id in user_of_session:
            month = date(started.year, started.month, 1)
            users[month].add(user_of_session[session_id])
            sessions[month] += 1
    return {month: (len(users[month]), sessions[month]) for month in users}


def mau_in_mart(db: duckdb.DuckDBPyConnection) -> dict[date, tuple[int, int]]:
    query = "select activity_month, active_users, session_count from analytics.mau_summary"
    return {month: (users, count) for month, users, count in rows(db, query)}


def build_embedded_warehouse(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    """Demo data loaded into raw_data by the CLI, and the marts built once by dbt."""
    env = pipeline_env(tmp_path, "embedded")
    python = str(BIN / "python")
    window = ["--start", START.isoformat(), "--end", END.isoformat()]
    run([python, "-m", "ingestion", "generate", "--size", "100", "--days", "2", "--start", str(START)], env)
    for table in TABLES:
        run([python, "-m", "ingestion", "run", table, *window], env)
    dbt(["build"], env)
    return tmp_path / "data" / "warehouse.duckdb", env


def test_rows_committed_late_within_the_overlap_reach_the_marts(tmp_path):
    warehouse, env = build_embedded_warehouse(tmp_path)
    with duckdb.connect(str(warehouse)) as db:
        assert mau_in_mart(db) == mau_from_raw(db)  # the first build is complete
        [(newest_nps,)] = rows(db, "select max(_loaded_at) from analytics.fct_nps_responses")
        [(newest_month,)] = rows(db, "select max(last_loaded_at) from analytics.mau_summary")
        late_nps, late_session = newest_nps - LATE_BY, newest_month - LATE_BY
        db.execute(
            "insert into raw_data.nps (id, created_at, modified_at, score, deleted,"
            " _batch_id, _extracted_at, _loaded_at) values (?, ?, ?, 7, 0, ?, ?, ?)",
            [LATE_NPS_ID, START, START, LATE_BATCH, late_nps, late_nps],
        )
        db.execute(
            "insert into raw_data.session_timestamp (sessionid, ts, _batch_id, _extracted_at,"
            " _loaded_at) values (?, ?, ?, ?, ?)",
            [LATE_SESSION_ID, LATE_SESSION_START, LATE_BATCH, late_session, late_session],
        )
        db.execute(
            "insert into raw_data.user_session_channel (userid, sessionid, channel, _batch_id,"
            " _extracted_at, _loaded_at) values (?, ?, 'Organic', ?, ?, ?)",
            [LATE_USER_ID, LATE_SESSION_ID, LATE_BATCH, late_session, late_session],
        )
        expected_mau = mau_from_raw(db)
        expected_nps_ids = {id_ for (id_,) in rows(db, "select id from raw_data.nps")}
    assert expected_mau[date(2026, 10, 1)][0] >= 2  # the late session's month has other users

    dbt(["run", "--select", *MARTS], env)  # incremental runs: the marts exist

    with duckdb.connect(str(warehouse), read_only=True) as db:
        nps_ids = {id_ for (id_,) in rows(db, "select nps_response_id from analytics.fct_nps_responses")}
        late_sessions = rows(
            db, "select user_id, _loaded_at from analytics.fct_sessions where session_id = ?", LATE_SESSION_ID
        )
        mau = mau_in_mart(db)
    assert LATE_NPS_ID in nps_ids
    assert nps_ids == expected_nps_ids
    assert late_sessions == [(LATE_USER_ID, late_session)]
    assert mau == expected_mau
