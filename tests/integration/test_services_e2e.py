"""End to end on the services environment: MariaDB → S3 server → PostgreSQL,
three `airflow dags test` runs, then mau_summary against the MySQL data itself."""

from __future__ import annotations

from collections import defaultdict
from datetime import date, timedelta

import psycopg2
import pytest

from tests.airflow_helpers import BIN, dags_test, dbt, prepare_airflow, run, services_env
from tests.test_pipeline_services import COLUMNS

pytestmark = [pytest.mark.e2e, pytest.mark.services]

START = date(2026, 10, 30)
MARTS = ("fct_nps_responses", "fct_sessions", "mau_summary")


def mau_from_mysql(mysql_db) -> dict[date, tuple[int, int]]:
    """Month → (distinct users, sessions), joined and counted in Python."""
    with mysql_db.admin.cursor() as cursor:
        cursor.execute("select sessionid, userid from user_session_channel")
        user_of = dict(cursor.fetchall())
        cursor.execute("select sessionid, ts from session_timestamp")
        sessions = cursor.fetchall()
    users: dict[date, set] = defaultdict(set)
    counts: dict[date, int] = defaultdict(int)
    for session_id, ts in sessions:
        if session_id in user_of:
            month = date(ts.year, ts.month, 1)
            users[month].add(user_of[session_id])
            counts[month] += 1
    return {month: (len(users[month]), counts[month]) for month in users}


@pytest.fixture
def services_run(tmp_path, services, pg_warehouse):  # noqa: F811
    env = services_env(
        tmp_path,
        services,
    )
    run([str(BIN / "python"), "-m", "ingestion", "generate", "--size", "300", "--days", "3"], env)
    prepare_airflow(env)
    for day in range(3):
        dags_test(START + timedelta(days=day), env)
    warehouse = psycopg2.connect(
        host=pg_warehouse.host, port=pg_warehouse.port, user=pg_warehouse.login, dbname=pg_warehouse.schema
    )
    warehouse.autocommit = True  # no open transaction to block dbt's DDL
    yield env, warehouse
    warehouse.close()


def query(db, sql: str) -> list[tuple]:
    with db.cursor() as cursor:
        cursor.execute(sql)
        return cursor.fetchall()


def test_services_dag_runs_give_mau_equal_to_mysql_and_raw_equal_to_source(services_run, mysql_db):
    env, warehouse = services_run
    mau = query(warehouse, "select activity_month, active_users, session_count from analytics.mau_summary")
    expected = mau_from_mysql(mysql_db)
    assert len(expected) == 2
    assert {month: (users, sessions) for month, users, sessions in mau} == expected

    for table, columns in COLUMNS.items():
        with mysql_db.admin.cursor() as cursor:
            cursor.execute(f"select {columns} from {table}")
            source_rows = sorted(cursor.fetchall())
        assert sorted(query(warehouse, f"select {columns} from raw_data.{table}")) == source_rows, table

    audit = query(warehouse, "select table_name, count(*) from raw_data._load_audit group by 1 order by 1")
    assert audit == [(name, 3) for name in sorted(COLUMNS)]

    before = {m: query(warehouse, f"select * from analytics.{m} order by 1") for m in MARTS}
    dbt(["build", "--full-refresh"], env)
    assert {m: query(warehouse, f"select * from analytics.{m} order by 1") for m in MARTS} == before
