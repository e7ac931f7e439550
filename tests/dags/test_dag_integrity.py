"""The DAG file imports cleanly, fast, and wires what the table config says."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from airflow.timetables.interval import CronDataIntervalTimetable

from ingestion.config import load_tables

REPO_ROOT = Path(__file__).resolve().parents[2]
DAG_FILE = REPO_ROOT / "dags" / "mysql_to_redshift.py"
DBT_PROJECT = REPO_ROOT / "dbt_project"
MODELS = (
    "stg_app__nps_responses",
    "stg_app__sessions",
    "stg_app__user_session_channels",
    "fct_nps_responses",
    "fct_sessions",
    "mau_summary",
)


@pytest.fixture(scope="module")
def dagbag():
    os.environ.setdefault("AIRFLOW__COSMOS__ENABLE_TELEMETRY", "False")
    from airflow.dag_processing.dagbag import DagBag

    started = time.perf_counter()
    bag = DagBag(dag_folder=str(DAG_FILE.parent))
    bag.import_seconds = time.perf_counter() - started
    return bag


@pytest.fixture(scope="module")
def dag(dagbag):
    return dagbag.dags["mysql_to_redshift"]


def test_dag_file_imports_without_errors(dagbag):
    assert dagbag.import_errors == {}
    assert sorted(dagbag.dag_ids) == ["mau_summary_export", "mysql_to_redshift"]


def test_every_model_run_has_its_asset_and_the_export_is_scheduled_on_mau_summary(dagbag, dag):
    from ingestion.notify import notify_failure

    data_dir = Path(os.environ.get("PIPELINE_DATA_DIR") or REPO_ROOT / ".data" / "embedded")
    warehouse = (data_dir / "warehouse.duckdb").resolve()
    for model in MODELS:
        outlets = [outlet.uri for outlet in dag.get_task(f"dbt.{model}.run").outlets]
        assert outlets == [f"duckdb:{warehouse}/analytics/{model}"], model
    export = dagbag.dags["mau_summary_export"]
    assert [asset.uri for asset in export.timetable.asset_condition.objects] == [
        f"duckdb:{warehouse}/analytics/mau_summary"
    ]
    for task in (*dag.tasks, *export.tasks):
        assert task.on_failure_callback == [notify_failure] or task.on_failure_callback == notify_failure


def test_every_table_gets_extract_then_load_before_dbt(dag):
    tables = load_tables()
    dbt_roots = {
        t.task_id
        for t in dag.tasks
        if t.task_id.startswith("dbt.")
        and not t.upstream_task_ids - {u for u in t.upstream_task_ids if not u.startswith("dbt.")}
    }
    assert dbt_roots, "the dbt task group has no root tasks"
    for name in tables:
        extract = dag.get_task(f"extract_{name}")
        load = dag.get_task(f"load_{name}")
        assert extract.downstream_task_ids == {f"load_{name}"}
        assert dbt_roots <= load.downstream_task_ids
        assert [outlet.name for outlet in load.outlets] == [f"raw_data.{name}"]
    ingestion_tasks = {t.task_id for t in dag.tasks if not t.task_id.startswith("dbt.")}
    assert ingestion_tasks == {f"{step}_{name}" for name in tables for step in ("extract", "load")}


def test_every_model_is_built_then_tested_and_sources_are_checked(dag):
    task_ids = {t.task_id for t in dag.tasks}
    for model in MODELS:
        assert {f"dbt.{model}.run", f"dbt.{model}.test"} <= task_ids
        assert dag.get_task(f"dbt.{model}.test").upstream_task_ids == {f"dbt.{model}.run"}
    for source in ("nps", "session_timestamp", "user_session_channel"):
        assert f"dbt.app_{source}.source" in task_ids  # freshness
    # lineage: mau_summary runs after fct_sessions is tested, which runs after staging
    assert "dbt.fct_sessions.test" in dag.get_task("dbt.mau_summary.run").upstream_task_ids
    assert "dbt.stg_app__sessions.test" in dag.get_task("dbt.fct_sessions.run").upstream_task_ids


def test_schedule_retries_and_docs(dag):
    assert isinstance(dag.timetable, CronDataIntervalTimetable)
    assert dag.max_active_runs == 1
    assert dag.catchup is False
    assert {"ingestion", "dbt"} <= set(dag.tags)
    assert dag.doc_md and "MySQL" in dag.doc_md
    for task in dag.tasks:
        assert task.retries >= 1, task.task_id
        assert task.retry_delay.total_seconds() > 0, task.task_id
        assert task.owner == "data-engineering"


def test_dag_has_no_cycles(dag):
    from airflow.utils.dag_cycle_tester import check_cycle

    check_cycle(dag)


def graph(manifest: dict) -> dict[str, tuple]:
    """What Cosmos renders from: every node, its file checksum and its parents."""
    nodes = {**manifest["nodes"], **manifest["unit_tests"]}
    return {
        node_id: (json.dumps(node.get("checksum"), sort_keys=True), sorted(node["depends_on"]["nodes"]))
        for node_id, node in nodes.items()
    } | {source_id: () for source_id in manifest["sources"]}


def test_manifest_is_current_with_the_dbt_project(tmp_path):
    """Cosmos renders from target/manifest.json: a fresh `dbt parse` must give the same graph."""
    manifest_path = DBT_PROJECT / "target" / "manifest.json"
    assert manifest_path.exists(), "dbt_project/target/manifest.json missing: run `make manifest`"
    env = {**os.environ, "DBT_PROFILES_DIR": str(REPO_ROOT), "DBT_SEND_ANONYMOUS_USAGE_STATS": "False"}
    done = subprocess.run(
        [str(Path(sys.executable).parent / "dbt"), "parse", "--quiet", "--target-path", str(tmp_path)],
        cwd=DBT_PROJECT, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    fresh = graph(json.loads((tmp_path / "manifest.json").read_text()))
    current = graph(json.loads(manifest_path.read_text()))
    assert current == fresh, "dbt_project changed since the last `dbt parse`: run `make manifest`"


def test_dag_import_time_is_measured(record_property, dagbag):
    """Import time of the DAG file in a fresh interpreter (reported, not asserted)."""
    code = (
        "import time, runpy; t = time.perf_counter(); "
        f"runpy.run_path({str(DAG_FILE)!r}); print(time.perf_counter() - t)"
    )
    env = {**os.environ, "AIRFLOW__COSMOS__ENABLE_TELEMETRY": "False"}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    seconds = float(done.stdout.strip().splitlines()[-1])
    record_property("dag_import_seconds", seconds)
    parse = sum(stat.duration.total_seconds() for stat in dagbag.dagbag_stats)
    record_property("dagbag_parse_seconds", parse)
    print(
        f"\nDAG file import: {seconds:.2f}s in a fresh interpreter (Airflow's own import included), "
        f"{parse:.2f}s to parse in a DagBag with Airflow already loaded"
    )
