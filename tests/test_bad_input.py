"""Every bad input gets one line, not a traceback: ``python -m ingestion run`` in a
subprocess, one setting broken per case.

The rule for stderr: log lines go there too (each starts with its timestamp), so a
case passes when the exit status is 2, stdout is empty, the *last* stderr line is the
one and only line starting with ``error:``, it names the setting (the expected
fragment), no ``Traceback`` is printed, and no row landed in ``raw_data``. ``-v``
adds the traceback above the same last line.

The cases marked ``services`` start from a working services world (MariaDB with the
demo tables, PostgreSQL, the loopback S3 server: ``test_the_unbroken_world_loads``
shows it loads) and break one thing; the others need no service: they point every
connection at a closed loopback port, so nothing could be written even if a case
slipped through. README.md's "Troubleshooting" lists the same cases and messages.
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import psycopg2
import pytest

from ingestion.connection import Connection
from ingestion.environments import loopback_s3_connection

REPO_ROOT = Path(__file__).resolve().parent.parent
WINDOW = ("--start", "2026-10-30", "--end", "2026-10-31")
RUN = ("--env", "services", "run", "nps", *WINDOW)
SELECTING = ("AIRFLOW_CONN_", "PIPELINE_", "DBT_TARGET")
NPS = "tables:\n  - name: nps\n    primary_key: id\n    mode: incremental\n    cursor: modified_at\n"


def closed_port() -> int:
    """A loopback port nothing listens on."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class World:
    """The connections and stage a case starts from."""

    source: Connection
    warehouse: Connection
    aws: Connection
    stage_uri: str
    s3_endpoint: str = ""

    def variables(self) -> dict[str, str]:
        return {
            "AIRFLOW_CONN_PIPELINE_SOURCE": self.source.to_json(),
            "AIRFLOW_CONN_PIPELINE_WAREHOUSE": self.warehouse.to_json(),
            "AIRFLOW_CONN_PIPELINE_AWS": self.aws.to_json(),
            "PIPELINE_STAGE_URI": self.stage_uri,
        }

    def denied_bucket(self) -> str:
        """A bucket whose policy denies every upload (the S3 server enforces bucket policies)."""
        import boto3

        bucket = f"denied-{secrets.token_hex(4)}"
        s3 = boto3.client(
            "s3", endpoint_url=self.s3_endpoint, region_name="us-east-1",
            aws_access_key_id="testing", aws_secret_access_key="testing",  # noqa: S106
        )  # fmt: skip
        s3.create_bucket(Bucket=bucket)
        deny = {
            "Effect": "Deny",
            "Principal": "*",
            "Action": "s3:PutObject",
            "Resource": f"arn:aws:s3:::{bucket}/*",
        }
        policy = {"Version": "2012-10-17", "Statement": [deny]}
        s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps(policy))
        return bucket


def unreachable_world() -> World:
    loopback = {"host": "127.0.0.1"}
    return World(
        source=Connection("pipeline_source", "mysql", port=closed_port(), schema="oltp", **loopback),
        warehouse=Connection("pipeline_warehouse", "postgres", port=closed_port(), schema="dw", **loopback),
        aws=loopback_s3_connection(f"http://127.0.0.1:{closed_port()}"),
        stage_uri="s3://nowhere/stage",
    )


@pytest.fixture
def services_world(mysql_db, pg_warehouse, s3_endpoint, s3_bucket, s3_connection) -> World:
    from devtools import generate

    generate.generate(mysql_db.connection, generate.DemoSpec(size=20), days=1)
    return World(mysql_db.connection, pg_warehouse, s3_connection, f"s3://{s3_bucket}/stage", s3_endpoint)


def raw_rows(warehouse: Connection) -> int:
    """Rows in every table of ``raw_data`` (0 when the schema does not exist)."""
    db = psycopg2.connect(
        host=warehouse.host, port=warehouse.port, user=warehouse.login, dbname=warehouse.schema
    )
    try:
        cursor = db.cursor()
        cursor.execute("select table_name from information_schema.tables where table_schema = 'raw_data'")
        total = 0
        for (name,) in cursor.fetchall():
            cursor.execute(f'select count(*) from raw_data."{name}"')
            total += cursor.fetchone()[0]
        return total
    finally:
        db.close()


def cli(tmp_path: Path, variables: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(SELECTING)}
    env.update(variables, PIPELINE_DATA_DIR=str(tmp_path / "data"))
    return subprocess.run(
        [sys.executable, "-m", "ingestion", *args],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


def conn(world_connection: Callable[[World], Connection], **fields) -> Callable[[World], str]:
    """A case's connection: the world's with some fields changed, as JSON."""
    return lambda w: replace(world_connection(w), **fields).to_json()


SOURCE = "AIRFLOW_CONN_PIPELINE_SOURCE"
WAREHOUSE = "AIRFLOW_CONN_PIPELINE_WAREHOUSE"
AWS = "AIRFLOW_CONN_PIPELINE_AWS"
STAGE = "PIPELINE_STAGE_URI"


@dataclass(frozen=True)
class Case:
    expected: str  # a fragment of the error line
    env: dict[str, str | Callable[[World], str]] | None = None
    args: tuple[str, ...] = RUN
    config: str | None = None  # the text of the --config file


def case(name: str, expected: str, *, services: bool = False, **fields) -> pytest.param:
    marks = [pytest.mark.services] if services else []
    return pytest.param(Case(expected, **fields), services, id=name, marks=marks)


# The one table of bad inputs; README.md's "Troubleshooting" lists the same.
CASES = [
    # -- connections and environment settings
    case("malformed-connection-json", f"({SOURCE}): not valid JSON", env={SOURCE: "{"}),
    case("extra-not-json", f"({SOURCE}): extra is not valid JSON",
         env={SOURCE: '{"conn_type": "mysql", "extra": "{"}'}),
    case("unknown-source-conn-type", f"({SOURCE}): conn_type 'oracle' is not a supported source",
         env={SOURCE: '{"conn_type": "oracle", "host": "127.0.0.1"}'}),
    case("unknown-warehouse-conn-type", f"({WAREHOUSE}): conn_type 'oracle' is not a supported warehouse",
         env={WAREHOUSE: '{"conn_type": "oracle", "host": "127.0.0.1"}'}),
    case("port-not-a-number", f"({SOURCE}): port 'abc' is not a number from 1 to 65535",
         env={SOURCE: '{"conn_type": "mysql", "host": "127.0.0.1", "port": "abc"}'}),
    case("unknown-environment", "PIPELINE_ENV='staging' must be one of embedded, services, production",
         env={"PIPELINE_ENV": "staging"}, args=("run", "nps", *WINDOW)),
    case("stage-uri-not-s3-or-folder", "PIPELINE_STAGE_URI='ftp://stage': use a local folder or s3://bucket/prefix",
         env={STAGE: "ftp://stage"}),
    # -- the command line
    case("start-not-a-date", "--start '2026-13-45' is not a date or timestamp",
         args=("--env", "services", "run", "nps", "--start", "2026-13-45", "--end", "2026-10-31")),
    case("end-not-a-date", "--end 'tomorrow' is not a date or timestamp",
         args=("--env", "services", "run", "nps", "--start", "2026-10-30", "--end", "tomorrow")),
    case("start-not-before-end", "--start 2026-10-31 must be before --end 2026-10-30",
         args=("--env", "services", "run", "nps", "--start", "2026-10-31", "--end", "2026-10-30")),
    case("option-missing", "the following arguments are required: --end",
         args=("--env", "services", "run", "nps", "--start", "2026-10-30")),
    case("unknown-table", "table 'nosuch' is not in the table config; known: nps",
         args=("--env", "services", "run", "nosuch", *WINDOW)),
    # -- the table config (--config)
    case("config-file-missing", "does not exist", args=("--config", "/nonexistent/tables.yml", *RUN)),
    case("config-empty", "is empty; list the replicated tables under a top-level key 'tables'", config=""),
    case("config-not-yaml", "not valid YAML", config="tables: [\n"),
    case("config-unknown-key", "table 'nps': unknown key(s) lookbak", config=NPS + "    lookbak: 2h\n"),
    case("config-primary-key-missing", "table 'nps': primary_key missing",
         config=NPS.replace("    primary_key: id\n", "")),
    case("config-name-not-an-identifier", "name 'nps; drop table x' is not a plain identifier",
         config=NPS.replace("name: nps", "name: 'nps; drop table x'")),
    case("config-source-table-empty", "table 'nps': source_table '' must be a non-empty name",
         config=NPS + "    source_table: ''\n"),
    case("config-incremental-without-cursor", "table 'nps': mode incremental needs a cursor column",
         config=NPS.replace("    cursor: modified_at\n", "")),
    case("config-bad-lookback", "table 'nps': lookback '2 weeks' is not a duration like 30m, 2h or 1d",
         config=NPS + "    lookback: 2 weeks\n"),
    case("config-bad-mode", "table 'nps': mode 'append' must be one of incremental, full_refresh",
         config=NPS.replace("mode: incremental", "mode: append")),
    case("config-duplicate-table", "table 'nps': listed twice", config=NPS + NPS.removeprefix("tables:\n")),
    # -- services that do not answer, refuse, or lack something
    case("mysql-unreachable", "cannot connect to MySQL at 127.0.0.1:", services=True,
         env={SOURCE: lambda w: replace(w.source, port=closed_port()).to_json()}),
    case("mysql-wrong-password", "Access denied for user 'root'", services=True,
         env={SOURCE: conn(lambda w: w.source, password="wrong")}),
    case("mysql-database-missing", "MySQL database 'no_such_db' does not exist", services=True,
         env={SOURCE: conn(lambda w: w.source, schema="no_such_db")}),
    case("mysql-table-missing", "source table 'ghost' not found in MySQL database", services=True,
         config=NPS + "    source_table: ghost\n"),
    case("postgres-unreachable", "cannot connect to postgres at 127.0.0.1:", services=True,
         env={WAREHOUSE: lambda w: replace(w.warehouse, port=closed_port()).to_json()}),
    case("postgres-role-missing", 'role "no_such_role" does not exist; check login and password',
         services=True, env={WAREHOUSE: conn(lambda w: w.warehouse, login="no_such_role")}),
    case("postgres-database-missing", "`python -m ingestion init-warehouse`", services=True,
         env={WAREHOUSE: conn(lambda w: w.warehouse, schema="no_such_db")}),
    case("s3-unreachable", "cannot reach S3 at http://127.0.0.1:", services=True,
         env={AWS: lambda w: loopback_s3_connection(f"http://127.0.0.1:{closed_port()}").to_json()}),
    case("bucket-missing", "bucket 'no-such-bucket-4d2' does not exist: create it or fix PIPELINE_STAGE_URI",
         services=True, env={STAGE: "s3://no-such-bucket-4d2/stage"}),
    case("bucket-access-denied", "no permission on bucket 'denied-", services=True,
         env={STAGE: lambda w: f"s3://{w.denied_bucket()}/stage"}),
]  # fmt: skip


def run_case(request: pytest.FixtureRequest, tmp_path: Path, bad: Case, services: bool, *options: str):
    world = request.getfixturevalue("services_world") if services else unreachable_world()
    variables = world.variables()
    for key, value in (bad.env or {}).items():
        variables[key] = value(world) if callable(value) else value
    args = bad.args
    if bad.config is not None:
        (tmp_path / "tables.yml").write_text(bad.config)
        args = ("--config", str(tmp_path / "tables.yml"), *args)
    done = cli(tmp_path, variables, *options, *args)
    if services:
        assert raw_rows(world.warehouse) == 0
    return done


@pytest.mark.parametrize(("bad", "services"), CASES)
def test_bad_input_is_one_error_line_naming_the_setting(
    request: pytest.FixtureRequest, tmp_path: Path, bad: Case, services: bool
) -> None:
    done = run_case(request, tmp_path, bad, services)

    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert done.returncode == 2, done.stderr
    assert done.stdout == ""
    assert "Traceback" not in done.stderr
    assert [line for line in lines if line.startswith("error:")] == lines[-1:], done.stderr
    assert bad.expected in lines[-1]


def test_verbose_adds_the_traceback_above_the_same_error_line(request, tmp_path: Path) -> None:
    bad = Case(
        "--start '2026-13-45' is not a date or timestamp",
        args=("-v", "--env", "services", "run", "nps", "--start", "2026-13-45", "--end", "2026-10-31"),
    )

    done = run_case(request, tmp_path, bad, False)

    lines = done.stderr.splitlines()
    assert done.returncode == 2
    assert lines[0] == "Traceback (most recent call last):"
    assert lines[-1].startswith("error: ") and bad.expected in lines[-1]


@pytest.mark.services
def test_the_unbroken_world_loads(services_world: World, tmp_path: Path) -> None:
    """The services cases start from this world: only their one change makes them fail."""
    done = cli(tmp_path, services_world.variables(), *RUN)

    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["load"]["rows_inserted"] > 0
    assert raw_rows(services_world.warehouse) > 0
