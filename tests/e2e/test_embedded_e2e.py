"""End to end on the embedded environment: `airflow dags test` for three daily
intervals, then the marts are checked against the OLTP data itself."""

from __future__ import annotations

import json
import os
import re
import signal
import sqlite3
import subprocess
import urllib.request
from collections import defaultdict
from datetime import date, datetime, timedelta
from pathlib import Path

import duckdb
import psutil
import pytest

from ingestion.config import load_tables
from tests.airflow_helpers import BIN, REPO_ROOT, dags_test, dbt, pipeline_env, prepare_airflow, run
from tests.browser_helpers import chromium, free_port, screenshot, wait_for_http, wait_until

pytestmark = pytest.mark.e2e

DAG_ID = "mysql_to_redshift"
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
    run([str(BIN / "python"), "-m", "devtools.dag_test_runs", "mysql_to_redshift"], env)  # as the demo
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


def upstream_of(model: str) -> tuple[set[str], set[str]]:
    """The models and sources ``model`` reads, directly or through other models, found in
    the SQL files' own ``ref()`` and ``source()`` calls (not in dbt's manifest)."""
    sql = {path.stem: path.read_text() for path in (REPO_ROOT / "dbt_project" / "models").rglob("*.sql")}
    models: set[str] = set()
    sources: set[str] = set()
    pending = [model]
    while pending:
        text = sql[pending.pop()]
        for parent in set(re.findall(r"ref\(\s*'(\w+)'\s*\)", text)) - models:
            models.add(parent)
            pending.append(parent)
        sources.update(".".join(pair) for pair in re.findall(r"source\(\s*'(\w+)'\s*,\s*'(\w+)'\s*\)", text))
    return models, sources


# The nodes of dbt docs' lineage graph, read from its cytoscape instance (a canvas).
LINEAGE_NODES = """
const container = document.getElementById('cy');
const cy = container && container._cyreg && container._cyreg.cy;
if (!cy) return [];
return cy.nodes().filter(n => n.visible()).map(n => [n.data('label'), n.data('resource_type')]);
"""


VIEWPORT = "const cy = document.getElementById('cy')._cyreg.cy; return [cy.zoom(), cy.pan(), cy.animated()];"


def settled(driver, script: str) -> None:
    """Wait until what ``script`` returns stays the same for half a second."""
    last = [None]

    def unchanged() -> bool:
        now = driver.execute_script(script)
        same, last[0] = now == last[0], now
        return same

    wait_until(unchanged, 30, "the page to stop moving", interval=0.5)


def lineage_models_and_sources(driver) -> set[str]:
    """The graph's models and sources (``app.nps``), leaving out data tests and unit tests."""
    return {label for label, kind in driver.execute_script(LINEAGE_NODES) if kind in ("model", "source")}


def test_dbt_docs_lineage_of_mau_summary_shows_its_upstream_models_and_sources(demo, tmp_path):
    """`dbt docs serve` in headless Chromium: the model page shows the description and
    columns (rendered by the page's JS), and its lineage graph holds exactly the models and
    sources upstream of ``mau_summary`` by the SQL files, and no unrelated one."""
    from selenium.webdriver.common.by import By

    models, sources = upstream_of("mau_summary")
    assert sources, "mau_summary reads no source?"
    _, env = demo
    dbt(["docs", "generate"], env)
    port = free_port()
    log = tmp_path / "docs-serve.log"
    with log.open("w") as out:
        server = subprocess.Popen(
            [str(BIN / "python"), "-m", "ingestion", "exec", "--", str(BIN / "dbt"), "docs", "serve",
             "--port", str(port), "--host", "127.0.0.1", "--no-browser"],
            cwd=REPO_ROOT / "dbt_project", env=env, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        url = f"http://127.0.0.1:{port}/"
        wait_for_http(url, server, 60, log)
        with chromium(tmp_path / "chromium") as driver:
            driver.get(f"{url}#!/model/model.analytics.mau_summary")
            page = wait_until(
                lambda: "Monthly active users" in driver.page_source and driver.page_source,
                60,
                "the mau_summary page to render its description",
            )
            driver.find_element(By.CSS_SELECTOR, "a[title='View Lineage Graph']").click()
            wait_until(
                lambda: [
                    e
                    for e in driver.find_elements(By.CSS_SELECTOR, "a[title='View Fullscreen']")
                    if e.is_displayed()
                ],
                30,
                "the lineage graph's fullscreen button",
            )[0].click()
            wanted = {"mau_summary", *models, *sources}
            # The page first holds the whole project's graph; the lineage view narrows it.
            wait_until(
                lambda: lineage_models_and_sources(driver) == wanted,
                60,
                f"the lineage graph to show exactly {sorted(wanted)}",
                seen=lambda: sorted(lineage_models_and_sources(driver)),
            )
            settled(driver, VIEWPORT)  # the graph zooms to fit; a picture mid-zoom is blurred
            screenshot(driver, "dbt-docs-mau_summary-lineage")
    finally:
        server.terminate()
        server.wait(timeout=30)
    for column in ("activity_month", "active_users", "session_count"):
        assert column in page


def test_airflow_ui_shows_the_demo_runs_and_the_dag_graph(demo, tmp_path):
    """`make airflow-ui`'s script on the demo's metadata DB: the API server listens on
    127.0.0.1 only; the runs show their data intervals and real durations (not the weeks
    between the logical date and today); in headless Chromium the DAG's graph shows each
    table's extract and load tasks and the dbt task group; Ctrl-C stops every component."""
    from selenium.webdriver.common.by import By

    _, env = demo
    port = free_port()
    log = tmp_path / "airflow-ui.log"
    with log.open("w") as out:
        ui = subprocess.Popen(
            ["bash", str(REPO_ROOT / "scripts" / "airflow-ui.sh"), "embedded", str(port)],
            cwd=REPO_ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    try:
        base = f"http://127.0.0.1:{port}"
        wait_for_http(f"{base}/api/v2/monitor/health", ui, 240, log)
        # the API server on loopback, and nothing else of the UI's components listening
        assert listening_sockets(psutil.Process(ui.pid)) == {("127.0.0.1", port)}

        with urllib.request.urlopen(f"{base}/api/v2/dags/{DAG_ID}/dagRuns?order_by=logical_date") as answer:  # noqa: S310
            runs = json.load(answer)["dag_runs"]
        expected = [(START + timedelta(days=d), START + timedelta(days=d + 1)) for d in range(DAYS)]
        assert [(day_of(r["data_interval_start"]), day_of(r["data_interval_end"])) for r in runs] == expected
        assert all(r["state"] == "success" and 0 < r["duration"] < 1800 for r in runs), runs

        tables = sorted(load_tables())
        with chromium(tmp_path / "chromium") as driver:
            driver.get(f"{base}/dags/{DAG_ID}")
            wait_until(
                lambda: driver.find_elements(By.CSS_SELECTOR, "button[aria-label^='Show Graph']"),
                60,
                "the DAG page",
            )[0].click()
            wanted = {f"{step}_{table}" for table in tables for step in ("extract", "load")} | {"dbt"}
            shown = wait_until(
                lambda: wanted <= (nodes := graph_nodes(driver)).keys() and nodes,
                60,
                f"the graph to show {sorted(wanted)}",
                seen=lambda: graph_nodes(driver),
            )
            screenshot(driver, "airflow-ui-graph")
    finally:
        try:
            components = psutil.Process(ui.pid).children(recursive=True)
        except psutil.NoSuchProcess:  # the script stopped by itself, and its components with it
            components = []
        os.killpg(ui.pid, signal.SIGINT)  # what Ctrl-C in the terminal does
        try:
            ui.wait(timeout=90)
        except subprocess.TimeoutExpired:
            pass
        left = [process for process in components if process.is_running()]
        for process in left:
            process.kill()
    assert "Task Group" in shown["dbt"]
    assert left == [], f"still running after Ctrl-C: {[process.cmdline() for process in left]}"


def day_of(timestamp: str) -> date:
    return datetime.fromisoformat(timestamp).date()


def listening_sockets(root: psutil.Process) -> set[tuple[str, int]]:
    """(address, port) of every TCP socket a descendant of ``root`` listens on."""
    found = set()
    for process in root.children(recursive=True):
        try:
            connections = process.net_connections("tcp")
        except psutil.NoSuchProcess:  # a short-lived DAG parser
            continue
        found.update((c.laddr.ip, c.laddr.port) for c in connections if c.status == psutil.CONN_LISTEN)
    return found


def graph_nodes(driver) -> dict[str, str]:
    """Task or task-group id → text of each node React Flow drew."""
    script = (
        "return [...document.querySelectorAll('.react-flow__node')].map(n => [n.dataset.id, n.innerText])"
    )
    return dict(driver.execute_script(script))
