"""End to end on the embedded environment: `airflow dags test` for three daily
intervals, then the marts are checked against the OLTP data itself."""

from __future__ import annotations

import sqlite3
from collections import defaultdict
from datetime import date, datetime, timedelta
from pathlib import Path

import duckdb
import pytest

from tests.airflow_helpers import BIN, dags_test, dbt, pipeline_env, prepare_airflow, run

pytestmark = pytest.mark.e2e

START = date(2026, 10, 30)  # three days across a month boundary
DAYS = 3
TIMESTAMPS = {"created_at", "modified_at", "ts"}
MARTS = ("fct_nps_responses", "fct_sessions", "mau_summary")


def mau_from_oltp(source: Path) -> dict[date, tuple[int, int]]:
    """Month → (distinct active users, sessions), from the source tables in plain Python."""
    db = sqlite3.connect(source)
    users_of_session = dict(db.execute("select sessionid, userid from user_session_channel"))
    users: dict[date, set] = defaultdict(set)
    sessions: dict[date, int] = defaultdict(int)
    for session_id, ts in db.execute("select sessionid, ts from session_timestamp"):
        if session_id not in users_of_session:
            continue
        started = datetime.fromisoformat(ts)
        month = date(started.year, started.month, 1)
        users[month].add(users_of_session[session_id])
        sessions[month] += 1
    db.close()
    return {month: (len(users[month]), sessions[month]) for month in users}


def snapshot(warehouse: Path) -> dict[str, list[tuple]]:
    with duckdb.connect(str(warehouse), read_only=True) as db:
        return {m: db.execute(f"select * from analytics.{m} order by 1").fetchall() for m in MARTS}


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("embedded-e2e")
    env = pipeline_env(tmp_path, "embedded")
    run([str(BIN / "python"), "-m", "ingestion", "generate", "--size", "400", "--days", str(DAYS),
         "--start", START.isoformat()], env)  # fmt: skip
    prepare_airflow(env)
    for day in range(DAYS):
        dags_test(START + timedelta(days=day), env)
    return tmp_path / "data", env


def test_three_daily_runs_give_mau_equal_to_an_independent_computation(demo):
    data, _ = demo
    expected = mau_from_oltp(data / "source.sqlite")
    assert len(expected) == 2  # October and November
    with duckdb.connect(str(data / "warehouse.duckdb"), read_only=True) as db:
        rows = db.execute(
            "select activity_month, active_users, session_count from analytics.mau_summary order by 1"
        ).fetchall()
    assert {month: (users, count) for month, users, count in rows} == expected


def test_raw_tables_equal_the_source_tables(demo):
    data, _ = demo
    src = sqlite3.connect(data / "source.sqlite")
    with duckdb.connect(str(data / "warehouse.duckdb"), read_only=True) as wh:
        for table, columns in {
            "nps": "id, created_at, modified_at, score, deleted",
            "session_timestamp": "sessionid, ts",
            "user_session_channel": "userid, sessionid, channel",
        }.items():
            cursor = src.execute(f"select {columns} from {table}")
            names = [d[0] for d in cursor.description]
            source_rows = sorted(
                tuple(
                    datetime.fromisoformat(v) if name in TIMESTAMPS else v
                    for name, v in zip(names, row, strict=True)
                )
                for row in cursor
            )
            raw_rows = sorted(wh.execute(f"select {columns} from raw_data.{table}").fetchall())
            assert raw_rows == source_rows, table
    src.close()


def test_soft_deleted_responses_are_flagged_not_dropped(demo):
    data, _ = demo
    src = sqlite3.connect(data / "source.sqlite")
    deleted = {row[0] for row in src.execute("select id from nps where deleted = 1")}
    src.close()
    assert deleted
    with duckdb.connect(str(data / "warehouse.duckdb"), read_only=True) as wh:
        query = "select nps_response_id from analytics.fct_nps_responses where is_deleted"
        flagged = {row[0] for row in wh.execute(query).fetchall()}
    assert flagged == deleted


def test_running_the_incremental_models_again_changes_nothing(demo):
    data, env = demo
    before = snapshot(data / "warehouse.duckdb")
    dbt(["run", "--select", *MARTS], env)
    assert snapshot(data / "warehouse.duckdb") == before


def test_full_refresh_build_gives_the_same_marts_as_the_incremental_runs(demo):
    data, env = demo
    before = snapshot(data / "warehouse.duckdb")
    dbt(["build", "--full-refresh"], env)
    assert snapshot(data / "warehouse.duckdb") == before


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_dbt_docs_page_shows_mau_summary_in_a_real_browser(demo, tmp_path):
    """`dbt docs serve`, opened in headless Chromium: the rendered page lists the
    model's description and columns, which only arrive through the page's own JS."""
    import shutil
    import subprocess
    import time
    import urllib.request

    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        pytest.skip("Debian's chromium is not installed (apt-get install chromium)")
    _, env = demo
    dbt(["docs", "generate"], env)
    port = free_port()
    server = subprocess.Popen(
        [str(BIN / "python"), "-m", "ingestion", "exec", "--", str(BIN / "dbt"), "docs", "serve",
         "--port", str(port), "--host", "127.0.0.1", "--no-browser"],
        cwd=Path(__file__).resolve().parents[2] / "dbt_project", env=env,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        url = f"http://127.0.0.1:{port}/"
        for _ in range(100):
            try:
                urllib.request.urlopen(url, timeout=1).close()  # noqa: S310 - loopback
                break
            except OSError:
                time.sleep(0.2)
        dom = subprocess.run(
            [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
             "--disable-component-update", "--disable-sync", "--no-first-run",
             f"--user-data-dir={tmp_path / 'chromium'}", "--virtual-time-budget=15000",
             "--dump-dom", f"{url}#!/model/model.analytics.mau_summary"],
            capture_output=True, text=True, timeout=120,
        ).stdout  # fmt: skip
    finally:
        server.terminate()
        server.wait(timeout=30)
    assert "Monthly active users" in dom  # the model description, from manifest.json
    for column in ("activity_month", "active_users", "session_count"):
        assert column in dom
