"""Amazon Redshift: the PostgreSQL protocol, ``COPY`` of the manifest's Parquet files.

Redshift reads the stage itself (``COPY ... MANIFEST FORMAT AS PARQUET``) with
the IAM role in the connection's ``extra.iam_role``, never access keys.

The load logs in with the connection's login and password, or, with
``extra.iam``, with temporary ones the Amazon provider's ``RedshiftSQLHook``
asks AWS for (as the provider documents the Redshift connection): for a
provisioned cluster ``redshift:GetClusterCredentials`` as the connection's login
(the cluster is ``extra.cluster_identifier``, else the host's first label); for
Redshift Serverless (``extra.is_serverless``) ``redshift-serverless:GetCredentials``
for ``extra.serverless_work_group``. The AWS credentials for that call are the
AWS connection's (``pipeline_aws``, which the provider looks up by its id;
none defined: boto3's chain, e.g. the worker's role).
"""

from __future__ import annotations

import json
from typing import Any

from ingestion.aws import AWS_CONN_ID, import_airflow
from ingestion.config import TableConfig
from ingestion.connection import Connection
from ingestion.errors import LoadError, SchemaDriftError, first_line
from ingestion.warehouse import DEFAULT_PORTS
from ingestion.warehouse.base import StagedBatch
from ingestion.warehouse.postgres import PostgresWarehouse
from ingestion.warehouse.sql import add_column_sql, drop_column_sql, quote, target_table

MAX_VARCHAR = 65535
#: What ``profiles.yml``'s ``prod`` target reads for dbt-redshift's ``method: iam``.
DBT_VARIABLES = (
    "DBT_REDSHIFT_METHOD",
    "DBT_REDSHIFT_CLUSTER_ID",
    "DBT_REDSHIFT_IS_SERVERLESS",
    "DBT_REDSHIFT_SERVERLESS_WORK_GROUP",
    "DBT_REDSHIFT_REGION",
    "DBT_REDSHIFT_IAM_PROFILE",
)


def copy_sql(into: str, manifest_url: str, iam_role: str) -> str:
    """Redshift's bulk-load of one attempt: only the files its manifest lists."""
    manifest_url = manifest_url.replace("'", "''")
    iam_role = iam_role.replace("'", "''")
    return f"copy {into}\nfrom '{manifest_url}'\niam_role '{iam_role}'\nmanifest\nformat as parquet"


def is_set(value: Any) -> bool:
    """An ``extra`` flag: JSON ``true``, or ``true``/``1`` from a URI's query string."""
    return value is True or str(value).strip().lower() in ("true", "1")


def missing_iam_fields(connection: Connection, serverless: bool) -> str | None:
    """What ``extra.iam`` lacks to ask AWS for credentials, said as the fix; None: nothing."""
    extra = connection.extra or {}
    if serverless:
        if not extra.get("serverless_work_group"):
            return "extra.serverless_work_group, the Redshift Serverless workgroup (with extra.is_serverless)"
        return None
    if not connection.login:
        return "login, the database user to get temporary credentials for"
    if not extra.get("cluster_identifier") and not connection.host:
        return "extra.cluster_identifier or a host whose first label is the cluster's identifier"
    return None


def iam_login(connection: Connection) -> tuple[str, str, int]:
    """(user, password, port) for ``extra.iam``: temporary, from the provider's hook."""
    import_airflow()
    from airflow.providers.amazon.aws.hooks.redshift_sql import RedshiftSQLHook
    from airflow.providers.common.compat.sdk import AirflowException
    from botocore.exceptions import BotoCoreError, ClientError, ConnectTimeoutError, EndpointConnectionError

    extra = connection.extra or {}
    serverless = is_set(extra.get("is_serverless", False))
    missing = missing_iam_fields(connection, serverless)
    if missing:
        raise LoadError(f"warehouse {connection.label}: extra.iam needs {missing}", retryable=False)
    # The provider reads the flag as truthy: hand it the boolean we read.
    airflow_connection = connection.to_airflow()
    airflow_connection.extra = json.dumps({**extra, "is_serverless": serverless})
    hook = RedshiftSQLHook(redshift_conn_id=connection.conn_id, aws_conn_id=AWS_CONN_ID)
    try:
        return hook.get_iam_token(airflow_connection)
    except (AirflowException, BotoCoreError, ClientError) as exc:
        what = "redshift-serverless:GetCredentials" if serverless else "redshift:GetClusterCredentials"
        raise LoadError(
            f"warehouse {connection.label}: IAM authentication ({what}) failed: {first_line(exc)}; "
            "check extra.cluster_identifier (or the host), extra.serverless_work_group and the "
            f"permissions of the AWS connection {AWS_CONN_ID!r}",
            retryable=isinstance(exc, EndpointConnectionError | ConnectTimeoutError),
        ) from None


class RedshiftWarehouse(PostgresWarehouse):
    dialect = "redshift"
    default_port = DEFAULT_PORTS["redshift"]
    loads_into_target = False  # its COPY of Parquet cannot fill _loaded_at
    binary_type = "varbyte(65535)"
    default_sslmode = "require"

    def connect_params(self) -> dict[str, Any]:
        """The connection's fields; with ``extra.iam``, a temporary user and password."""
        params = super().connect_params()
        if not is_set((self.connection.extra or {}).get("iam", False)):
            return params
        user, password, port = iam_login(self.connection)
        return {**params, "user": user, "password": password, "port": port}

    def dbt_variables(self, aws: Connection | None) -> dict[str, str]:
        """``extra.iam`` as dbt-redshift's ``method: iam``: the cluster (as the load finds
        it) or the serverless workgroup; the region and profile of ``extra.region`` and
        ``extra.profile``, else of the AWS connection. Without ``extra.iam``: nothing
        (``profiles.yml`` defaults to the login and password)."""
        extra = self.connection.extra or {}
        if not is_set(extra.get("iam", False)):
            return {}
        serverless = is_set(extra.get("is_serverless", False))
        aws_extra = (aws.extra or {}) if aws is not None else {}
        host_label = (self.connection.host or "").split(".", 1)[0]
        values = {
            "DBT_REDSHIFT_METHOD": "iam",
            "DBT_REDSHIFT_CLUSTER_ID": None if serverless else extra.get("cluster_identifier") or host_label,
            "DBT_REDSHIFT_IS_SERVERLESS": "true" if serverless else "false",
            "DBT_REDSHIFT_SERVERLESS_WORK_GROUP": extra.get("serverless_work_group") if serverless else None,
            "DBT_REDSHIFT_REGION": extra.get("region") or aws_extra.get("region_name"),
            "DBT_REDSHIFT_IAM_PROFILE": extra.get("profile") or aws_extra.get("profile_name"),
        }
        return {key: str(value) for key, value in values.items() if value}

    def create_database(self) -> str:
        raise LoadError("init-warehouse does not create Redshift databases; create it in the console")

    def text_type(self, char_length: int | None) -> str:
        """VARCHAR counts bytes on Redshift: four per utf8mb4 character, at most 65535."""
        return f"varchar({min(4 * char_length, MAX_VARCHAR) if char_length else MAX_VARCHAR})"

    def normalize_type(
        self, data_type: str, length: int | None, precision: int | None, scale: int | None
    ) -> str:
        if data_type.lower() == "binary varying":
            return f"varbyte({length or MAX_VARCHAR})"
        return super().normalize_type(data_type, length, precision, scale)

    def widen_column_sql(self, raw_schema: str, table: TableConfig, column: str, new_type: str) -> list[str]:
        """Redshift alters a column's type only for VARCHAR, and not inside a transaction
        block, so every widening copies the column: add the wider column, copy the values,
        drop the old column, rename the new one (all in the load's transaction; the column
        moves to the end of the table, and every statement of the load names its columns).
        The distribution and sort key columns cannot be dropped: those need a rebuild."""
        if column in self.key_columns(table):
            raise SchemaDriftError(
                f"column {column!r} is a distkey/sortkey of {target_table(raw_schema, table)}: "
                "Redshift cannot widen it in place"
            )
        target = target_table(raw_schema, table)
        wider = f"{column}__widened"
        return [
            add_column_sql(target, wider, new_type),
            f"update {target} set {quote(wider)} = {quote(column)}",
            drop_column_sql(target, column),
            f"alter table {target} rename column {quote(wider)} to {quote(column)}",
        ]

    @staticmethod
    def key_columns(table: TableConfig) -> set[str]:
        """The columns ``table_options`` makes the distkey and the sortkey."""
        return {table.primary_key[0], table.cursor or table.primary_key[0]}

    def table_options(self, table: TableConfig) -> str:
        sortkey = table.cursor or table.primary_key[0]
        return f"\ndistkey ({quote(table.primary_key[0])})\nsortkey ({quote(sortkey)})"

    def lock(self, cursor: Any, raw_schema: str, table: TableConfig) -> None:
        cursor.execute(f"lock {target_table(raw_schema, table)}")

    def prepare_merge(self, cursor: Any, raw_schema: str, table: TableConfig, batch_rows: int) -> None:
        """Nothing: Redshift has no indexes (the sort and distribution keys do their work)."""

    def finish_merge(self, cursor: Any, raw_schema: str, table: TableConfig) -> None:
        """Nothing (no indexes)."""

    def lock_ddl(self, cursor: Any) -> None:
        """Redshift has no advisory locks; its catalog serialises the creates."""

    @property
    def iam_role(self) -> str:
        role = (self.connection.extra or {}).get("iam_role")
        if not role:
            raise LoadError(
                f"connection {self.connection.conn_id!r}: set extra.iam_role to the ARN of the "
                "IAM role Redshift assumes to read the stage (COPY ... IAM_ROLE)",
                retryable=False,
            )
        return role

    def bulk_load(self, cursor: Any, into: str, batch: StagedBatch) -> int:
        """COPY reads the files itself, constant columns included."""
        cursor.execute(copy_sql(into, batch.manifest.url, self.iam_role))
        return int(self.scalar(cursor, f"select count(*) from {into}"))
