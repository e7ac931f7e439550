"""The DAG under the CeleryExecutor, through the demo's own module
(`python -m devtools.celery_demo`): scheduler, DAG processor, API server and two Celery
workers on loopback, Redis as the broker, PostgreSQL as the metadata database, three
intervals as one `airflow backfill create`. The marts must equal those of the
single-process `airflow dags test` runs of the same source."""

from __future__ import annotations

import os
import secrets
from datetime import date, timedelta

import psycopg2
import pytest

from tests.airflow_helpers import BIN, dags_test, pipeline_env, prepare_airflow, run
from tests.test_pipeline_services import COLUMNS

pytestmark = [pytest.mark.e2e, pytest.mark.services]

START = date(2026, 10, 30)
DAYS = 3
#: The marts without their load metadata (`_batch_id`, `_loaded_at` differ between runs).
MARTS = {
    "mau_summary": "activity_month, active_users, session_count",
    "fct_nps_responses": "nps_response_id, score, is_deleted, created_at, modified_at",
    "fct_sessions": "session_id, user_id, channel, started_at, is_deleted",
}


def query(connection, database: str, sql: str) -> list[tuple]:
    db = psycopg2.connect(host=connection.host, port=connection.port, user=connection.login, dbname=database)
    try:
        with db.cursor() as cursor:
            cursor.execute(sql)
            return cursor.fetchall()
    finally:
        db.close()


@pytest.fixture
def redis_broker() -> str:
    import redis

    url = os.environ.get("PIPELINE_REDIS_URL", "redis://127.0.0.1:6379/0")
    try:
        redis.Redis.from_url(url, socket_connect_timeout=3).ping()
    except redis.RedisError as exc:
        from tests.conftest import unavailable

        unavailable(f"Redis at {url} unreachable: {exc}")
    return url


@pytest.fixture
def second_warehouse(pg_warehouse):
    """Another database on the same server, for the single-process run; dropped after."""
    name = f"{pg_warehouse.schema}_single"
    admin = psycopg2.connect(host=pg_warehouse.host, port=pg_warehouse.port, user=pg_warehouse.login,
                             dbname="postgres")  # fmt: skip
    admin.autocommit = True
    admin.cursor().execute(f'create database "{name}"')
    try:
        yield pg_warehouse.__class__(
            pg_warehouse.conn_id, pg_warehouse.conn_type, host=pg_warehouse.host, port=pg_warehouse.port,
            login=pg_warehouse.login, schema=name,
        )  # fmt: skip
    finally:
        admin.cursor().execute(f'drop database if exists "{name}" with (force)')
        admin.close()


@pytest.fixture
def metadata_db(pg_warehouse):
    name = f"it_airflow_{secrets.token_hex(4)}"
    yield name
    admin = psycopg2.connect(host=pg_warehouse.host, port=pg_warehouse.port, user=pg_warehouse.login,
                             dbname="postgres")  # fmt: skip
    admin.autocommit = True
    admin.cursor().execute(f'drop database if exists "{name}" with (force)')
    admin.close()


def test_celery_workers_run_every_interval_and_give_the_single_process_marts(
    tmp_path, mysql_db, pg_warehouse, second_warehouse, s3_bucket, s3_connection, redis_broker, metadata_db
):
    connections = {
        "AIRFLOW_CONN_PIPELINE_SOURCE": mysql_db.connection.to_json(),
        "AIRFLOW_CONN_PIPELINE_AWS": s3_connection.to_json(),
    }
    env = pipeline_env(tmp_path, "services", **connections,
                       AIRFLOW_CONN_PIPELINE_WAREHOUSE=pg_warehouse.to_json(),
                       PIPELINE_STAGE_URI=f"s3://{s3_bucket}/celery")  # fmt: skip
    run([str(BIN / "python"), "-m", "ingestion", "generate", "--size", "100", "--days", str(DAYS),
         "--start", START.isoformat()], env)  # fmt: skip
    run([str(BIN / "python"), "-m", "ingestion", "init-warehouse"], env)
    last = START + timedelta(days=DAYS - 1)
    output = run(
        [str(BIN / "python"), "-m", "devtools.celery_demo", "--from-date", START.isoformat(),
         "--to-date", last.isoformat(), "--metadata-db", metadata_db, "--queue", metadata_db,
         "--broker-url", redis_broker, "--home", str(tmp_path / "airflow-celery"), "--timeout", "1200"],
        env, timeout=1800,
    )  # fmt: skip
    assert "which worker ran which task" in output and "analytics.mau_summary" in output, output[-3000:]

    runs = query(
        pg_warehouse,
        metadata_db,
        "select to_char(data_interval_start, 'YYYY-MM-DD'), run_type, state from dag_run",
    )
    expected_days = [(START + timedelta(days=d)).isoformat() for d in range(DAYS)]
    assert sorted(runs) == [(day, "backfill", "success") for day in expected_days]
    hosts = dict(query(pg_warehouse, metadata_db,
                       "select split_part(hostname, '@', 1), count(*) from task_instance "
                       "where state = 'success' group by 1"))  # fmt: skip
    assert set(hosts) == {"w1", "w2"}, hosts
    not_successful = query(
        pg_warehouse, metadata_db, "select task_id, run_id, state from task_instance where state <> 'success'"
    )
    assert not_successful == []

    for table, columns in COLUMNS.items():  # every interval's rows landed
        with mysql_db.admin.cursor() as cursor:
            cursor.execute(f"select {columns} from {table}")
            source_rows = sorted(cursor.fetchall())
        loaded = query(pg_warehouse, pg_warehouse.schema, f"select {columns} from raw_data.{table}")
        assert sorted(loaded) == source_rows, table

    (tmp_path / "single").mkdir()
    single = pipeline_env(tmp_path / "single", "services", **connections,
                          AIRFLOW_CONN_PIPELINE_WAREHOUSE=second_warehouse.to_json(),
                          PIPELINE_STAGE_URI=f"s3://{s3_bucket}/single")  # fmt: skip
    run([str(BIN / "python"), "-m", "ingestion", "init-warehouse"], single)
    prepare_airflow(single)
    for day in range(DAYS):
        dags_test(START + timedelta(days=day), single)

    for mart, columns in MARTS.items():
        sql = f"select {columns} from analytics.{mart} order by 1"
        celery_rows = query(pg_warehouse, pg_warehouse.schema, sql)
        assert celery_rows, mart
        assert celery_rows == query(second_warehouse, second_warehouse.schema, sql), mart
