"""Lineage names: the URIs the tasks report read, through the providers' own converters, as
the OpenLineage naming spec's namespace and name, for every warehouse dialect and source."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from airflow.providers.amazon.aws.assets import redshift as redshift_assets
from airflow.providers.amazon.aws.assets import s3 as s3_assets
from airflow.providers.mysql.assets import mysql as mysql_assets
from airflow.providers.postgres.assets import postgres as postgres_assets
from airflow.sdk import Asset

from ingestion import lineage
from ingestion.config import TableConfig
from ingestion.connection import Connection

NPS = TableConfig(name="nps", source_table="nps", primary_key=("id",), mode="full_refresh")


@pytest.mark.parametrize(
    ("connection", "converter", "namespace", "name"),
    [
        (
            Connection("pipeline_warehouse", "postgres", host="pg.internal", port=6543, schema="wh_db"),
            postgres_assets,
            "postgres://pg.internal:6543",
            "wh_db.raw_data.nps",
        ),
        (
            Connection("pipeline_warehouse", "postgres", host="pg.internal", schema="wh"),
            postgres_assets,
            "postgres://pg.internal:5432",
            "wh.raw_data.nps",
        ),
        (
            Connection(
                "pipeline_warehouse",
                "redshift",
                host="prod.abc123.eu-west-1.redshift.amazonaws.com",
                login="loader",
                password="s3cret",
                schema="dev",
            ),  # fmt: skip
            redshift_assets,
            "redshift://prod.abc123.eu-west-1.redshift.amazonaws.com:5439",
            "dev.raw_data.nps",
        ),
    ],
    ids=["postgres", "postgres-default-port", "redshift-default-port"],
)
def test_the_raw_table_is_named_by_the_openlineage_spec_without_secrets(
    embedded, connection, converter, namespace, name
):
    environment = replace(embedded, warehouse=connection)
    uri = lineage.raw_table_uri(environment, NPS)

    dataset = converter.convert_asset_to_openlineage(Asset(uri), None)
    assert (dataset.namespace, dataset.name) == (namespace, name)
    assert "s3cret" not in uri and "loader" not in uri


def test_the_mysql_source_table_is_named_by_the_openlineage_spec(embedded):
    source = Connection("pipeline_source", "mysql", host="db.internal", login="root", schema="app")
    environment = replace(embedded, source=source)
    moved = replace(NPS, source_schema="oltp", source_table="nps_responses")

    for table, name in ((NPS, "app.nps"), (moved, "oltp.nps_responses")):
        uri = lineage.source_uri(environment, table)
        dataset = mysql_assets.convert_asset_to_openlineage(Asset(uri), None)
        assert (dataset.namespace, dataset.name) == ("mysql://db.internal:3306", name)


def test_a_sqlite_source_has_no_lineage_name(embedded):
    assert lineage.source_uri(embedded, NPS) is None


def test_the_stage_is_named_by_its_table_prefix(embedded):
    s3 = replace(embedded, stage_uri="s3://pipeline-stage/stage/")
    dataset = s3_assets.convert_asset_to_openlineage(Asset(lineage.stage_uri(s3, NPS)), None)
    assert (dataset.namespace, dataset.name) == ("s3://pipeline-stage", "stage/nps")
    assert lineage.stage_uri(embedded, NPS) == f"file://{embedded.data_dir / 'stage' / 'nps'}"


def test_a_model_asset_follows_the_warehouse_connection_and_falls_back_to_its_name(monkeypatch, tmp_path):
    monkeypatch.setenv("PIPELINE_ENV", "services")
    monkeypatch.setenv(
        "AIRFLOW_CONN_PIPELINE_WAREHOUSE",
        '{"conn_type": "postgres", "host": "pg.internal", "port": 5433, "login": "u", "password": "p",'
        ' "schema": "wh"}',
    )
    assert lineage.model_asset("mau_summary").uri == "postgres://pg.internal:5433/wh/analytics/mau_summary"

    monkeypatch.setenv("PIPELINE_ENV", "production")
    monkeypatch.delenv("AIRFLOW_CONN_PIPELINE_WAREHOUSE")
    monkeypatch.delenv("AIRFLOW_CONN_PIPELINE_SOURCE", raising=False)
    assert lineage.model_asset("mau_summary").uri == "analytics.mau_summary"


def test_the_loads_datasets_carry_the_rows_it_read_and_wrote(source, tables):
    """OpenLineage statistics facets of real embedded loads: day 0 writes every row of its
    window; day 1 re-reads the lookback rows day 0 already wrote and writes only the new
    ones. Counted in the SQLite source; bytes and files read from the stage folder."""
    from ingestion.pipeline import run_table
    from tests.embedded_helpers import interval, window_rows

    table = tables["session_timestamp"]
    run_table(table, interval(0), source)
    day1 = interval(1)
    extracted, loaded = run_table(table, day1, source)
    # Named as a Redshift warehouse would be (DuckDB has no OpenLineage converter).
    redshift = Connection(
        "pipeline_warehouse", "redshift", host="prod.abc.redshift.amazonaws.com", schema="dev"
    )

    lineage_ = lineage.load_lineage(replace(source, warehouse=redshift), table, loaded)

    new_rows = [row for row in window_rows(source, "session_timestamp", day1) if row["ts"] >= day1.start]
    parts = sorted(Path(extracted.manifest_url).parent.glob("part-*.parquet"))
    assert 0 < len(new_rows) < len(window_rows(source, "session_timestamp", day1))
    (stage,) = lineage_.inputs
    assert (stage.namespace, stage.name) == ("file", f"{source.data_dir / 'stage' / 'session_timestamp'}")
    read = stage.inputFacets["inputStatistics"]
    assert (read.rowCount, read.fileCount) == (
        len(window_rows(source, "session_timestamp", day1)),
        len(parts),
    )
    assert read.size == sum(part.stat().st_size for part in parts)
    (raw,) = lineage_.outputs
    assert (raw.namespace, raw.name) == (
        "redshift://prod.abc.redshift.amazonaws.com:5439",
        "dev.raw_data.session_timestamp",
    )
    written = raw.outputFacets["outputStatistics"]
    assert (written.rowCount, written.size) == (len(new_rows), read.size)
