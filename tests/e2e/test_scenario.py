"""One scenario holding every operational edge, through real `airflow dags test` runs
of ``mysql_to_redshift`` in the services environment (MariaDB source, loopback S3
stage, PostgreSQL warehouse, each of this test's own).

Day ``n`` is the interval ``[START + n, START + n + 1)``; the runs, in this order:

1. interval of day 0: inserts;
2. days 1 and 2 are missed (the scheduler was down); the run of day 3 catches them up:
   inserts, updates, soft deletes, a late row within the lookback (committed after
   run 1, cursor one hour before run 1's end), a row later than the lookback
   (cursor twelve hours before run 1's end): the pipeline promises that an
   incremental run never sees such a row (the lookback is the contract) and that a
   rebuild (``python -m ingestion run TABLE --rebuild``) does;
3. day 4: a new source column, widened columns (INT -> BIGINT, VARCHAR(32) ->
   VARCHAR(64) holding a longer value), updates, soft deletes and an un-delete,
   hard deletes, a late row within the lookback;
4. out of order: a manifest of day 1 staged before day 4's changes is loaded after
   them, then the DAG runs day 1's interval: neither overwrites newer rows nor
   widens its window;
5. day 5: a hard-deleted key comes back.

Then ``raw_data`` equals the source row for row (metadata columns aside) and every
mart equals a ``dbt build --full-refresh`` of the same raw data. The hard-delete
assertions (``hard_deletes: reconcile``, ``_deleted_at`` in raw) are the last block.
"""

from __future__ import annotations

import json
import subprocess
from collections import Counter
from datetime import date, datetime, timedelta
from pathlib import Path

import psycopg2
import pytest

from devtools import generate
from ingestion.batch import METADATA_COLUMNS
from tests.airflow_helpers import BIN, REPO_ROOT, dags_test, dbt, prepare_airflow, services_env

pytestmark = pytest.mark.e2e

START = date(2026, 10, 30)
DELETED_AT = "_deleted_at"
IGNORED = {*METADATA_COLUMNS, DELETED_AT}
KEYS = {"nps": "id", "session_timestamp": "sessionid", "user_session_channel": "sessionid"}
CHANNELS = ("Google", "Facebook", "Instagram", "Naver", "Youtube", "Organic")
LONG_CHANNEL = "Partner referral programme (affiliate network)"  # 46 characters
MARTS = sorted(path.stem for path in (REPO_ROOT / "dbt_project" / "models" / "marts").rglob("*.sql"))
# The scenario's own table config: the demo's three tables, every edge switched on.
TABLES_YML = """
tables:
  - {name: nps, primary_key: id, mode: incremental, cursor: modified_at, lookback: 2h,
     soft_delete: deleted, hard_deletes: reconcile}
  - {name: session_timestamp, primary_key: sessionid, mode: incremental, cursor: ts, lookback: 2h,
     hard_deletes: reconcile}
  - {name: user_session_channel, primary_key: sessionid, mode: full_refresh, hard_deletes: reconcile}
"""


def at(day: int, hours: float = 0) -> datetime:
    return datetime.combine(START, datetime.min.time()) + timedelta(days=day, hours=hours)


class Source:
    """The MariaDB source, written the way an application would."""

    def __init__(self, db) -> None:
        self.db = db
        for statement in generate.DDL:  # the demo's tables
            db.execute(statement)

    def sessions(self, day: int, count: int, *, hours: float = 0.5, channel: str | None = None) -> list[str]:
        """``count`` sessions from ``hours`` into ``day``, 7 minutes apart, each with its channel."""
        ids = [f"d{day}h{hours:g}n{n:03d}" for n in range(count)]
        self.db.executemany(
            "INSERT INTO session_timestamp (sessionid, ts) VALUES (%s, %s)",
            [(sid, at(day, hours) + timedelta(minutes=7 * n)) for n, sid in enumerate(ids)],
        )
        self.db.executemany(
            "INSERT INTO user_session_channel (userid, sessionid, channel) VALUES (%s, %s, %s)",
            [(1 + (n * 7 + day) % 40, sid, channel or CHANNELS[n % 6]) for n, sid in enumerate(ids)],
        )
        return ids

    def responses(self, day: int, ids: range, *, hours: float = 1) -> None:
        self.db.executemany(
            "INSERT INTO nps (id, created_at, modified_at, score, deleted) VALUES (%s, %s, %s, %s, 0)",
            [(i, at(day, hours), at(day, hours) + timedelta(minutes=i % 60), i % 11) for i in ids],
        )

    def change(self, ids, when: datetime, sql: str) -> None:
        """``UPDATE nps SET <sql>, modified_at = when`` for ``ids``."""
        for i in ids:
            self.db.execute(f"UPDATE nps SET {sql}, modified_at = %s WHERE id = %s", (when, i))  # noqa: S608

    def delete(self, table: str, keys) -> None:
        for key in keys:
            self.db.execute(f"DELETE FROM {table} WHERE {KEYS[table]} = %s", (key,))  # noqa: S608

    def rows(self, table: str) -> tuple[list[str], dict]:
        conn = self.db.connect()
        try:
            with conn.cursor() as cursor:
                cursor.execute(f"SELECT * FROM {table}")  # noqa: S608
                columns = [d[0] for d in cursor.description]
                return columns, {row[columns.index(KEYS[table])]: row for row in cursor.fetchall()}
        finally:
            conn.close()


class Warehouse:
    def __init__(self, connection) -> None:
        self.settings = dict(
            host=connection.host, port=connection.port, user=connection.login, dbname=connection.schema
        )

    def query(self, sql: str, params: tuple = ()) -> tuple[list[str], list[tuple]]:
        conn = psycopg2.connect(**self.settings)
        conn.autocommit = True
        try:
            with conn.cursor() as cursor:
                cursor.execute(sql, params)
                if cursor.description is None:
                    return [], []
                return [d[0] for d in cursor.description], cursor.fetchall()
        finally:
            conn.close()

    def keys(self, table: str, where: str = "true") -> set:
        return {row[0] for row in self.query(f"select {KEYS[table]} from raw_data.{table} where {where}")[1]}

    def windows(self, table: str) -> list[tuple[datetime, datetime]]:
        return [
            tuple(row)
            for row in self.query(
                "select window_start, window_end from raw_data._load_audit"
                " where table_name = %s and status = 'succeeded' order by finished_at",
                (table,),
            )[1]
        ]

    def mart(self, schema: str, name: str) -> Counter:
        columns, rows = self.query(f"select * from {schema}.{name}")
        return Counter(tuple(sorted(zip(columns, map(plain, row), strict=True))) for row in rows)


def plain(value):
    return int(value) if isinstance(value, bool) else value


def cli(env: dict[str, str], *args: str) -> dict:
    """``python -m ingestion ...`` in the environment; its JSON output."""
    command = [str(BIN / "python"), "-m", "ingestion", *args]
    done = subprocess.run(command, env=env, cwd=REPO_ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, f"{' '.join(args)} exited {done.returncode}:\n{done.stderr[-4000:]}"
    lines = done.stdout.splitlines()  # a library may log to stdout before the JSON
    return json.loads("\n".join(lines[lines.index("{") :]))


def test_every_edge_of_a_week_lands_in_raw_data_and_the_marts_as_a_full_rebuild(
    tmp_path: Path, services, mysql_db, pg_warehouse
):
    (tmp_path / "tmp").mkdir()
    (tmp_path / "tables.yml").write_text(TABLES_YML)
    env = services_env(
        tmp_path, services, PIPELINE_TABLES_CONFIG=str(tmp_path / "tables.yml"),
        TMPDIR=str(tmp_path / "tmp"),  # Cosmos' temporary project copies
    )  # fmt: skip
    source, warehouse = Source(mysql_db), Warehouse(pg_warehouse)
    prepare_airflow(env)

    # 1. day 0
    source.sessions(0, 90)
    source.responses(0, range(1, 61))
    dags_test(START, env)

    # 2. days 1 and 2 missed, then the run of day 3; late rows committed after run 1
    late_in_lookback = source.sessions(0, 1, hours=23)  # the next run reads from day 1 - 2h
    too_late = source.sessions(0, 1, hours=12)  # beyond any later run's lookback
    source.responses(0, range(500, 502), hours=23.5)
    for day in (1, 2, 3):
        source.sessions(day, 50)
        source.responses(day, range(20 * day + 41, 20 * day + 61))
    source.change(range(1, 11), at(2, 3), "score = 10 - score")
    source.change(range(11, 16), at(1, 2), "deleted = 1")  # soft deletes
    source.delete("nps", [45])  # loaded by run 1; comes back on day 4
    dags_test(START + timedelta(days=3), env)

    sessions = set(source.rows("session_timestamp")[1])
    assert warehouse.keys("session_timestamp") == sessions - set(too_late)
    assert set(late_in_lookback) <= warehouse.keys("session_timestamp")
    assert warehouse.keys("nps") - {45} == set(source.rows("nps")[1])
    for table in ("nps", "session_timestamp"):  # the run of day 3 read from the end of day 0
        assert warehouse.windows(table) == [(at(0), at(1)), (at(1), at(4))], table
    assert warehouse.keys("nps", f"{DELETED_AT} is not null") == {45}  # hard delete
    # what a row later than the lookback is promised: a rebuild brings it
    rebuilt = cli(env, "run", "session_timestamp", "--rebuild", "--start", str(at(3)), "--end", str(at(4)))
    assert rebuilt["load"]["schema_changes"] == "rebuilt from a full extract"
    assert warehouse.keys("session_timestamp") == sessions

    # a manifest of day 1 (and its key snapshot) staged now, loaded after day 4
    stale = cli(env, "extract", "nps", "--start", str(at(1)), "--end", str(at(2)))
    assert stale["rows"] > 0

    # 3. day 4: schema changes, updates, soft and hard deletes, a late row, a key back
    mysql_db.execute("ALTER TABLE nps ADD COLUMN comment VARCHAR(200) NULL")
    mysql_db.execute("ALTER TABLE user_session_channel MODIFY userid BIGINT NOT NULL")
    mysql_db.execute("ALTER TABLE user_session_channel MODIFY channel VARCHAR(64) NOT NULL")
    source.sessions(4, 30)
    source.sessions(4, 5, hours=12, channel=LONG_CHANNEL)
    late_day_4 = source.sessions(3, 1, hours=23)  # committed after run 3, within the lookback
    source.responses(4, range(121, 151))
    source.responses(4, range(45, 46), hours=9)  # the deleted key is back
    source.change(range(121, 126), at(4, 5), "comment = 'moved to the new plan'")
    source.change(range(1, 6), at(4, 6), "score = 7")
    source.change(range(11, 13), at(4, 6), "deleted = 0")  # un-deleted
    source.change(range(30, 33), at(4, 7), "deleted = 1")
    day_0 = sorted(s for s in sessions if s.startswith("d0h0.5"))
    gone = {
        "nps": {40, 41, 42, 43, 44, 61, 62},  # 61, 62: in the stale manifest of day 1
        "session_timestamp": set(day_0[:4]),  # gone from both tables: October shrinks
        "user_session_channel": {*day_0[:4], day_0[10]},  # day_0[10]: its channel only
    }
    for table, keys in gone.items():
        source.delete(table, keys)
    dags_test(START + timedelta(days=4), env)
    assert set(late_day_4) <= warehouse.keys("session_timestamp")

    # 4. out of order: the stale manifest, then the DAG's run of day 1
    loaded = cli(
        env, "load", "nps", "--manifest", stale["manifest_url"], "--start", str(at(1)), "--end", str(at(2))
    )
    assert loaded["rows_staged"] == stale["rows"]
    newer = "select id, deleted, modified_at from raw_data.nps where id in (11, 12) order by id"
    assert warehouse.query(newer)[1] == [(11, 0, at(4, 6)), (12, 0, at(4, 6))]
    assert warehouse.keys("nps", f"{DELETED_AT} is not null") == gone["nps"]  # hard deletes
    dags_test(START + timedelta(days=1), env)
    for table in ("nps", "session_timestamp"):  # not widened
        assert warehouse.windows(table)[-1] == (at(1), at(2)), table

    assert_raw_equals_source(source, warehouse, gone)
    assert_widened(warehouse)
    assert_marts_hold_the_source(source, warehouse, gone)
    assert_marts_equal_a_full_refresh(env, warehouse, tmp_path)

    # hard deletes (hard_deletes: reconcile): flagged in raw, flagged or dropped in the marts
    for table, keys in gone.items():
        flagged = warehouse.keys(table, f"{DELETED_AT} is not null")
        assert flagged == keys, (
            f"raw_data.{table}: flagged {DELETED_AT} {sorted(flagged)}, gone {sorted(keys)}"
        )
    assert_hard_deletes_left_the_marts(source, warehouse, gone)


def assert_raw_equals_source(source: Source, warehouse: Warehouse, gone: dict[str, set]) -> None:
    """Every source row is in raw with the same values (a new column included); raw holds
    no other row but the hard-deleted ones; no column but the source's and metadata."""
    for table in KEYS:
        columns, expected = source.rows(table)
        raw_columns, raw_rows = warehouse.query(f"select * from raw_data.{table}")
        assert set(raw_columns) - IGNORED == set(columns), f"raw_data.{table}: columns {raw_columns}"
        key = raw_columns.index(KEYS[table])
        positions = [raw_columns.index(c) for c in columns]
        actual = {
            row[key]: tuple(plain(row[p]) for p in positions)
            for row in raw_rows
            if row[key] not in gone[table]
        }
        expected = {k: tuple(map(plain, row)) for k, row in expected.items()}
        differ = sorted(k for k in expected.keys() | actual.keys() if expected.get(k) != actual.get(k))
        assert differ == [], f"raw_data.{table} differs from the source at {KEYS[table]} " + "; ".join(
            f"{k}: source {expected.get(k)}, raw {actual.get(k)}" for k in differ[:5]
        )


def assert_widened(warehouse: Warehouse) -> None:
    types = dict(
        warehouse.query(
            "select column_name, data_type || coalesce('(' || character_maximum_length || ')', '')"
            " from information_schema.columns"
            " where table_schema = 'raw_data' and table_name = 'user_session_channel'"
        )[1]
    )
    assert types["userid"] == "bigint"
    assert types["channel"] in ("text", "character varying") or int(types["channel"].split("(")[1][:-1]) >= 64


def assert_marts_hold_the_source(source: Source, warehouse: Warehouse, gone: dict[str, set]) -> None:
    """Computed from the source here: the sessions joined to their channels, the NPS
    responses with their soft-delete flag (hard-deleted keys are checked below)."""
    channels = source.rows("user_session_channel")[1]
    expected = {
        sid: (channels[sid][0], channels[sid][2], ts)
        for sid, ts in source.rows("session_timestamp")[1].values()
        if sid in channels
    }
    rows = warehouse.query("select session_id, user_id, channel, started_at from analytics.fct_sessions")[1]
    leaving = gone["session_timestamp"] | gone["user_session_channel"]
    assert {sid: tuple(rest) for sid, *rest in rows if sid not in leaving} == expected
    expected = {
        i: (score, deleted, created, modified)
        for i, created, modified, score, deleted, _ in source.rows("nps")[1].values()
    }
    rows = warehouse.query(
        "select nps_response_id, score, cast(is_deleted as int), created_at, modified_at"
        " from analytics.fct_nps_responses"
    )[1]
    assert {i: tuple(rest) for i, *rest in rows if i not in gone["nps"]} == expected


def assert_marts_equal_a_full_refresh(env: dict[str, str], warehouse: Warehouse, tmp_path: Path) -> None:
    """Snapshot the marts the runs built, rebuild them with ``--full-refresh`` from the same
    raw data, compare row for row."""
    warehouse.query("create schema incremental_marts")
    for mart in MARTS:
        warehouse.query(f"create table incremental_marts.{mart} as table analytics.{mart}")
    dbt(
        [
            "build",
            "--full-refresh",
            "--target-path",
            str(tmp_path / "dbt-target"),
            "--log-path",
            str(tmp_path / "dbt-logs"),
        ],
        env,
    )
    for mart in MARTS:
        incremental, rebuilt = warehouse.mart("incremental_marts", mart), warehouse.mart("analytics", mart)
        assert sum(rebuilt.values()) > 0, mart
        assert incremental == rebuilt, (
            f"{mart}: only incremental {list((incremental - rebuilt).elements())[:5]}, "
            f"only rebuilt {list((rebuilt - incremental).elements())[:5]}"
        )


def mau_from_source(source: Source) -> dict:
    channels = source.rows("user_session_channel")[1]
    months: dict[date, list] = {}
    for sid, ts in source.rows("session_timestamp")[1].values():
        if sid in channels:
            months.setdefault(ts.date().replace(day=1), []).append(channels[sid][0])
    return {month: (len(set(users)), len(users)) for month, users in months.items()}


def assert_hard_deletes_left_the_marts(source: Source, warehouse: Warehouse, gone: dict[str, set]) -> None:
    """A hard-deleted row is dropped from a mart, or kept with its deletion flag; no
    deleted session counts in ``mau_summary``."""
    for mart, key, keys in (
        ("fct_sessions", "session_id", gone["session_timestamp"] | gone["user_session_channel"]),
        ("fct_nps_responses", "nps_response_id", gone["nps"]),
    ):
        columns, rows = warehouse.query(f"select * from analytics.{mart}")
        for row in rows:
            values = dict(zip(columns, row, strict=True))
            if values[key] in keys:
                assert values.get(DELETED_AT) is not None or values.get("is_deleted"), f"{mart}: {values}"
    rows = warehouse.query("select activity_month, active_users, session_count from analytics.mau_summary")[1]
    assert {month: (users, count) for month, users, count in rows} == mau_from_source(source)
