"""Redshift IAM authentication (``extra.iam``): the connection parameters the load
builds from the temporary credentials the Amazon provider's ``RedshiftSQLHook``
gets from ``redshift:GetClusterCredentials``.

No Redshift is reached: the loopback moto server (``s3_endpoint``, so these are
``services`` tests) implements the Redshift API. The test creates a cluster there
with boto3, and the expected user and password are asked of the same server with
boto3, with moto's random generator seeded to the same value before each of the
two calls (a password is a random string).
"""

from __future__ import annotations

import json
import urllib.request
from dataclasses import dataclass

import boto3
import pytest

from ingestion.connection import Connection
from ingestion.errors import LoadError
from ingestion.warehouse.redshift import RedshiftWarehouse

MOTO_KEYS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}  # moto's dummy pair
REGION = "us-east-1"
SEED = 20261030


@dataclass(frozen=True)
class Cluster:
    endpoint: str
    identifier: str
    host: str
    port: int

    def client(self):
        return boto3.client("redshift", endpoint_url=self.endpoint, region_name=REGION, **MOTO_KEYS)

    def seed(self) -> None:
        """Seed moto's random generator: the next password it makes is known."""
        request = urllib.request.Request(  # noqa: S310 - the loopback server
            f"{self.endpoint}/moto-api/seed?a={SEED}", data=b"", method="POST"
        )
        urllib.request.urlopen(request, timeout=10).close()  # noqa: S310 - the loopback server

    def expected_credentials(self, db_user: str, db_name: str) -> tuple[str, str]:
        """(user, password) the server gives for ``db_user`` after the same seed."""
        self.seed()
        answer = self.client().get_cluster_credentials(
            DbUser=db_user, DbName=db_name, ClusterIdentifier=self.identifier, AutoCreate=False
        )
        return answer["DbUser"], answer["DbPassword"]


@pytest.fixture
def cluster(s3_endpoint: str, monkeypatch, request) -> Cluster:
    """A provisioned cluster on the loopback server, and ``pipeline_aws`` pointing there
    (the provider's hook looks the AWS connection up by its id)."""
    identifier = f"pipeline-iam-{request.node.name.replace('_', '-')[:40]}".rstrip("-").lower()
    client = boto3.client("redshift", endpoint_url=s3_endpoint, region_name=REGION, **MOTO_KEYS)
    created = client.create_cluster(
        ClusterIdentifier=identifier, NodeType="ra3.xlplus", MasterUsername="admin",
        MasterUserPassword="Admin-pass-1", DBName="analytics", Port=5440,
    )["Cluster"]  # fmt: skip
    aws = {"conn_type": "aws", **dict(zip(("login", "password"), MOTO_KEYS.values(), strict=True))}
    aws["extra"] = {"endpoint_url": s3_endpoint, "region_name": REGION}
    monkeypatch.setenv("AIRFLOW_CONN_PIPELINE_AWS", json.dumps(aws))
    yield Cluster(s3_endpoint, identifier, created["Endpoint"]["Address"], created["Endpoint"]["Port"])
    client.delete_cluster(ClusterIdentifier=identifier, SkipFinalClusterSnapshot=True)


def warehouse(**fields) -> RedshiftWarehouse:
    extra = {"iam_role": "arn:aws:iam::123456789012:role/redshift-copy", **fields.pop("extra", {})}
    return RedshiftWarehouse(Connection("pipeline_warehouse", "redshift", extra=extra, **fields))


def test_iam_connects_as_the_temporary_user_of_the_cluster_named_by_the_host(cluster: Cluster) -> None:
    redshift = warehouse(
        host=cluster.host, port=cluster.port, login="loader", schema="analytics", extra={"iam": True}
    )

    cluster.seed()
    params = redshift.connect_params()

    user, password = cluster.expected_credentials("loader", "analytics")
    assert user == "IAM:loader"
    assert len(password) == 32
    expected = {"host": cluster.host, "port": 5440, "dbname": "analytics", "user": user, "password": password}
    assert {key: params[key] for key in expected} == expected
    assert params["sslmode"] == "require"


def test_iam_cluster_identifier_in_extra_wins_over_the_host_and_port_defaults_to_5439(
    cluster: Cluster,
) -> None:
    """A host that is not the cluster's endpoint (a proxy, a VPC endpoint) and a URI's
    ``"true"``: the cluster is the one ``extra.cluster_identifier`` names."""
    redshift = warehouse(
        host="redshift-proxy.internal", login="dbt_runner", schema="analytics",
        extra={"iam": "true", "cluster_identifier": cluster.identifier},
    )  # fmt: skip

    cluster.seed()
    params = redshift.connect_params()

    user, password = cluster.expected_credentials("dbt_runner", "analytics")
    expected = {
        "host": "redshift-proxy.internal", "port": 5439, "dbname": "analytics",
        "user": user, "password": password,
    }  # fmt: skip
    assert {key: params[key] for key in expected} == expected


def test_without_iam_the_connections_own_login_and_password_are_used(cluster: Cluster) -> None:
    redshift = warehouse(
        host=cluster.host, port=5439, login="loader", password="own-pass", schema="analytics"
    )

    params = redshift.connect_params()

    assert (params["user"], params["password"], params["port"]) == ("loader", "own-pass", 5439)


def test_iam_for_a_cluster_aws_does_not_know_fails_naming_the_call_and_the_setting(
    cluster: Cluster,
) -> None:
    redshift = warehouse(
        host=cluster.host, login="loader", schema="analytics",
        extra={"iam": True, "cluster_identifier": "no-such-cluster"},
    )  # fmt: skip

    with pytest.raises(LoadError, match=r"redshift:GetClusterCredentials\) failed: .*no-such-cluster") as err:
        redshift.connect_params()

    assert "extra.cluster_identifier" in str(err.value)
    assert not err.value.retryable


@pytest.mark.parametrize(
    ("fields", "says"),
    [
        (
            {"host": "analytics.abc.eu-west-1.redshift.amazonaws.com", "schema": "analytics"},
            "extra.iam needs login, the database user",
        ),
        ({"login": "loader", "schema": "analytics"}, "extra.iam needs extra.cluster_identifier or a host"),
        (
            {"host": "wg.123.eu-west-1.redshift-serverless.amazonaws.com", "extra": {"is_serverless": True}},
            "extra.iam needs extra.serverless_work_group",
        ),
    ],
    ids=["no-login", "no-cluster", "serverless-no-workgroup"],
)
def test_iam_without_the_fields_it_needs_fails_before_asking_aws(fields: dict, says: str) -> None:
    """No AWS endpoint is set up here: the error comes before any call."""
    extra = {"iam": True, **fields.pop("extra", {})}
    redshift = warehouse(extra=extra, **fields)

    with pytest.raises(LoadError, match=says) as err:
        redshift.connect_params()

    assert "connection 'pipeline_warehouse' (AIRFLOW_CONN_PIPELINE_WAREHOUSE)" in str(err.value)
    assert not err.value.retryable
