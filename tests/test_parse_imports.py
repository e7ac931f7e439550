"""What the DAG file imports of ours on every parse stays light: no pyarrow, no driver."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("pyarrow", "numpy", "boto3", "psycopg2", "duckdb", "pymysql", "MySQLdb")


def test_the_modules_the_dag_file_imports_leave_pyarrow_and_the_drivers_to_the_tasks():
    code = (
        "import json, sys\n"
        "from ingestion import airflow_tasks, config, environments, lineage, notify\n"
        "config.load_tables()\n"
        "environments.environment_name()\n"
        "airflow_tasks.stage_retention()\n"
        f"print(json.dumps(sorted(m for m in {HEAVY!r} if m in sys.modules)))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.strip().splitlines()[-1]) == []


def test_a_warehouse_opened_after_the_lazy_import_is_the_dialects_class():
    from ingestion.connection import Connection
    from ingestion.warehouse import DIALECTS, asset_uri, open_warehouse

    connection = Connection(conn_id="w", conn_type="postgresql", host="pg", schema="wh")
    warehouse = open_warehouse(connection)
    assert type(warehouse) is DIALECTS["postgres"]
    assert type(warehouse).__name__ == "PostgresWarehouse"
    assert warehouse.asset_uri("raw_data", "nps") == "postgres://pg:5432/wh/raw_data/nps"
    assert asset_uri(connection, "raw_data", "nps") == warehouse.asset_uri("raw_data", "nps")
