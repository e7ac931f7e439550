"""The AWS connection through the Amazon provider: an assumed role's temporary
credentials carry a real extract and load, on an S3 server that checks them.

The loopback S3 server (moto) runs here with its IAM checks on: a user who may
only assume a role, a role that may use S3. Only the role's credentials, which
the provider gets from the server's STS, can write the stage; the user's own keys
are refused. Expected rows are counted in the SQLite source with ``sqlite3`` and
in PostgreSQL with ``psycopg2``; identities are asked of the server's STS.
"""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, replace

import boto3
import psycopg2
import pytest

from ingestion.environments import Connection, Environment
from ingestion.errors import StageError
from ingestion.pipeline import environment_stage, run_table
from tests.embedded_helpers import interval

pytestmark = pytest.mark.services

ACCOUNT = "123456789012"  # moto's account
USER = "pipeline-loader"
ROLE = "pipeline-stage-writer"
MOTO_KEYS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}  # moto's dummy pair


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass(frozen=True)
class IamS3:
    endpoint: str
    key: str
    secret: str
    role_arn: str
    bucket: str

    def connection(self, **extra: object) -> Connection:
        """The user's keys; with ``role_arn`` (and STS at this server) the provider assumes it."""
        return Connection(
            "pipeline_aws", "aws", login=self.key, password=self.secret,
            extra={
                "endpoint_url": self.endpoint,
                "region_name": "us-east-1",
                "config_kwargs": {"request_checksum_calculation": "when_required"},
                **extra,
            },
        )  # fmt: skip

    def role_connection(self, **extra: object) -> Connection:
        return self.connection(
            role_arn=self.role_arn, service_config={"sts": {"endpoint_url": self.endpoint}}, **extra
        )

    def caller(self, credentials: object) -> str:
        """Who the server's STS says these (botocore ``ReadOnlyCredentials``) are."""
        sts = boto3.client(
            "sts", endpoint_url=self.endpoint, region_name="us-east-1",
            aws_access_key_id=credentials.access_key, aws_secret_access_key=credentials.secret_key,
            aws_session_token=credentials.token,
        )  # fmt: skip
        return sts.get_caller_identity()["Arn"]


@pytest.fixture(scope="module")
def iam_s3() -> Iterator[IamS3]:
    """A loopback S3 server of its own (its IAM checks on would refuse the other tests' keys)."""
    from devtools.s3_server import running_s3_server

    try:
        server = running_s3_server(free_port())
        endpoint = server.__enter__()
    except (RuntimeError, OSError) as exc:
        pytest.fail(f"the S3 server cannot be started: {exc}")
    try:
        client = {"endpoint_url": endpoint, "region_name": "us-east-1", **MOTO_KEYS}
        iam = boto3.client("iam", **client)
        iam.create_user(UserName=USER)
        key = iam.create_access_key(UserName=USER)["AccessKey"]
        trust = {"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:user/{USER}"}}
        role = iam.create_role(
            RoleName=ROLE,
            AssumeRolePolicyDocument=policy({**trust, "Action": "sts:AssumeRole"}),
        )["Role"]
        iam.put_role_policy(
            RoleName=ROLE, PolicyName="stage",
            PolicyDocument=policy({"Effect": "Allow", "Action": "s3:*", "Resource": "*"}),
        )  # fmt: skip
        iam.put_user_policy(
            UserName=USER, PolicyName="assume-only",
            PolicyDocument=policy({"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": "*"}),
        )  # fmt: skip
        bucket = "pipeline-stage-iam"
        boto3.client("s3", **client).create_bucket(Bucket=bucket)
        # From now on every request must be signed by a known identity and allowed by its policies.
        reset = urllib.request.Request(  # noqa: S310 - the loopback server
            f"{endpoint}/moto-api/reset-auth",
            data=b"0",
            method="POST",
            headers={"Content-Type": "text/plain"},
        )
        urllib.request.urlopen(reset, timeout=10).close()  # noqa: S310 - the loopback server
        yield IamS3(endpoint, key["AccessKeyId"], key["SecretAccessKey"], role["Arn"], bucket)
    finally:
        server.__exit__(None, None, None)


def policy(statement: dict) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": [statement]})


def source_count(environment: Environment, table: str) -> int:
    db = sqlite3.connect(environment.source.host)
    try:
        return db.execute(f'select count(*) from "{table}"').fetchone()[0]
    finally:
        db.close()


def raw_count(warehouse: Connection, table: str) -> int:
    db = psycopg2.connect(
        host=warehouse.host, port=warehouse.port, user=warehouse.login, dbname=warehouse.schema
    )
    try:
        cursor = db.cursor()
        cursor.execute(f'select count(*) from raw_data."{table}"')
        return cursor.fetchone()[0]
    finally:
        db.close()


@pytest.fixture
def role_world(source: Environment, pg_warehouse: Connection, iam_s3: IamS3, tmp_path) -> Environment:
    """SQLite demo data → the IAM-checking S3 server (as the role) → PostgreSQL."""
    return Environment(
        name="services", source=source.source, warehouse=pg_warehouse,
        stage_uri=f"s3://{iam_s3.bucket}/stage/{tmp_path.name}", aws=iam_s3.role_connection(),
        data_dir=tmp_path,
    )  # fmt: skip


def test_the_users_own_keys_cannot_write_the_stage(role_world: Environment, iam_s3: IamS3, tables) -> None:
    """The control: the server refuses the keys the role is assumed with."""
    without_role = replace(role_world, aws=iam_s3.connection())

    with pytest.raises(StageError, match=f"no permission on bucket '{iam_s3.bucket}'"):
        run_table(tables["user_session_channel"], interval(0), without_role)


def test_an_assumed_roles_credentials_carry_the_extract_and_the_load(
    role_world: Environment, iam_s3: IamS3, tables
) -> None:
    extracted, loaded = run_table(tables["user_session_channel"], interval(0), role_world)

    expected = source_count(role_world, "user_session_channel")
    assert expected == 300
    assert (extracted.rows, loaded.rows_staged) == (expected, expected)
    assert raw_count(role_world.warehouse, "user_session_channel") == expected
    credentials = environment_stage(role_world).access.credentials()
    assert credentials.access_key != iam_s3.key
    assert credentials.token
    assert iam_s3.caller(credentials).startswith(f"arn:aws:sts::{ACCOUNT}:assumed-role/{ROLE}/")


def test_credentials_near_expiry_are_refreshed_and_the_stage_keeps_working(
    role_world: Environment, iam_s3: IamS3, tables
) -> None:
    """A role assumed for 15 minutes is inside botocore's refresh margin from the start:
    each open gets newly assumed credentials, and a filesystem that carries them."""
    short = replace(role_world, aws=iam_s3.role_connection(assume_role_kwargs={"DurationSeconds": 900}))
    stage = environment_stage(short)

    first, first_credentials = stage.filesystem, stage.access.frozen
    extracted, loaded = run_table(tables["nps"], interval(0), short)
    second, second_credentials = stage.filesystem, stage.access.frozen

    assert first is not second
    assert first_credentials.access_key != second_credentials.access_key
    for credentials in (first_credentials, second_credentials):
        assert iam_s3.caller(credentials).startswith(f"arn:aws:sts::{ACCOUNT}:assumed-role/{ROLE}/")
    assert (
        stage.read_manifest(extracted.manifest_url).record_count == extracted.rows == loaded.rows_staged > 0
    )


def test_the_cli_assumes_the_role_without_an_airflow_database(
    source: Environment, iam_s3: IamS3, tmp_path
) -> None:
    stage_uri = f"s3://{iam_s3.bucket}/cli/{tmp_path.name}"
    env = {
        **os.environ,
        "AIRFLOW_HOME": str(tmp_path / "airflow"),  # empty: no metadata database
        "PIPELINE_DATA_DIR": str(source.data_dir),
        "PIPELINE_STAGE_URI": stage_uri,
        "AIRFLOW_CONN_PIPELINE_AWS": iam_s3.role_connection().to_json(),
    }
    window = interval(0)
    done = subprocess.run(
        [sys.executable, "-m", "ingestion", "--env", "embedded", "extract", "user_session_channel",
         "--start", window.start.isoformat(), "--end", window.end.isoformat()],
        env=env, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip

    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout)
    assert result["rows"] == source_count(source, "user_session_channel")
    assert result["manifest_url"].startswith(stage_uri + "/")
    assert not (tmp_path / "airflow" / "airflow.db").exists()
