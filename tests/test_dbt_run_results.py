"""A daily full refresh that changes 0.1% of a table makes the marts process about 0.1%.

``user_session_channel`` is loaded as a full refresh that keeps unchanged rows as
stored (with their ``_loaded_at``), so the incremental ``fct_sessions`` downstream
reprocesses only the sessions whose channel row changed. Shown with dbt's own
account of the run: ``rows_affected`` in ``target/run_results.json``.

End to end on the services environment (MariaDB, S3 server, PostgreSQL: dbt-duckdb
reports no ``rows_affected``, dbt-postgres reports the rowcount of the model's
statement: the inserted rows of an incremental run). The loads
of a real day are a day apart; here they are seconds apart, so the watermark overlap
(``watermark_overlap_hours``, which re-reads the last hour's loads) is set to 0.
"""

from __future__ import annotations

import json
from datetime import date, timedelta
from pathlib import Path

import psycopg2

from tests.airflow_helpers import BIN, dbt, run, services_env

START = date(2026, 10, 30)
END = START + timedelta(days=2)
SESSIONS = 2000  # --size 1000 for 2 days
CHANGED = SESSIONS // 1000  # 0.1%
NO_OVERLAP = ["--vars", "{watermark_overlap_hours: 0}"]


def cli(env: dict[str, str], *args: str) -> str:
    return run([str(BIN / "python"), "-m", "ingestion", *args], env)


def rows_affected(target: Path, model: str) -> int:
    results = json.loads((target / "run_results.json").read_text())["results"]
    [result] = [r for r in results if r["unique_id"] == f"model.analytics.{model}"]
    assert result["status"] == "success"
    return result["adapter_response"]["rows_affected"]


def scalar(warehouse, sql: str) -> int:
    with warehouse.cursor() as cursor:
        cursor.execute(sql)
        return cursor.fetchone()[0]


def test_daily_full_refresh_with_one_in_a_thousand_rows_changed_reprocesses_one_in_a_thousand(
    tmp_path: Path, services, mysql_db, pg_warehouse
) -> None:
    env = services_env(
        tmp_path,
        services,
    )
    target = Path(env["DBT_TARGET_PATH"])
    cli(env, "generate", "--size", "1000", "--days", "2", "--start", str(START))
    day_one = ["--start", START.isoformat(), "--end", END.isoformat()]
    for table in ("session_timestamp", "user_session_channel"):
        cli(env, "run", table, *day_one)
    dbt(["run", "--select", "+fct_sessions", *NO_OVERLAP], env)
    assert rows_affected(target, "fct_sessions") == SESSIONS  # the first build: every session

    with mysql_db.admin.cursor() as cursor:
        cursor.execute(f"select sessionid from user_session_channel order by sessionid limit {CHANGED}")
        changed = [sid for (sid,) in cursor.fetchall()]
    for sid in changed:
        mysql_db.execute("update user_session_channel set channel = 'Changed' where sessionid = %s", (sid,))
    next_day = ["--start", END.isoformat(), "--end", (END + timedelta(days=1)).isoformat()]
    cli(env, "run", "user_session_channel", *next_day)
    warehouse = psycopg2.connect(
        host=pg_warehouse.host, port=pg_warehouse.port, user=pg_warehouse.login, dbname=pg_warehouse.schema
    )
    warehouse.autocommit = True  # no open transaction to block dbt's DDL
    try:
        newest = "(select max(_loaded_at) from raw_data.user_session_channel)"
        restamped = scalar(
            warehouse, f"select count(*) from raw_data.user_session_channel where _loaded_at = {newest}"
        )
        assert restamped == CHANGED  # the full refresh re-stamped only the changed rows

        dbt(["run", "--select", "fct_sessions", *NO_OVERLAP], env)

        assert rows_affected(target, "fct_sessions") == CHANGED  # 0.1% of the sessions
        changed_in_mart = scalar(
            warehouse, "select count(*) from analytics.fct_sessions where channel = 'Changed'"
        )
        total = scalar(warehouse, "select count(*) from analytics.fct_sessions")
    finally:
        warehouse.close()
    assert (changed_in_mart, total) == (CHANGED, SESSIONS)
