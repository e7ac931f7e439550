"""A backfill run reads its own interval only: the catch-up widening of the extract
applies to scheduled and manual runs, never to a run `airflow backfill create` made
(``dag_run.run_type == "backfill"``), which the DAG hands to ``extract_table``."""

from __future__ import annotations

import pytest

from devtools import generate
from ingestion import airflow_tasks, pipeline
from ingestion.config import get_table
from ingestion.environments import Environment
from tests.embedded_helpers import SPEC, interval
from tests.test_catch_up import audit_windows, load_interval

TABLE = "session_timestamp"


@pytest.fixture
def task_env(embedded: Environment, monkeypatch: pytest.MonkeyPatch) -> Environment:
    """Four days of data, interval 0 loaded; the task process's variables set."""
    generate.generate(embedded.source, SPEC, 4)
    load_interval(embedded, TABLE, 0)
    for name, value in embedded.variables().items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("PIPELINE_DATA_DIR", str(embedded.data_dir))
    monkeypatch.setenv("AIRFLOW_CONN_PIPELINE_AWS", '{"conn_type": "aws"}')  # unused by a folder stage
    return embedded


@pytest.mark.parametrize(
    ("run_type", "first_day_read"),
    [("backfill", 2), ("scheduled", 1), ("manual", 1), (None, 1)],
)
def test_only_a_backfill_run_reads_just_its_own_interval(
    task_env: Environment, run_type: str | None, first_day_read: int
) -> None:
    window = interval(2)  # interval 1 was never loaded
    manifest_url = airflow_tasks.extract_table(TABLE, window.start, window.end, run_type)
    pipeline.run_load(get_table(TABLE), manifest_url, window, task_env)

    assert audit_windows(task_env, TABLE)[-1] == (interval(first_day_read).start, window.end)
