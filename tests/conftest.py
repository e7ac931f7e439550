"""Shared fixtures of every test under ``tests/``.

* ``embedded``: an embedded environment in its own folder; ``source``: the same with three
  days of demo data in its SQLite source; ``tables``: the real table config.
* The services: throwaway MariaDB (``mysql_db``) and PostgreSQL (``pg_warehouse``)
  databases and the loopback S3 server (``s3_endpoint``, ``s3_bucket``, ``s3_connection``).
  MariaDB is found through ``MYSQL_HOST``/``MYSQL_PORT``/``MYSQL_USER``/``MYSQL_PASSWORD``
  (default ``127.0.0.1:3306``, ``root``, no password), PostgreSQL through ``PGHOST``/
  ``PGPORT``/``PGUSER`` (default ``127.0.0.1:5432``, ``root``). A test that uses one of
  them is marked ``services``; when a service cannot be reached the test is skipped on a
  laptop but fails when ``CI=true``: CI must run them.
"""

from __future__ import annotations

import os
import secrets
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg2
import pytest

from devtools import generate
from ingestion import config, environments
from ingestion.environments import Connection, loopback_s3_connection
from tests.embedded_helpers import SPEC

REPO_ROOT = Path(__file__).resolve().parent.parent

# Airflow reads its settings when first imported: point it at a throwaway home.
os.environ.setdefault("AIRFLOW_HOME", tempfile.mkdtemp(prefix="pipeline-tests-airflow-"))
os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
os.environ.setdefault("AIRFLOW__COSMOS__ENABLE_TELEMETRY", "False")
os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("SCARF_NO_ANALYTICS", "true")
os.environ.setdefault("DBT_SEND_ANONYMOUS_USAGE_STATS", "False")


@pytest.fixture(autouse=True)
def restore_environment() -> Iterator[None]:
    """Every test leaves ``os.environ`` as it found it: code under test sets variables in
    its own process on purpose (the dbt tasks hand dbt the warehouse that way), and one
    test's variables must not reach the next test's subprocesses on the same worker."""
    saved = dict(os.environ)
    yield
    if os.environ != saved:
        os.environ.clear()
        os.environ.update(saved)


@pytest.fixture
def embedded(tmp_path: Path) -> Iterator[environments.Environment]:
    """SQLite source, local stage and DuckDB warehouse, all under a fresh folder; dropped after."""
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    yield environments.resolve("embedded", env={"PIPELINE_DATA_DIR": str(data_dir)})
    shutil.rmtree(data_dir, ignore_errors=True)


@pytest.fixture(scope="session")
def tables() -> dict[str, config.TableConfig]:
    """The replicated tables of the real ``config/tables.yml``."""
    return config.load_tables()


@pytest.fixture
def source(embedded: environments.Environment) -> environments.Environment:
    """The embedded environment with three days of demo data in its SQLite source."""
    counts = generate.generate(embedded.source, SPEC, 3)
    assert counts == {"nps": 30, "session_timestamp": 300, "user_session_channel": 300}
    return embedded


# ------------------------------------------------------------------ services

SERVICE_FIXTURES = frozenset({"mysql_server", "pg_server", "s3_endpoint"})


@pytest.hookimpl(tryfirst=True)  # before -m selects by marker
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """A test that needs MariaDB, PostgreSQL or the S3 server is a ``services`` test,
    wherever it lives (``-m "not services"`` leaves it out)."""
    for item in items:
        if SERVICE_FIXTURES.intersection(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.services)


def unavailable(reason: str) -> None:
    if os.environ.get("CI", "").strip().lower() == "true":
        pytest.fail(f"{reason} (CI=true: the integration services are required)")
    pytest.skip(reason)


def mysql_settings() -> dict[str, Any]:
    return {
        "host": os.environ.get("MYSQL_HOST", "127.0.0.1"),
        "port": int(os.environ.get("MYSQL_PORT", "3306")),
        "user": os.environ.get("MYSQL_USER", "root"),
        "password": os.environ.get("MYSQL_PASSWORD", ""),
    }


@pytest.fixture(scope="session")
def mysql_server() -> dict[str, Any]:
    """Connection settings of a MariaDB/MySQL server that answers (else skip, or fail in CI)."""
    import MySQLdb

    settings = mysql_settings()
    try:
        MySQLdb.connect(**settings, connect_timeout=5).close()
    except MySQLdb.Error as exc:
        unavailable(f"MariaDB at {settings['host']}:{settings['port']} unreachable: {exc}")
    return settings


@dataclass
class MySQLDatabase:
    """A uniquely named database, dropped after the test."""

    name: str
    settings: dict[str, Any]
    admin: Any  # a MySQLdb connection (autocommit) for setting up data

    def execute(self, sql: str, params: Any = None) -> None:
        with self.admin.cursor() as cursor:
            cursor.execute(sql, params)

    def executemany(self, sql: str, rows: list) -> None:
        with self.admin.cursor() as cursor:
            cursor.executemany(sql, rows)

    def connect(self) -> Any:
        """Another autocommit connection to this database (e.g. a concurrent writer)."""
        import MySQLdb

        conn = MySQLdb.connect(**self.settings, database=self.name, charset="utf8mb4")
        conn.autocommit(True)
        return conn

    @property
    def connection(self) -> Connection:
        """The pipeline's source connection to this database."""
        return Connection(
            "pipeline_source",
            "mysql",
            host=self.settings["host"],
            port=self.settings["port"],
            login=self.settings["user"],
            password=self.settings["password"] or None,
            schema=self.name,
        )


@pytest.fixture
def mysql_db(mysql_server: dict[str, Any]) -> Iterator[MySQLDatabase]:
    import MySQLdb

    name = f"it_{os.getpid()}_{secrets.token_hex(4)}"
    admin = MySQLdb.connect(**mysql_server, charset="utf8mb4")
    admin.autocommit(True)
    with admin.cursor() as cursor:
        cursor.execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci")
        cursor.execute(f"USE `{name}`")
    try:
        yield MySQLDatabase(name=name, settings=mysql_server, admin=admin)
    finally:
        with admin.cursor() as cursor:
            cursor.execute(f"DROP DATABASE IF EXISTS `{name}`")
        admin.close()


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """Endpoint URL of the loopback S3 server (``S3_PORT``, default 5555), started if needed.

    Under pytest-xdist each worker has its own server (``S3_PORT`` + the worker's
    number): a server one worker started stops when that worker ends."""
    from devtools.s3_server import running_s3_server

    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
    port = int(os.environ.get("S3_PORT", "5555")) + int(worker.removeprefix("gw") or 0)
    server = running_s3_server(port)
    try:
        url = server.__enter__()
    except (RuntimeError, OSError) as exc:
        unavailable(f"S3 server on 127.0.0.1:{port} cannot be started: {exc}")
    try:
        yield url
    finally:
        server.__exit__(None, None, None)


@pytest.fixture
def s3_bucket(s3_endpoint: str) -> str:
    """A fresh bucket on the S3 server."""
    from devtools.s3_server import ensure_bucket

    bucket = f"it-{secrets.token_hex(6)}"
    ensure_bucket(s3_endpoint, bucket)
    return bucket


@pytest.fixture
def services(mysql_db, pg_warehouse, s3_bucket, s3_connection, tmp_path: Path) -> environments.Environment:
    """MariaDB source (a fresh database), S3 stage (a fresh bucket), PostgreSQL warehouse."""
    return environments.Environment(
        name="services", source=mysql_db.connection, warehouse=pg_warehouse,
        stage_uri=f"s3://{s3_bucket}/stage", aws=s3_connection, data_dir=tmp_path,
    )  # fmt: skip


@pytest.fixture
def s3_connection(s3_endpoint: str) -> Connection:
    """The pipeline's AWS connection to the S3 server."""
    return loopback_s3_connection(s3_endpoint)


@pytest.fixture(scope="session")
def pg_server() -> dict:
    settings = {
        "host": os.environ.get("PGHOST", "127.0.0.1"),
        "port": int(os.environ.get("PGPORT", "5432")),
        "user": os.environ.get("PGUSER", "root"),
    }
    try:
        psycopg2.connect(dbname="postgres", connect_timeout=5, **settings).close()
    except psycopg2.Error as exc:
        unavailable(f"PostgreSQL at {settings['host']}:{settings['port']} unreachable: {exc}")
    return settings


@pytest.fixture
def pg_warehouse(pg_server: dict) -> Iterator[Connection]:
    """A uniquely named PostgreSQL database, dropped after the test."""
    name = f"it_{os.getpid()}_{secrets.token_hex(4)}"
    admin = psycopg2.connect(dbname="postgres", **pg_server)
    admin.autocommit = True
    admin.cursor().execute(f'create database "{name}"')
    try:
        yield Connection(
            "pipeline_warehouse", "postgres", host=pg_server["host"], port=pg_server["port"],
            login=pg_server["user"], schema=name,
        )  # fmt: skip
    finally:
        admin.cursor().execute(f'drop database if exists "{name}" with (force)')
        admin.close()
