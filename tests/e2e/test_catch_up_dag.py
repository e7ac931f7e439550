"""A scheduled run after missed runs loads the missed intervals' rows, through real
`airflow dags test` runs: interval 1, then interval 4 as the next run."""

from __future__ import annotations

import sqlite3
from datetime import date, datetime, timedelta

import duckdb
import pytest

from tests.airflow_helpers import BIN, dags_test, pipeline_env, prepare_airflow, run
from tests.e2e.test_embedded_e2e import mau_from_oltp

pytestmark = pytest.mark.e2e

START = date(2026, 10, 30)


def test_the_run_after_a_gap_catches_up_raw_data_and_the_marts(tmp_path):
    env = pipeline_env(tmp_path, "embedded")
    run([str(BIN / "python"), "-m", "ingestion", "generate", "--size", "200", "--days", "4",
         "--start", START.isoformat()], env)  # fmt: skip
    prepare_airflow(env)

    dags_test(START, env)  # interval 1
    dags_test(START + timedelta(days=3), env)  # interval 4: the scheduler missed 2 and 3

    data = tmp_path / "data"
    source = sqlite3.connect(data / "source.sqlite")
    sessions = {row[0] for row in source.execute("select sessionid from session_timestamp")}
    responses = dict(source.execute("select id, modified_at from nps"))
    source.close()
    with duckdb.connect(str(data / "warehouse.duckdb"), read_only=True) as wh:
        assert {
            r[0] for r in wh.execute("select sessionid from raw_data.session_timestamp").fetchall()
        } == sessions
        loaded = dict(wh.execute("select id, modified_at from raw_data.nps").fetchall())
        assert loaded == {k: datetime.fromisoformat(v) for k, v in responses.items()}
        mau = wh.execute(
            "select activity_month, active_users, session_count from analytics.mau_summary order by 1"
        ).fetchall()
        widened = wh.execute(
            "select window_start from raw_data._load_audit "
            "where table_name = 'session_timestamp' order by finished_at"
        ).fetchall()
    assert {month: (users, count) for month, users, count in mau} == mau_from_oltp(data / "source.sqlite")
    assert [row[0] for row in widened] == [datetime(2026, 10, 30), datetime(2026, 10, 31)]
