"""Lineage through real `airflow dags test` runs: every dbt model's Asset gets an event and
queues the DAG scheduled on `mau_summary`, which exports the mart; with OpenLineage on,
the events chain the MySQL table to `mau_summary` through the stage and `raw_data`."""

from __future__ import annotations

import csv
import json
import sqlite3
from collections import defaultdict
from datetime import date, datetime, timedelta
from pathlib import Path

import pytest

from devtools import generate
from tests.airflow_helpers import BIN, dags_test, pipeline_env, prepare_airflow, run, services_env
from tests.dags.test_dag_integrity import MODELS
from tests.e2e.test_embedded_e2e import mau_from_oltp

pytestmark = pytest.mark.e2e

START = date(2026, 10, 30)
EXPORT_DAG = "mau_summary_export"


def metadata(env: dict[str, str], sql: str) -> list[tuple]:
    db = sqlite3.connect(Path(env["AIRFLOW_HOME"]) / "airflow.db")
    try:
        return db.execute(sql).fetchall()
    finally:
        db.close()


def test_a_main_dag_run_emits_every_model_asset_and_triggers_the_mau_summary_export(tmp_path):
    env = pipeline_env(tmp_path, "embedded")
    run([str(BIN / "python"), "-m", "ingestion", "generate", "--size", "200", "--days", "2",
         "--start", START.isoformat()], env)  # fmt: skip
    prepare_airflow(env)
    run([str(BIN / "airflow"), "dags", "reserialize"], env)  # the scheduler's view: both DAGs known
    run([str(BIN / "airflow"), "dags", "unpause", EXPORT_DAG], env)  # a paused DAG is not queued

    dags_test(START, env)
    dags_test(START + timedelta(days=1), env)

    warehouse = (tmp_path / "data" / "warehouse.duckdb").resolve()
    events = metadata(env, "select a.uri from asset_event e join asset a on a.id = e.asset_id")
    counts: dict[str, int] = defaultdict(int)
    for (uri,) in events:
        counts[uri] += 1
    for model in MODELS:
        assert counts[f"duckdb:{warehouse}/analytics/{model}"] == 2, (model, sorted(counts))
    queued = metadata(
        env,
        "select q.target_dag_id, a.uri from asset_dag_run_queue q join asset a on a.id = q.asset_id",
    )
    assert queued == [(EXPORT_DAG, f"duckdb:{warehouse}/analytics/mau_summary")]

    output = run([str(BIN / "airflow"), "dags", "test", EXPORT_DAG, "2026-11-01"], env)
    assert "state=success" in output, output[-4000:]
    with (tmp_path / "data" / "reports" / "mau_summary.csv").open() as report:
        rows = list(csv.DictReader(report))
    exported = {
        date.fromisoformat(row["activity_month"][:10]): (int(row["active_users"]), int(row["session_count"]))
        for row in rows
    }
    assert exported == mau_from_oltp(tmp_path / "data" / "source.sqlite")


def lineage_edges(events_file: Path) -> tuple[set[tuple[str, str]], list[dict]]:
    """(input dataset, output dataset) of every COMPLETE event, datasets as namespace/name."""
    events = [json.loads(line) for line in events_file.read_text().splitlines() if line.strip()]
    edges = {
        (f"{i['namespace']}/{i['name']}", f"{o['namespace']}/{o['name']}")
        for event in events
        if event.get("eventType") == "COMPLETE"
        for i in event.get("inputs", [])
        for o in event.get("outputs", [])
    }
    return edges, events


def test_openlineage_events_chain_the_mysql_table_to_mau_summary(
    tmp_path, services, mysql_db, pg_warehouse, s3_bucket
):
    for statement in generate.DDL:  # the demo's tables
        mysql_db.execute(statement)
    at = datetime(2026, 10, 30, 6)
    mysql_db.executemany(
        "INSERT INTO session_timestamp (sessionid, ts) VALUES (%s, %s)",
        [(f"s{n}", at + timedelta(minutes=n)) for n in range(20)],
    )
    mysql_db.executemany(
        "INSERT INTO user_session_channel (userid, sessionid, channel) VALUES (%s, %s, %s)",
        [(n % 7, f"s{n}", "Organic") for n in range(20)],
    )
    mysql_db.executemany(
        "INSERT INTO nps (id, created_at, modified_at, score) VALUES (%s, %s, %s, %s)",
        [(n, at, at, n % 11) for n in range(5)],
    )
    events_file = tmp_path / "openlineage.jsonl"
    env = services_env(
        tmp_path, services, AIRFLOW__OPENLINEAGE__DISABLED="false",
        AIRFLOW__OPENLINEAGE__NAMESPACE="pipeline-test",
        AIRFLOW__OPENLINEAGE__TRANSPORT=json.dumps(
            {"type": "file", "log_file_path": str(events_file), "append": True}
        ),
    )  # fmt: skip
    prepare_airflow(env)
    dags_test(START, env)

    edges, events = lineage_edges(events_file)
    source = mysql_db.connection
    warehouse = f"postgres://{pg_warehouse.host}:{pg_warehouse.port}/{pg_warehouse.schema}"
    chain = [
        f"mysql://{source.host}:{source.port}/{source.schema}.session_timestamp",
        f"s3://{s3_bucket}/stage/session_timestamp",
        f"{warehouse}.raw_data.session_timestamp",
        f"{warehouse}.analytics.stg_app__sessions",
        f"{warehouse}.analytics.fct_sessions",
        f"{warehouse}.analytics.mau_summary",
    ]
    missing = [link for link in zip(chain, chain[1:], strict=False) if link not in edges]
    assert missing == [], f"{len(events)} events; edges: {sorted(edges)}"
    # The load's datasets carry its statistics: the 20 session rows, all new, staged and written.
    (load,) = [
        event for event in events
        if event.get("eventType") == "COMPLETE" and event["job"]["name"].endswith(".load_session_timestamp")
    ]  # fmt: skip
    (stage,) = load["inputs"]
    (raw,) = load["outputs"]
    assert (stage["name"], raw["name"]) == (
        "stage/session_timestamp",
        f"{pg_warehouse.schema}.raw_data.session_timestamp",
    )
    assert stage["inputFacets"]["inputStatistics"]["rowCount"] == 20
    assert raw["outputFacets"]["outputStatistics"]["rowCount"] == 20
