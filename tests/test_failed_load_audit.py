"""A failed load leaves the raw table as it was and one ``failed`` row in ``_load_audit``.

On DuckDB (embedded) and PostgreSQL (services): a failure between the merge and the commit
(the ``before_commit`` hook), a manifest whose row count is wrong and a manifest listing a
file that is not there. Expected rows are read back with plain SQL before the failure.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import datetime, timedelta

import duckdb
import pytest

from devtools import generate
from ingestion import pipeline
from ingestion.audit import error_message
from ingestion.environments import Connection, Environment
from ingestion.errors import LoadError
from ingestion.load import load
from ingestion.stage import Manifest, ManifestEntry
from ingestion.warehouse import open_warehouse

DAY0 = datetime(2026, 10, 30)
AUDIT_KEPT = (
    "select table_name, window_start, batch_id, rows_staged, rows_inserted, status "
    "from raw_data._load_audit where status = 'succeeded' order by started_at"
)
FAILED = (
    "select table_name, mode, window_start, window_end, batch_id, manifest_url, rows_staged, "
    "error_class, error_message from raw_data._load_audit where status = 'failed'"
)
FAILED_COLUMNS = (
    "table_name", "mode", "window_start", "window_end", "batch_id", "manifest_url", "rows_staged",
    "error_class", "error_message",
)  # fmt: skip


def interval(index: int):
    from ingestion.window import Window

    return Window(DAY0 + timedelta(days=index), DAY0 + timedelta(days=index + 1))


class Ends:
    """Reading the warehouse of one environment with its own driver."""

    def __init__(self, env: Environment) -> None:
        self.env = env

    def rows(self, sql_text: str) -> list[tuple]:
        if self.env.warehouse.conn_type == "duckdb":
            db = duckdb.connect(self.env.warehouse.host)
            try:
                return db.execute(sql_text).fetchall()
            finally:
                db.close()
        db = open_warehouse(self.env.warehouse).connect()
        try:
            cursor = db.cursor()
            cursor.execute(sql_text)
            return cursor.fetchall()
        finally:
            db.close()

    def failed(self) -> list[dict]:
        return [dict(zip(FAILED_COLUMNS, row, strict=True)) for row in self.rows(FAILED)]


def raise_before_commit() -> None:
    raise RuntimeError("injected failure after the merge\nsecond line not recorded")


def wrong_count(env: Environment, manifest_url: str) -> str:
    """The attempt's manifest, rewritten to list one row more than its file holds."""
    stage = pipeline.environment_stage(env)
    manifest = stage.read_manifest(manifest_url)
    first, *rest = manifest.entries
    entries = (replace(first, record_count=first.record_count + 1), *rest)
    url = manifest_url.replace("manifest.json", "manifest-wrong-count.json")
    stage.write_manifest(url, Manifest(url, entries))
    return url


def missing_file(env: Environment, manifest_url: str) -> str:
    """The attempt's manifest plus a second part that was never written."""
    stage = pipeline.environment_stage(env)
    manifest = stage.read_manifest(manifest_url)
    ghost = manifest.entries[0].url.replace("part-00000", "part-00077")
    entries = (*manifest.entries, ManifestEntry(ghost, 1000, 5))
    url = manifest_url.replace("manifest.json", "manifest-missing-file.json")
    stage.write_manifest(url, Manifest(url, entries))
    return url


# failure -> (how to break the attempt, the error class the failed row names)
FAILURES = {
    "before-commit-hook": (None, "RuntimeError"),
    "manifest-row-count-wrong": (wrong_count, "LoadError"),
}


def fail_a_load(env: Environment, tables: dict, failure: str, table: str = "nps") -> tuple[str, str, dict]:
    """Load interval 0, then fail interval 1's load; return its batch id, its manifest URL
    and what the warehouse held between the two (the table's rows, the audit rows)."""
    ends = Ends(env)
    pipeline.run_table(tables[table], interval(0), env)
    before = {"rows": sorted(ends.rows(f"select * from raw_data.{table}")), "audit": ends.rows(AUDIT_KEPT)}
    assert before["rows"] and len(before["audit"]) == 1, "interval 0 must have loaded rows"
    extracted = pipeline.run_extract(tables[table], interval(1), env)
    breaker, _ = FAILURES.get(failure, (missing_file, None))
    manifest_url = breaker(env, extracted.manifest_url) if breaker else extracted.manifest_url
    hook = raise_before_commit if failure == "before-commit-hook" else None
    warehouse = open_warehouse(env.warehouse)
    with pytest.raises(LoadError, match=f"raw_data.{table}"):
        load(
            tables[table],
            manifest_url,
            interval(1),
            warehouse,
            pipeline.environment_stage(env),
            before_commit=hook,
        )
    return extracted.batch_id, manifest_url, before


def check_one_failed_row(
    ends: Ends, failure: str, batch_id: str, manifest_url: str, table: str, mode: str
) -> None:
    (row,) = ends.failed()
    assert (row["table_name"], row["mode"]) == (table, mode)
    assert (row["window_start"], row["window_end"]) == (interval(1).start, interval(1).end)
    assert (row["batch_id"], row["manifest_url"]) == (batch_id, manifest_url)
    assert row["rows_staged"] is None  # nothing was loaded
    expected_class = FAILURES[failure][1] if failure in FAILURES else None
    if expected_class:
        assert row["error_class"] == expected_class
    else:
        assert row["error_class"]  # the warehouse driver's error class
    if failure == "before-commit-hook":
        assert row["error_message"] == "injected failure after the merge"
    assert "\n" not in row["error_message"]


# ------------------------------------------------------------------ DuckDB


@pytest.mark.parametrize("failure", [*FAILURES, "manifest-lists-a-missing-file"])
@pytest.mark.parametrize("table", ["nps", "user_session_channel"])
def test_failed_load_on_duckdb_keeps_the_table_and_adds_one_failed_audit_row(
    source: Environment, tables: dict, failure: str, table: str
) -> None:
    ends = Ends(source)

    batch_id, manifest_url, before = fail_a_load(source, tables, failure, table)

    assert sorted(ends.rows(f"select * from raw_data.{table}")) == before["rows"]
    assert ends.rows(AUDIT_KEPT) == before["audit"]
    check_one_failed_row(ends, failure, batch_id, manifest_url, table, tables[table].mode)


def test_successful_load_is_audited_as_succeeded(source: Environment, tables: dict) -> None:
    pipeline.run_table(tables["nps"], interval(0), source)

    rows = Ends(source).rows("select status, error_class, error_message from raw_data._load_audit")

    assert rows == [("succeeded", None, None)]


def test_an_audit_table_without_the_new_columns_gets_them_added(source: Environment, tables: dict) -> None:
    db = duckdb.connect(source.warehouse.host)
    db.execute("create schema raw_data")
    db.execute(  # the audit table as the first release created it
        "create table raw_data._load_audit (table_name varchar(128), mode varchar(16), "
        "window_start timestamp, window_end timestamp, batch_id varchar(64), manifest_url varchar(1024), "
        "files integer, "
        "rows_staged bigint, rows_inserted bigint, rows_replaced bigint, rows_deleted bigint, bytes bigint, "
        "started_at timestamp, finished_at timestamp, duration_seconds double precision)"
    )
    db.execute("insert into raw_data._load_audit (table_name, rows_staged) values ('older', 7)")
    db.close()

    pipeline.run_table(tables["nps"], interval(0), source)

    rows = Ends(source).rows(
        "select table_name, rows_staged, status, schema_changes from raw_data._load_audit "
        "order by started_at nulls first"
    )
    assert rows[0] == ("older", 7, None, None)
    assert rows[1][0] == "nps" and rows[1][2] == "succeeded"


def test_when_the_warehouse_is_unreachable_the_original_error_is_raised_and_logged(
    source: Environment, tables: dict, caplog: pytest.LogCaptureFixture
) -> None:
    extracted = pipeline.run_extract(tables["nps"], interval(0), source)
    nowhere = Connection(
        "pipeline_warehouse", "postgres", host="127.0.0.1", port=1, login="loader",
        password="hunter2-secret", schema="warehouse", extra={"connect_timeout": 2},
    )  # fmt: skip

    with caplog.at_level(logging.ERROR, logger="ingestion"), pytest.raises(LoadError) as raised:
        load(
            tables["nps"],
            extracted.manifest_url,
            interval(0),
            open_warehouse(nowhere),
            pipeline.environment_stage(source),
        )

    assert "cannot connect to postgres at 127.0.0.1:1" in str(raised.value)
    assert "could not be recorded" in caplog.text
    assert "hunter2-secret" not in caplog.text


@pytest.mark.parametrize(
    ("message", "secret", "expected"),
    [
        (
            'connection to "postgresql://loader:hunter2@db.example:5432/wh" failed\ndetail: x',
            None,
            'connection to "postgresql://***@db.example:5432/wh" failed',
        ),
        ("FATAL: password=hunter2 user=loader rejected", None, "FATAL: password=*** user=loader rejected"),
        ("login failed: server echoed hunter2 back", "hunter2", "login failed: server echoed *** back"),
        ("\n\n  only the first line  \nsecond", None, "only the first line"),
    ],
)
def test_audit_error_message_is_the_first_line_without_secrets(
    message: str, secret: str | None, expected: str
) -> None:
    assert error_message(RuntimeError(message), [secret]) == expected


def test_audit_error_message_is_cut_to_the_column_length() -> None:
    assert len(error_message(RuntimeError("x" * 5000))) == 1024


# ------------------------------------------------------------------ PostgreSQL


@pytest.fixture
def services(mysql_db, pg_warehouse, s3_bucket, s3_connection, tmp_path) -> Environment:
    env = Environment(
        name="services", source=mysql_db.connection, warehouse=pg_warehouse,
        stage_uri=f"s3://{s3_bucket}/stage", aws=s3_connection, data_dir=tmp_path,
    )  # fmt: skip
    generate.generate(env.source, generate.DemoSpec(size=60), days=2)
    return env


@pytest.mark.parametrize("failure", [*FAILURES, "manifest-lists-a-missing-file"])
@pytest.mark.parametrize("table", ["nps", "user_session_channel"])
def test_failed_load_on_postgres_keeps_the_table_and_adds_one_failed_audit_row(
    services: Environment, tables: dict, failure: str, table: str
) -> None:
    ends = Ends(services)

    batch_id, manifest_url, before = fail_a_load(services, tables, failure, table)

    assert sorted(ends.rows(f"select * from raw_data.{table}")) == before["rows"]
    assert ends.rows(AUDIT_KEPT) == before["audit"]
    check_one_failed_row(ends, failure, batch_id, manifest_url, table, tables[table].mode)
