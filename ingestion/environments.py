"""Environments: one setting picks the world, the code stays the same.

``PIPELINE_ENV`` selects the environment (``embedded`` by default):

| environment | source            | stage                      | warehouse           | dbt target |
|-------------|-------------------|----------------------------|---------------------|------------|
| embedded    | SQLite file       | local folder               | DuckDB file         | dev        |
| services    | MySQL (loopback)  | S3 API server (loopback)   | PostgreSQL          | ci         |
| production  | MySQL             | Amazon S3                  | Amazon Redshift     | prod       |

Credentials are defined once per environment as Airflow connections in the
environment (``AIRFLOW_CONN_PIPELINE_SOURCE``, ``AIRFLOW_CONN_PIPELINE_WAREHOUSE``,
``AIRFLOW_CONN_PIPELINE_AWS``, JSON form). Airflow reads them natively, dbt's
``profiles.yml`` reads the warehouse one with ``env_var()``, and the CLI parses
them here. The embedded and services environments have loopback defaults with
no secrets; production has none and says which variable is missing.
The warehouse dialect is the warehouse connection's ``conn_type``.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ingestion.aws import AWS_CONN_ID
from ingestion.connection import Connection
from ingestion.errors import ConfigError
from ingestion.warehouse import dialect_of, open_warehouse

REPO_ROOT = Path(__file__).resolve().parent.parent
ENVIRONMENTS = ("embedded", "services", "production")
DBT_TARGETS = {"embedded": "dev", "services": "ci", "production": "prod"}
CONN_IDS = {
    "source": "pipeline_source",
    "warehouse": "pipeline_warehouse",
    "aws": AWS_CONN_ID,
}

SERVICES_S3_PORT = 5555


@dataclass(frozen=True)
class Environment:
    name: str
    source: Connection
    warehouse: Connection
    stage_uri: str
    aws: Connection | None
    data_dir: Path

    @property
    def dbt_target(self) -> str:
        return DBT_TARGETS[self.name]

    @property
    def dialect(self) -> str:
        return warehouse_dialect(self.warehouse)

    def variables(self) -> dict[str, str]:
        """Environment variables that define this environment for Airflow and dbt."""
        variables = {
            "PIPELINE_ENV": self.name,
            "PIPELINE_STAGE_URI": self.stage_uri,
            "DBT_TARGET": self.dbt_target,
            "AIRFLOW_CONN_PIPELINE_SOURCE": self.source.to_json(),
            "AIRFLOW_CONN_PIPELINE_WAREHOUSE": self.warehouse.to_json(),
        }
        if self.aws is not None:
            variables["AIRFLOW_CONN_PIPELINE_AWS"] = self.aws.to_json()
        return {**variables, **self.dbt_variables()}

    def dbt_variables(self) -> dict[str, str]:
        """The dbt target's settings derived from the warehouse connection (no secret),
        e.g. ``DBT_REDSHIFT_METHOD=iam`` for a Redshift connection with ``extra.iam``."""
        return open_warehouse(self.warehouse).dbt_variables(self.aws)


def dbt_variables_of(env: dict[str, str]) -> dict[str, str]:
    """``Environment.dbt_variables`` from the warehouse (and AWS) connection variables
    alone, for dbt where the rest of an environment is not set; empty without them."""
    variables = {key: f"AIRFLOW_CONN_{conn_id.upper()}" for key, conn_id in CONN_IDS.items()}
    if not env.get(variables["warehouse"]):
        return {}
    warehouse = Connection.parse(CONN_IDS["warehouse"], env[variables["warehouse"]])
    aws = Connection.parse(AWS_CONN_ID, env[variables["aws"]]) if env.get(variables["aws"]) else None
    return open_warehouse(warehouse).dbt_variables(aws)


def warehouse_dialect(connection: Connection) -> str:
    """The warehouse dialect is the connection's type."""
    return dialect_of(connection)


def environment_name(env: dict[str, str] | None = None) -> str:
    env = os.environ if env is None else env
    name = env.get("PIPELINE_ENV", "embedded").strip() or "embedded"
    if name not in ENVIRONMENTS:
        raise ConfigError(f"PIPELINE_ENV={name!r} must be one of {', '.join(ENVIRONMENTS)}")
    return name


def default_connections(name: str, data_dir: Path) -> dict[str, Connection]:
    """Loopback defaults of the embedded and services environments (no secrets)."""
    if name == "embedded":
        return {
            "source": Connection("pipeline_source", "sqlite", host=str(data_dir / "source.sqlite")),
            "warehouse": Connection("pipeline_warehouse", "duckdb", host=str(data_dir / "warehouse.duckdb")),
        }
    if name == "services":
        return {
            "source": Connection(
                "pipeline_source", "mysql", host="127.0.0.1", port=3306, login="root",
                schema="pipeline_oltp",
            ),
            "warehouse": Connection(
                "pipeline_warehouse", "postgres", host="127.0.0.1", port=5432, login="root",
                schema="pipeline_warehouse",
            ),
            "aws": loopback_s3_connection(f"http://127.0.0.1:{SERVICES_S3_PORT}"),
        }  # fmt: skip
    return {}


def loopback_s3_connection(endpoint_url: str, conn_id: str = "pipeline_aws") -> Connection:
    """The AWS connection to the project's loopback S3 server (moto's fixed test keys).

    ``request_checksum_calculation: when_required`` (botocore's setting, which Airflow
    takes from ``extra.config_kwargs``) makes uploads plain bodies instead of
    ``aws-chunked`` ones with a checksum trailer: the loopback server decodes those in
    Python at half the speed. Amazon S3 itself keeps the default (checksums on).
    """
    return Connection(
        conn_id, "aws", login="testing", password="testing",  # noqa: S106
        extra={
            "endpoint_url": endpoint_url,
            "region_name": "us-east-1",
            "config_kwargs": {"request_checksum_calculation": "when_required"},
        },
    )  # fmt: skip


def default_stage_uri(name: str, data_dir: Path) -> str | None:
    if name == "embedded":
        return str(data_dir / "stage")
    if name == "services":
        return "s3://pipeline-stage/stage"
    return None


def resolve(
    name: str | None = None,
    env: dict[str, str] | None = None,
    lookup: Callable[[str], Connection | None] | None = None,
) -> Environment:
    """Build the selected environment.

    Each connection comes from its ``AIRFLOW_CONN_*`` variable, else from
    ``lookup`` (Airflow's connection store, secrets backends included, when
    running as a task), else from the environment's loopback default.
    """
    env = dict(os.environ if env is None else env)
    name = name or environment_name(env)
    data_dir = Path(env.get("PIPELINE_DATA_DIR") or REPO_ROOT / ".data" / name).resolve()
    defaults = default_connections(name, data_dir)
    connections: dict[str, Connection | None] = {}
    for role, conn_id in CONN_IDS.items():
        variable = f"AIRFLOW_CONN_{conn_id.upper()}"
        found = lookup(conn_id) if lookup and not env.get(variable) else None
        if env.get(variable):
            connections[role] = Connection.parse(conn_id, env[variable])
        elif found is not None:
            connections[role] = found
        else:
            connections[role] = defaults.get(role)
    stage_uri = env.get("PIPELINE_STAGE_URI") or default_stage_uri(name, data_dir)
    missing = [
        f"AIRFLOW_CONN_{CONN_IDS[role].upper()}"
        for role in ("source", "warehouse")
        if connections[role] is None
    ]
    if stage_uri is None:
        missing.append("PIPELINE_STAGE_URI")
    source, warehouse = connections["source"], connections["warehouse"]
    if source is None or warehouse is None or stage_uri is None:
        raise ConfigError(f"environment {name!r}: set {', '.join(missing)}")
    environment = Environment(
        name=name,
        source=source,
        warehouse=warehouse,
        stage_uri=stage_uri,
        aws=connections["aws"],
        data_dir=data_dir,
    )
    warehouse_dialect(environment.warehouse)
    return environment
