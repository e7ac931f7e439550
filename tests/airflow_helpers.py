"""Run Airflow and dbt as a user would: subprocesses with the environment's variables."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import date, timedelta
from pathlib import Path

from ingestion.environments import Environment

REPO_ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def pipeline_env(tmp_path: Path, environment: str, **extra: str) -> dict[str, str]:
    """Process environment for one isolated run: its own data dir and Airflow home."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("AIRFLOW_CONN_", "PIPELINE_", "DBT_TARGET", "DBT_WAREHOUSE_", "DBT_REDSHIFT_"))
    }
    env.update(
        {
            "PIPELINE_ENV": environment,
            "PIPELINE_DATA_DIR": str(tmp_path / "data"),
            "AIRFLOW_HOME": str(tmp_path / "airflow"),
            "AIRFLOW__CORE__DAGS_FOLDER": str(REPO_ROOT / "dags"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__COSMOS__ENABLE_TELEMETRY": "False",
            "DO_NOT_TRACK": "1",
            "SCARF_NO_ANALYTICS": "true",
            "DBT_SEND_ANONYMOUS_USAGE_STATS": "False",
            "DBT_PROFILES_DIR": str(REPO_ROOT),
            # dbt's own files per run: runs in parallel never share target/ or logs/
            # (the DAG reads the manifest `make manifest` built in dbt_project/target).
            "DBT_TARGET_PATH": str(tmp_path / "dbt-target"),
            "DBT_LOG_PATH": str(tmp_path / "dbt-logs"),
            "PIPELINE_TASK_RETRIES": "0",  # a failing task fails the run at once
        }
    )
    env.update(extra)
    return env


def services_env(tmp_path: Path, services: Environment, **extra: str) -> dict[str, str]:
    """``pipeline_env`` for the services environment ``services`` (the conftest fixture):
    its connections as ``AIRFLOW_CONN_*`` variables and its stage URI."""
    return pipeline_env(
        tmp_path,
        "services",
        AIRFLOW_CONN_PIPELINE_SOURCE=services.source.to_json(),
        AIRFLOW_CONN_PIPELINE_WAREHOUSE=services.warehouse.to_json(),
        AIRFLOW_CONN_PIPELINE_AWS=services.aws.to_json(),
        PIPELINE_STAGE_URI=services.stage_uri,
        **extra,
    )


def run(command: list[str], env: dict[str, str], cwd: Path = REPO_ROOT, timeout: int = 900) -> str:
    """Run a command with the environment's connection variables; fail with its output."""
    full = [str(BIN / "python"), "-m", "ingestion", "exec", "--", *command]
    done = subprocess.run(full, env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout)
    output = done.stdout + done.stderr
    assert done.returncode == 0, f"{' '.join(command)} exited {done.returncode}:\n{output[-6000:]}"
    return output


def dbt(args: list[str], env: dict[str, str]) -> str:
    return run([str(BIN / "dbt"), *args], env, cwd=REPO_ROOT / "dbt_project")


def dags_test(interval_start: date, env: dict[str, str]) -> str:
    """`airflow dags test` for the daily interval starting at ``interval_start``."""
    logical_date = (interval_start + timedelta(days=1)).isoformat()
    output = run([str(BIN / "airflow"), "dags", "test", "mysql_to_redshift", logical_date], env)
    assert "new_state=failed" not in output and "new_state=up_for_retry" not in output, output[-6000:]
    assert "state=success, run_type" in output, output[-6000:]
    return output


def prepare_airflow(env: dict[str, str]) -> None:
    dbt(["parse", "--quiet"], env)
    run([str(BIN / "airflow"), "db", "migrate"], env)
