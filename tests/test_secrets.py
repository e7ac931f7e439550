"""Nothing leaked: a sentinel password on the source and warehouse connections goes
through a real `airflow dags test` run of `mysql_to_redshift` (services environment) and
is then looked for everywhere Airflow, Cosmos and dbt write.

The sentinel is the password of a MariaDB user created here (MariaDB checks it, so a
successful extract proves the task used it) and of a PostgreSQL role created here
(PostgreSQL trusts loopback logins, so the password is not checked; the role and the
database it owns identify the connection). Two ways of defining the connections:

- ``env_var``: ``AIRFLOW_CONN_*`` environment variables;
- ``metadata_db``: only in Airflow's metadata database (``airflow connections add``,
  encrypted with a Fernet key), no ``AIRFLOW_CONN_*`` variable in the run: the
  warehouse database exists only in that connection, so dbt building into it proves
  dbt got the connection from there.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import sqlite3
import subprocess
import zlib
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import psycopg2
import pytest
from cryptography.fernet import Fernet

from ingestion.connection import Connection
from ingestion.environments import loopback_s3_connection
from tests.airflow_helpers import BIN, REPO_ROOT, pipeline_env

INTERVAL_START = date(2026, 10, 30)
DBT_PROJECT = REPO_ROOT / "dbt_project"
VARIANTS = ("env_var", "metadata_db")


def run(command: list[str], env: dict[str, str], cwd: Path = REPO_ROOT) -> str:
    """Run a command with exactly ``env`` (no `ingestion exec` defaults); return its output."""
    done = subprocess.run(command, env=env, cwd=cwd, capture_output=True, text=True, timeout=900)
    output = done.stdout + done.stderr
    errors = "\n".join(line[:600] for line in output.splitlines() if "error" in line.lower())
    assert done.returncode == 0, f"{' '.join(command[:4])} exited {done.returncode}:\n{errors[-8000:]}"
    return output


@dataclass
class World:
    """What both variants share: the sentinel, its MariaDB user and PostgreSQL role,
    a MariaDB database of demo data, a bucket, a migrated Airflow home to copy."""

    sentinel: str
    mysql: dict
    source_db: str
    user: str
    pg: dict
    role: str
    bucket: str
    s3_endpoint: str
    airflow_template: Path
    fernet_key: str
    outputs: list[str]


@pytest.fixture(scope="module")
def world(tmp_path_factory, mysql_server, pg_server, s3_endpoint):
    import MySQLdb

    from devtools.s3_server import ensure_bucket

    sentinel = f"S3ntinel-{secrets.token_hex(12)}"
    suffix = f"{os.getpid()}_{secrets.token_hex(4)}"
    source_db, user, role = f"sec_{suffix}", f"sec_{suffix}", f"sec_{suffix}"
    admin = MySQLdb.connect(**mysql_server, charset="utf8mb4")
    admin.autocommit(True)
    pg_admin = psycopg2.connect(dbname="postgres", **pg_server)
    pg_admin.autocommit = True
    with admin.cursor() as cursor:
        cursor.execute(f"CREATE DATABASE `{source_db}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci")
        cursor.execute(f"CREATE USER '{user}'@'%%' IDENTIFIED BY %s", (sentinel,))
        cursor.execute(f"GRANT SELECT ON `{source_db}`.* TO '{user}'@'%'")
    with pg_admin.cursor() as cursor:
        cursor.execute(f'CREATE ROLE "{role}" WITH LOGIN PASSWORD %s', (sentinel,))
    bucket = f"sec-{secrets.token_hex(6)}"
    ensure_bucket(s3_endpoint, bucket)
    try:
        root = tmp_path_factory.mktemp("world")
        admin_source = Connection(
            "pipeline_source", "mysql", host=mysql_server["host"], port=mysql_server["port"],
            login=mysql_server["user"], password=mysql_server["password"] or None, schema=source_db,
        )  # fmt: skip
        env = pipeline_env(root, "services", AIRFLOW_CONN_PIPELINE_SOURCE=admin_source.to_json())
        outputs = [
            run([str(BIN / "python"), "-m", "ingestion", "generate", "--size", "200", "--days", "1"], env)
        ]
        # The MariaDB user needs the sentinel: without it, no connection.
        with pytest.raises(MySQLdb.OperationalError):
            MySQLdb.connect(host=mysql_server["host"], port=mysql_server["port"], user=user, password="wrong")
        MySQLdb.connect(
            host=mysql_server["host"],
            port=mysql_server["port"],
            user=user,
            password=sentinel,
            database=source_db,
        ).close()
        # The manifest Cosmos renders from, parsed with the sentinel in the environment.
        fernet_key = Fernet.generate_key().decode()
        parse_env = {
            **env,
            "AIRFLOW_CONN_PIPELINE_WAREHOUSE": Connection(
                "pipeline_warehouse", "postgres", host=pg_server["host"], port=pg_server["port"],
                login=role, password=sentinel, schema="not_used",
            ).to_json(),
            "AIRFLOW__CORE__FERNET_KEY": fernet_key,
        }  # fmt: skip
        outputs.append(run([str(BIN / "dbt"), "parse", "--quiet"], parse_env, cwd=DBT_PROJECT))
        outputs.append(run([str(BIN / "airflow"), "db", "migrate"], parse_env))
        yield World(
            sentinel=sentinel, mysql=mysql_server, source_db=source_db, user=user, pg=pg_server,
            role=role, bucket=bucket, s3_endpoint=s3_endpoint, airflow_template=Path(env["AIRFLOW_HOME"]),
            fernet_key=fernet_key, outputs=outputs,
        )  # fmt: skip
    finally:
        with admin.cursor() as cursor:
            cursor.execute(f"DROP DATABASE IF EXISTS `{source_db}`")
            cursor.execute(f"DROP USER IF EXISTS '{user}'@'%'")
        admin.close()
        with pg_admin.cursor() as cursor:
            cursor.execute(
                "select datname from pg_database d join pg_roles r on d.datdba = r.oid where r.rolname = %s",
                (role,),
            )
            for (name,) in cursor.fetchall():
                cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            cursor.execute(f'DROP ROLE IF EXISTS "{role}"')
        pg_admin.close()


@dataclass
class DagRun:
    variant: str
    airflow_home: Path
    tmp_dir: Path
    warehouse_db: str
    stage_prefix: str
    outputs: list[str]


@pytest.fixture(scope="module", params=VARIANTS)
def dag_run(request, world, tmp_path_factory):
    """One `airflow dags test` run with the connections defined the variant's way."""
    variant = request.param
    root = tmp_path_factory.mktemp(variant)
    home, tmp_dir = root / "airflow", root / "tmp"
    home.mkdir()
    tmp_dir.mkdir()
    # a copy of the migrated database (airflow.cfg, written per home, would name the template's)
    shutil.copy(world.airflow_template / "airflow.db", home / "airflow.db")
    warehouse_db = f"{world.role}_{variant}"
    pg_admin = psycopg2.connect(dbname="postgres", **world.pg)
    pg_admin.autocommit = True
    with pg_admin.cursor() as cursor:
        cursor.execute(f'CREATE DATABASE "{warehouse_db}" OWNER "{world.role}"')
    pg_admin.close()
    connections = {
        "pipeline_source": Connection(
            "pipeline_source", "mysql", host=world.mysql["host"], port=world.mysql["port"],
            login=world.user, password=world.sentinel, schema=world.source_db,
        ),
        "pipeline_warehouse": Connection(
            "pipeline_warehouse", "postgres", host=world.pg["host"], port=world.pg["port"],
            login=world.role, password=world.sentinel, schema=warehouse_db,
        ),
        "pipeline_aws": loopback_s3_connection(world.s3_endpoint),
    }  # fmt: skip
    stage_prefix = f"stage-{variant}"
    env = pipeline_env(
        root,
        "services",
        AIRFLOW_HOME=str(home),
        AIRFLOW__CORE__FERNET_KEY=world.fernet_key,
        PIPELINE_STAGE_URI=f"s3://{world.bucket}/{stage_prefix}",
        TMPDIR=str(tmp_dir),  # Cosmos' temporary project copies and its cache land here
    )
    outputs: list[str] = []
    if variant == "env_var":
        env.update({f"AIRFLOW_CONN_{conn_id.upper()}": c.to_json() for conn_id, c in connections.items()})
    else:
        assert [key for key in env if key.startswith("AIRFLOW_CONN_")] == []
        for conn_id, connection in connections.items():
            command = [
                str(BIN / "airflow"),
                "connections",
                "add",
                conn_id,
                "--conn-json",
                connection.to_json(),
            ]
            outputs.append(run(command, env))
    logical_date = (INTERVAL_START + timedelta(days=1)).isoformat()
    output = run([str(BIN / "airflow"), "dags", "test", "mysql_to_redshift", logical_date], env)
    assert "new_state=failed" not in output and "new_state=up_for_retry" not in output, output[-6000:]
    assert "state=success, run_type" in output, output[-6000:]
    outputs.append(output)
    return DagRun(variant, home, tmp_dir, warehouse_db, stage_prefix, outputs)


def query(dbname: str, pg: dict, sql: str, params: tuple = ()) -> list[tuple]:
    conn = psycopg2.connect(dbname=dbname, **pg)
    try:
        with conn.cursor() as cursor:
            cursor.execute(sql, params)
            return cursor.fetchall()
    finally:
        conn.close()


@pytest.mark.e2e
@pytest.mark.services
def test_tasks_and_dbt_use_the_connections_of_the_variant(world, dag_run):
    """The extract logged in as the sentinel's MariaDB user (MariaDB checked the
    password), the load and dbt built into the database named only by the warehouse
    connection, as its role."""
    import MySQLdb

    source = MySQLdb.connect(**world.mysql, database=world.source_db)
    with source.cursor() as cursor:
        cursor.execute("select count(*) from nps")
        (source_rows,) = cursor.fetchone()
    source.close()
    assert source_rows > 0
    assert query(dag_run.warehouse_db, world.pg, "select count(*) from raw_data.nps") == [(source_rows,)]
    assert query(dag_run.warehouse_db, world.pg, "select count(*) > 0 from analytics.mau_summary") == [
        (True,)
    ]
    owners = query(
        dag_run.warehouse_db, world.pg,
        "select distinct tableowner from pg_tables where schemaname in ('raw_data', 'analytics')",
    )  # fmt: skip
    assert owners == [(world.role,)]


def text_holds(value: object, needle: str) -> bool:
    if isinstance(value, str):
        return needle in value
    if isinstance(value, bytes):
        if needle.encode() in value:
            return True
        try:
            return needle.encode() in zlib.decompress(value)
        except zlib.error:
            return False
    return False


def metadata_holding(database: Path, needle: str) -> tuple[list[str], dict[str, int]]:
    """``table.column`` of every metadata-DB value holding ``needle``; rows per table."""
    found, counts = [], {}
    with sqlite3.connect(f"file:{database}?mode=ro", uri=True) as db:
        tables = [name for (name,) in db.execute("select name from sqlite_master where type = 'table'")]
        for table in tables:
            cursor = db.execute(f'select * from "{table}"')  # noqa: S608 - names from sqlite_master
            columns = [d[0] for d in cursor.description]
            rows = cursor.fetchall()
            counts[table] = len(rows)
            for row in rows:
                found += [f"{table}.{c}" for c, v in zip(columns, row, strict=True) if text_holds(v, needle)]
    return sorted(set(found)), counts


def files_holding(folder: Path, needle: str) -> list[str]:
    if not folder.exists():
        return []
    return [
        str(path)
        for path in folder.rglob("*")
        if path.is_file() and not path.is_symlink() and text_holds(path.read_bytes(), needle)
    ]


@pytest.mark.e2e
@pytest.mark.services
def test_password_is_nowhere_airflow_cosmos_or_dbt_write(world, dag_run):
    import boto3

    database = dag_run.airflow_home / "airflow.db"
    in_metadata, counts = metadata_holding(database, world.sentinel)
    assert in_metadata == []
    # the scan saw what it had to see: the DAG, rendered dbt fields, the manifest URLs
    assert counts["serialized_dag"] > 0 and counts["dag_code"] > 0
    assert counts["rendered_task_instance_fields"] > 0 and counts["xcom"] > 0
    if dag_run.variant == "metadata_db":
        assert counts["connection"] == 3

    # `airflow dags test` writes the task logs, dbt's output included, to its own output
    # (scanned below); anything written under AIRFLOW_HOME (logs/, airflow.db pages) too
    run_output = dag_run.outputs[-1]
    assert "task_id=dbt.mau_summary.run" in run_output and "Trying to run dbtRunner" in run_output
    assert files_holding(dag_run.airflow_home, world.sentinel) == []
    assert files_holding(dag_run.tmp_dir, world.sentinel) == []  # Cosmos' temporary copies, cache
    assert files_holding(DBT_PROJECT / "target", world.sentinel) == []
    assert files_holding(DBT_PROJECT / "logs", world.sentinel) == []
    assert [i for i, text in enumerate(world.outputs + dag_run.outputs) if world.sentinel in text] == []

    s3 = boto3.client(
        "s3", endpoint_url=world.s3_endpoint, region_name="us-east-1",
        aws_access_key_id="testing", aws_secret_access_key="testing",  # noqa: S106 - moto's test keys
    )  # fmt: skip
    listing = s3.list_objects_v2(Bucket=world.bucket, Prefix=dag_run.stage_prefix)
    keys = [item["Key"] for item in listing.get("Contents", [])]
    assert any(key.endswith("manifest.json") for key in keys)
    stage_holding = [
        key
        for key in keys
        if text_holds(s3.get_object(Bucket=world.bucket, Key=key)["Body"].read(), world.sentinel)
    ]
    assert stage_holding == []


# ---------------------------------------------------------------- no services needed


def warehouse_with(password: str) -> Connection:
    return Connection(
        "pipeline_warehouse", "postgres", host="127.0.0.1", port=5432, login="loader",
        password=password, schema="analytics_db",
    )  # fmt: skip


def test_parsed_dag_holds_no_warehouse_password_in_any_dbt_task_or_its_serialization(monkeypatch):
    """The DAG is parsed with the password in the environment; neither the dbt tasks'
    templated fields nor the serialized DAG (what the scheduler stores and the UI shows)
    contain it."""
    from airflow.dag_processing.dagbag import DagBag
    from airflow.serialization.serialized_objects import DagSerialization

    sentinel = f"S3ntinel-{secrets.token_hex(12)}"
    monkeypatch.setenv("PIPELINE_ENV", "services")
    monkeypatch.setenv("AIRFLOW_CONN_PIPELINE_WAREHOUSE", warehouse_with(sentinel).to_json())
    dag = DagBag(dag_folder=str(REPO_ROOT / "dags")).dags["mysql_to_redshift"]
    dbt_tasks = [task for task in dag.tasks if task.task_id.startswith("dbt.")]
    assert dbt_tasks
    for task in dbt_tasks:
        fields = {name: repr(getattr(task, name, None)) for name in task.template_fields}
        assert [name for name, text in fields.items() if sentinel in text] == [], task.task_id
    assert sentinel not in json.dumps(DagSerialization.to_dict(dag), default=str)


def test_dbt_task_gets_the_warehouse_connection_from_airflow_at_execution_time(monkeypatch):
    """The dbt tasks' ``pre_execute`` resolves ``pipeline_warehouse`` through Airflow's
    connection store (here: a stand-in for the metadata DB) and hands it to dbt through
    this process's environment, in the JSON form ``profiles.yml`` reads."""
    from ingestion import airflow_tasks

    sentinel = f"S3ntinel-{secrets.token_hex(12)}"
    stored = {"pipeline_warehouse": warehouse_with(sentinel)}
    monkeypatch.setenv("PIPELINE_ENV", "services")
    for variable in ("AIRFLOW_CONN_PIPELINE_SOURCE", "AIRFLOW_CONN_PIPELINE_WAREHOUSE", "DBT_TARGET"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setattr(airflow_tasks, "airflow_connection", stored.get)
    airflow_tasks.export_dbt_credentials({})
    handed = json.loads(os.environ["AIRFLOW_CONN_PIPELINE_WAREHOUSE"])
    assert handed == {
        "conn_type": "postgres", "host": "127.0.0.1", "port": 5432, "login": "loader",
        "password": sentinel, "schema": "analytics_db",
    }  # fmt: skip
    assert os.environ["DBT_TARGET"] == "ci"


@pytest.mark.parametrize(
    "password", [f"S3ntinel-{secrets.token_hex(8)}", 'S3ntinel-"quoted\\slash'], ids=["random", "quoted"]
)
def test_a_log_line_holding_a_connection_password_is_masked(monkeypatch, password):
    """A stray log line (a task log goes through Airflow's ``mask_logs``) shows ``***``
    for the password, also where it appears JSON-escaped in an ``AIRFLOW_CONN_*`` value."""
    from airflow.sdk.log import mask_logs

    from ingestion import airflow_tasks

    monkeypatch.setenv("PIPELINE_ENV", "services")
    monkeypatch.setenv("AIRFLOW_CONN_PIPELINE_WAREHOUSE", warehouse_with(password).to_json())
    monkeypatch.delenv("DBT_TARGET", raising=False)
    monkeypatch.setattr(airflow_tasks, "airflow_connection", lambda conn_id: None)
    airflow_tasks.export_dbt_credentials({})
    value = os.environ["AIRFLOW_CONN_PIPELINE_WAREHOUSE"]
    escaped = json.dumps(password)[1:-1]
    line = mask_logs(None, "info", {"event": f"password {password}, variable {value}"})["event"]
    assert password not in line and escaped not in line
    assert "***" in line
