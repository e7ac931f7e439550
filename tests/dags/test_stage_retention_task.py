"""The DAG ends with a stage-retention task only when ``PIPELINE_STAGE_RETENTION`` is set."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

DAG_FOLDER = Path(__file__).resolve().parents[2] / "dags"


def load_dagbag(monkeypatch: pytest.MonkeyPatch, retention: str | None):
    os.environ.setdefault("AIRFLOW__COSMOS__ENABLE_TELEMETRY", "False")
    from airflow.dag_processing.dagbag import DagBag

    if retention is None:
        monkeypatch.delenv("PIPELINE_STAGE_RETENTION", raising=False)
    else:
        monkeypatch.setenv("PIPELINE_STAGE_RETENTION", retention)
    return DagBag(dag_folder=str(DAG_FOLDER))


def test_without_the_setting_the_dag_has_no_retention_task(monkeypatch: pytest.MonkeyPatch) -> None:
    dagbag = load_dagbag(monkeypatch, None)

    assert dagbag.import_errors == {}
    assert "clean_stage" not in dagbag.dags["mysql_to_redshift"].task_ids


def test_with_the_setting_retention_is_the_last_task_after_every_dbt_task(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    dagbag = load_dagbag(monkeypatch, "7d")

    assert dagbag.import_errors == {}
    dag = dagbag.dags["mysql_to_redshift"]
    clean = dag.get_task("clean_stage")
    assert clean.downstream_task_ids == set()
    assert clean.trigger_rule == "all_done"  # the stage is cleaned even after a failed model
    upstream = clean.get_flat_relative_ids(upstream=True)
    assert {t for t in dag.task_ids if t != "clean_stage"} <= upstream  # everything else first
    assert list(clean.op_args) == ["7d"]


def test_a_bad_retention_value_is_an_import_error_naming_the_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    dagbag = load_dagbag(monkeypatch, "a week")

    [error] = dagbag.import_errors.values()
    assert "PIPELINE_STAGE_RETENTION='a week' is not a duration" in error


def test_the_task_function_cleans_the_stage_by_the_stage_clean_rules(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from ingestion import airflow_tasks

    monkeypatch.setenv("PIPELINE_ENV", "embedded")
    monkeypatch.setenv("PIPELINE_DATA_DIR", str(tmp_path))
    for name in [n for n in os.environ if n.startswith("AIRFLOW_CONN_PIPELINE_")]:
        monkeypatch.delenv(name)
    crashed = tmp_path / "stage" / "nps" / "20200101T000000Z_20200102T000000Z" / "20200101T060000Z-0000000a"
    recent = crashed.parent / "29990101T060000Z-0000000b"  # newer than any limit
    for attempt in (crashed, recent):
        attempt.mkdir(parents=True)
        (attempt / "part-00000.parquet").write_bytes(b"x")

    summary = airflow_tasks.clean_stage("7d")

    assert summary.startswith("removed 1 attempts, 1 files")
    assert not crashed.exists() and recent.exists()
