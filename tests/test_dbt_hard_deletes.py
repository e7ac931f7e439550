"""After hard deletes at the source, every mart's incremental result equals a full rebuild.

End to end on the embedded environment (SQLite source, DuckDB warehouse): the CLI
generates and loads the demo data (``hard_deletes: reconcile`` for every table in
config/tables.yml), plus one lone session in September; dbt builds the marts. Then
sessions, a channel row and an NPS response are deleted in the source (September's
only session among them), the next interval is loaded, and `dbt build` runs
incrementally. Its marts must equal those of `dbt build --full-refresh` afterwards,
and `mau_summary` must equal a count made here from the source."""

from __future__ import annotations

import sqlite3
from collections import defaultdict
from datetime import date, datetime, timedelta
from pathlib import Path

import duckdb

from tests.airflow_helpers import BIN, dbt, pipeline_env, run

START = date(2026, 10, 30)  # two days across a month boundary
END = START + timedelta(days=2)
TABLES = ("nps", "session_timestamp", "user_session_channel")
MARTS = {
    "fct_nps_responses": "nps_response_id",
    "fct_sessions": "session_id",
    "mau_summary": "activity_month",
}
LONE_SESSION = "lone0000000000000000000000000001"  # September's only session
LONE_START = datetime(2026, 9, 15, 10, 0)


def cli(env: dict[str, str], *args: str) -> str:
    return run([str(BIN / "python"), "-m", "ingestion", *args], env)


def window(start: date, end: date) -> list[str]:
    return ["--start", start.isoformat(), "--end", end.isoformat()]


def marts(warehouse: Path) -> dict[str, list[tuple]]:
    with duckdb.connect(str(warehouse), read_only=True) as db:
        return {
            mart: db.execute(f"select * from analytics.{mart} order by {key}").fetchall()
            for mart, key in MARTS.items()
        }


def mau_from_source(source: Path) -> dict[date, tuple[int, int]]:
    """Month → (distinct active users, sessions), from the source rows in plain Python."""
    with sqlite3.connect(source) as db:
        user_of_session = dict(db.execute("select sessionid, userid from user_session_channel"))
        sessions = db.execute("select sessionid, ts from session_timestamp").fetchall()
    users: dict[date, set[int]] = defaultdict(set)
    counts: dict[date, int] = defaultdict(int)
    for session_id, started in sessions:
        if session_id in user_of_session:
            started = datetime.fromisoformat(started)
            month = date(started.year, started.month, 1)
            users[month].add(user_of_session[session_id])
            counts[month] += 1
    return {month: (len(users[month]), counts[month]) for month in users}


def test_incremental_marts_equal_a_full_rebuild_after_hard_deletes(tmp_path):
    env = pipeline_env(tmp_path, "embedded")
    source, warehouse = tmp_path / "data" / "source.sqlite", tmp_path / "data" / "warehouse.duckdb"
    cli(env, "generate", "--size", "100", "--days", "2", "--start", str(START))
    with sqlite3.connect(source) as db:
        db.execute("insert into session_timestamp values (?, ?)", (LONE_SESSION, str(LONE_START)))
        db.execute("insert into user_session_channel values (?, ?, ?)", (42, LONE_SESSION, "Organic"))
    cli(env, "run", "session_timestamp", *window(LONE_START.date(), LONE_START.date() + timedelta(days=1)))
    for table in TABLES:
        cli(env, "run", table, *window(START, END))
    dbt(["build"], env)
    before = marts(warehouse)
    assert date(2026, 9, 1) in {row[0] for row in before["mau_summary"]}

    with sqlite3.connect(source) as db:
        both, channel_only = [
            sid for (sid,) in db.execute("select sessionid from session_timestamp order by sessionid limit 2")
        ]
        for sid in (both, LONE_SESSION):
            db.execute("delete from session_timestamp where sessionid = ?", (sid,))
            db.execute("delete from user_session_channel where sessionid = ?", (sid,))
        db.execute("delete from user_session_channel where sessionid = ?", (channel_only,))
        (nps_id,) = db.execute("select min(id) from nps").fetchone()
        db.execute("delete from nps where id = ?", (nps_id,))
    for table in TABLES:
        cli(env, "run", table, *window(END, END + timedelta(days=1)))
    with duckdb.connect(str(warehouse), read_only=True) as db:
        flagged = db.execute(
            "select count(*) from raw_data.session_timestamp where _deleted_at is not null"
        ).fetchone()
    assert flagged == (2,)

    dbt(["build"], env)  # incremental: the marts exist
    incremental = marts(warehouse)
    dbt(["build", "--full-refresh"], env)
    rebuilt = marts(warehouse)

    for mart in MARTS:
        assert incremental[mart] == rebuilt[mart], mart
    assert incremental != before
    mau = {row[0]: (row[1], row[2]) for row in incremental["mau_summary"]}
    assert mau == mau_from_source(source)
    assert date(2026, 9, 1) not in mau
    with duckdb.connect(str(warehouse), read_only=True) as db:
        deleted = db.execute(
            "select session_id from analytics.fct_sessions where is_deleted order by 1"
        ).fetchall()
        nps_deleted = db.execute(
            "select is_deleted from analytics.fct_nps_responses where nps_response_id = ?", [nps_id]
        ).fetchall()
    assert deleted == sorted([(both,), (channel_only,), (LONE_SESSION,)])  # kept, flagged
    assert nps_deleted == [(True,)]
