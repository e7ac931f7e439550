"""The production target (dbt-redshift) parses, and its staging models compile,
with no Redshift reachable: what can be checked offline is checked here."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
DBT = Path(sys.executable).parent / "dbt"
UNREACHABLE_REDSHIFT = json.dumps(
    {
        "conn_type": "redshift",
        "host": "redshift.invalid",
        "port": 5439,
        "login": "loader",
        "password": "not-a-secret",
        "schema": "analytics",
    }
)


def dbt_prod(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        "AIRFLOW_CONN_PIPELINE_WAREHOUSE": UNREACHABLE_REDSHIFT,
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "False",
    }
    return subprocess.run(
        [str(DBT), *args, "--target", "prod", "--profiles-dir", str(REPO_ROOT),
         "--target-path", str(tmp_path / "target"), "--log-path", str(tmp_path / "logs")],
        cwd=REPO_ROOT / "dbt_project", env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip


def test_prod_target_parses_without_redshift(tmp_path):
    done = dbt_prod(tmp_path, "parse")
    assert done.returncode == 0, done.stdout + done.stderr
    manifest = json.loads((tmp_path / "target" / "manifest.json").read_text())
    assert manifest["metadata"]["adapter_type"] == "redshift"
    fct = manifest["nodes"]["model.analytics.fct_sessions"]["config"]
    assert (fct["sort"], fct["dist"]) == ("started_at", "session_id")


def test_prod_staging_models_compile_to_redshift_sql_without_redshift(tmp_path):
    done = dbt_prod(tmp_path, "compile", "--select", "staging", "--no-populate-cache")
    assert done.returncode == 0, done.stdout + done.stderr
    compiled = tmp_path / "target" / "compiled" / "analytics" / "models" / "staging" / "app"
    sql = (compiled / "stg_app__sessions.sql").read_text()
    assert '"analytics"."raw_data"."session_timestamp"' in sql
