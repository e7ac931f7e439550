"""The peer: Airflow's ``SqlToS3Operator`` (amazon provider) on the same table, server and S3.

``SqlToS3Operator(query="SELECT * FROM nps", file_format="parquet", replace=True, ...)
.execute(context={})`` with its defaults (pandas), the connections from
``AIRFLOW_CONN_BENCH_MYSQL`` / ``AIRFLOW_CONN_BENCH_AWS`` (:func:`airflow_env`) and
``AIRFLOW_HOME`` in the run's work dir. A one-row warm-up run first pays Airflow's one-off
costs outside the clock.

pandas is not a project dependency: :func:`ensure_peer_site` installs the version
``apache-airflow-providers-amazon[pandas]`` resolves to into ``.data/bench/peer-site/``
(beside the venv, not in it); the worker appends that directory to its ``sys.path``.
Airflow and pandas are imported inside the worker only: importing this module is cheap.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench.measure import Clock
from bench.settings import REPO_ROOT, TABLE, Settings, pipeline_connections

# The version is what `apache-airflow-providers-amazon[pandas]` resolves to; numpy comes
# from the venv.
PEER_SITE = REPO_ROOT / ".data" / "bench" / "peer-site"
PEER_REQUIREMENTS = ("pandas==3.1.1",)
PEER_KEY = f"peer/{TABLE}.parquet"


def ensure_peer_site() -> str | None:
    """A directory holding pandas for SqlToS3Operator, or None when the venv has it already."""
    if importlib.util.find_spec("pandas") is not None:
        return None
    marker = PEER_SITE / ".requirements"
    if marker.exists() and marker.read_text() == "\n".join(PEER_REQUIREMENTS):
        return str(PEER_SITE)
    shutil.rmtree(PEER_SITE, ignore_errors=True)
    PEER_SITE.mkdir(parents=True)
    print(f"bench: installing {' '.join(PEER_REQUIREMENTS)} for SqlToS3Operator into {PEER_SITE}")
    uv = shutil.which("uv")
    if uv:
        command = [uv, "pip", "install", "--quiet", "--python", sys.executable, "--target", str(PEER_SITE)]
    else:
        command = [sys.executable, "-m", "pip", "install", "--quiet", "--target", str(PEER_SITE)]
    env = {**os.environ, "UV_PYTHON_DOWNLOADS": "never"}
    subprocess.run([*command, "--no-deps", *PEER_REQUIREMENTS], check=True, env=env)
    marker.write_text("\n".join(PEER_REQUIREMENTS))
    return str(PEER_SITE)


def pandas_version(peer_site: str | None) -> str | None:
    """The pandas SqlToS3Operator runs with (for the report's versions)."""
    try:
        return importlib.metadata.version("pandas")
    except importlib.metadata.PackageNotFoundError:
        return PEER_REQUIREMENTS[0].split("==")[1] if peer_site else None


def airflow_env(settings: Settings, airflow_home: Path) -> dict[str, str]:
    """The variables of the peer worker: its Airflow home and connections."""
    mysql = {
        "conn_type": "mysql",
        "host": settings.mysql_host,
        "port": settings.mysql_port,
        "login": settings.mysql_user,
        "schema": settings.mysql_db,
    }
    if settings.mysql_password:
        mysql["password"] = settings.mysql_password
    # The same connection as ours (keys, endpoint, checksum setting), as Airflow reads it.
    aws = json.loads(pipeline_connections(settings)["aws"].to_json())
    return {
        "AIRFLOW_HOME": str(airflow_home),
        "AIRFLOW_CONN_BENCH_MYSQL": json.dumps(mysql),
        "AIRFLOW_CONN_BENCH_AWS": json.dumps(aws),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_FOLDER": str(airflow_home / "dags"),
        "DO_NOT_TRACK": "1",
        "SCARF_NO_ANALYTICS": "true",
    }


def sql_to_s3_operator(s: Settings, spec: dict[str, Any]) -> dict[str, Any]:
    # AIRFLOW_HOME and the AIRFLOW_CONN_* variables are set by the parent (see airflow_env).
    if spec.get("peer_site"):
        sys.path.append(spec["peer_site"])  # after the venv: only pandas/numpy come from it
    import pandas  # noqa: F401  (imported before the clock, like our modules)
    from airflow.providers.amazon.aws.transfers.sql_to_s3 import SqlToS3Operator

    def operator(task_id: str, query: str, key: str) -> Any:
        return SqlToS3Operator(
            task_id=task_id,
            query=query,
            s3_bucket=s.bucket,
            s3_key=key,
            sql_conn_id="bench_mysql",
            aws_conn_id="bench_aws",
            file_format="parquet",
            replace=True,
        )

    # Warm-up on one row: Airflow's one-off costs (connections, hooks, plugins, boto3 client
    # set-up) are paid outside the clock, so the measurement is the operator's per-row work.
    warm = time.perf_counter()
    operator("warm_up", f"SELECT * FROM {TABLE} LIMIT 1", "peer/warm-up.parquet").execute(context={})
    warm_up = time.perf_counter() - warm

    with Clock() as clock:
        operator("sql_to_s3", f"SELECT * FROM {TABLE}", spec["key"]).execute(context={})
    return {
        "wall_s": clock.wall,
        "cpu_s": clock.cpu,
        "rows": None,
        "key": spec["key"],
        "warm_up_s": round(warm_up, 3),
        "pandas": importlib.metadata.version("pandas"),
    }
