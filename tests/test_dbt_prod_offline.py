"""The production target (dbt-redshift) parses, and its staging models compile,
with no Redshift reachable: what can be checked offline is checked here.

Both of its authentication methods: ``database`` (login and password, the
default) and ``iam`` (dbt-redshift's temporary credentials), which
``python -m ingestion exec`` selects from the connection's ``extra.iam``. The
settings dbt reads are those ``dbt debug`` prints before its connection test,
which fails here (no Redshift, no AWS credentials)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

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


CLUSTER = "analytics-cluster"
IAM_REDSHIFT = json.dumps(
    {
        "conn_type": "redshift",
        "host": f"{CLUSTER}.abc123.eu-west-1.redshift.amazonaws.com",
        "port": 5439,
        "login": "dbt_runner",
        "schema": "analytics",
        "extra": {"iam": True, "iam_role": "arn:aws:iam::123456789012:role/redshift-copy"},
    }
)
AWS = json.dumps({"conn_type": "aws", "extra": {"region_name": "eu-west-1", "profile_name": "pipeline-dbt"}})
IAM_VARIABLES = {
    "DBT_REDSHIFT_METHOD": "iam",
    "DBT_REDSHIFT_CLUSTER_ID": CLUSTER,
    "DBT_REDSHIFT_REGION": "eu-west-1",
    "DBT_REDSHIFT_IAM_PROFILE": "pipeline-dbt",
}
# Settings of this shell that would change what dbt or boto3 do here.
LEAKING = ("DBT_", "AIRFLOW_CONN_", "PIPELINE_", "AWS_")


def clean_env(tmp_path: Path, **variables: str) -> dict[str, str]:
    """No AWS credentials anywhere boto3 looks (no instance metadata either)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(LEAKING)}
    return {
        **env,
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "False",
        "HOME": str(tmp_path),
        "AWS_CONFIG_FILE": str(tmp_path / "no-aws-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "no-aws-credentials"),
        "AWS_EC2_METADATA_DISABLED": "true",
        **variables,
    }


def dbt_prod(tmp_path: Path, *args: str, warehouse: str = UNREACHABLE_REDSHIFT, **variables: str):
    env = clean_env(tmp_path, AIRFLOW_CONN_PIPELINE_WAREHOUSE=warehouse, **variables)
    env["DBT_TARGET_PATH"] = str(tmp_path / "target")  # `dbt debug` has no --target-path
    return subprocess.run(
        [str(DBT), *args, "--target", "prod", "--profiles-dir", str(REPO_ROOT),
         "--log-path", str(tmp_path / "logs")],
        cwd=REPO_ROOT / "dbt_project", env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip


def debug_settings(done: subprocess.CompletedProcess) -> dict[str, str]:
    """The ``Connection:`` block ``dbt debug`` prints: what dbt-redshift was given."""
    block = done.stdout.split("Connection:", 1)[1].split("Connection test:", 1)[0]
    return dict(re.findall(r"^\S*\s+(\w+): (.*)$", block, flags=re.MULTILINE))


METHODS = {
    "database": ({}, UNREACHABLE_REDSHIFT),
    "iam": (IAM_VARIABLES, IAM_REDSHIFT),
}


@pytest.mark.parametrize("method", METHODS)
def test_prod_target_parses_without_redshift(tmp_path, method):
    variables, warehouse = METHODS[method]
    done = dbt_prod(tmp_path, "parse", warehouse=warehouse, **variables)
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


def test_prod_target_defaults_to_the_login_and_password(tmp_path):
    done = dbt_prod(tmp_path, "debug", "--no-use-colors")

    settings = debug_settings(done)
    assert done.returncode == 1  # the connection test: redshift.invalid does not resolve
    expected = {"method": "database", "host": "redshift.invalid", "port": "5439", "user": "loader",
                "database": "analytics", "cluster_id": "None", "iam_profile": "None",
                "region": "None", "is_serverless": "False", "serverless_work_group": "None"}  # fmt: skip
    assert {key: settings.get(key) for key in expected} == expected


def test_prod_target_takes_iam_from_the_dbt_redshift_variables(tmp_path):
    done = dbt_prod(tmp_path, "debug", "--no-use-colors", warehouse=IAM_REDSHIFT, **IAM_VARIABLES)

    settings = debug_settings(done)
    expected = {"method": "iam", "cluster_id": CLUSTER, "region": "eu-west-1",
                "iam_profile": "pipeline-dbt", "user": "dbt_runner", "database": "analytics",
                "is_serverless": "False"}  # fmt: skip
    assert {key: settings.get(key) for key in expected} == expected
    # dbt-redshift asked boto3 for credentials of the profile it was given (there is none).
    assert done.returncode == 1
    assert "The config profile (pipeline-dbt) could not be found" in done.stdout


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        ({"iam": True}, {"method": "iam", "cluster_id": CLUSTER, "is_serverless": "False"}),
        (
            {"iam": "true", "cluster_identifier": "other-cluster", "region": "us-west-2"},
            {"method": "iam", "cluster_id": "other-cluster", "region": "us-west-2"},
        ),
        (
            {"iam": True, "is_serverless": True, "serverless_work_group": "analytics-wg"},
            {"method": "iam", "cluster_id": "None", "is_serverless": "True",
             "serverless_work_group": "analytics-wg"},
        ),
        ({"iam": False}, {"method": "database", "cluster_id": "None", "region": "None"}),
    ],
    ids=["host-names-the-cluster", "cluster-identifier", "serverless", "no-iam"],
)  # fmt: skip
def test_exec_hands_dbt_the_connections_iam_settings(tmp_path, extra, expected):
    """By hand in production: only the connections in the shell; exec maps extra.iam."""
    warehouse = {**json.loads(IAM_REDSHIFT), "extra": extra}
    env = clean_env(
        tmp_path, PIPELINE_ENV="production", AIRFLOW_CONN_PIPELINE_WAREHOUSE=json.dumps(warehouse),
        AIRFLOW_CONN_PIPELINE_AWS=AWS,
    )  # fmt: skip
    done = subprocess.run(
        [sys.executable, "-m", "ingestion", "exec", "--", str(DBT), "debug", "--no-use-colors",
         "--log-path", str(tmp_path / "logs")],
        cwd=REPO_ROOT / "dbt_project", env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip

    settings = debug_settings(done)
    expected = {"region": "eu-west-1", "user": "dbt_runner", **expected}
    if expected["method"] == "iam":
        expected.setdefault("iam_profile", "pipeline-dbt")
    assert {key: settings.get(key) for key in expected} == expected, done.stdout[-3000:]
