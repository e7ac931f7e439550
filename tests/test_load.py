"""The load on the embedded environment (DuckDB): the merge, backfills, stale attempts,
rollback on failure, full refresh and the audit row.

Every expected value is computed from the SQLite file (read with ``sqlite3``), from the
files on disk, or written literally; the warehouse is read back with ``duckdb``
(``tests/embedded_helpers.py``).
"""

from __future__ import annotations

import sqlite3
from dataclasses import replace
from datetime import datetime
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from devtools import generate
from ingestion import load, pipeline
from ingestion.environments import Connection, Environment
from ingestion.errors import LoadError
from ingestion.warehouse import open_warehouse
from ingestion.warehouse.duckdb import DuckDBWarehouse
from tests.embedded_helpers import (
    INCREMENTAL,
    KEYS,
    NPS_SCHEMA,
    SPEC,
    attempt_folders,
    audit_rows,
    business,
    interval,
    nps_row,
    query,
    raw_rows,
    run,
    sort_by_key,
    source_rows,
    stage_batch,
    window_rows,
)

# ------------------------------------------------------------------ the merge


def test_row_updated_on_a_later_day_replaces_the_older_version(embedded: Environment, tables: dict) -> None:
    generate.generate(embedded.source, SPEC, 1)
    run(embedded, tables, "nps", 0)
    day0 = {row["id"]: row for row in raw_rows(embedded, "nps")}

    generate.generate(embedded.source, SPEC, 1, first_day=1, recreate=False)
    day1_start = interval(1).start
    updated = [
        row for row in source_rows(embedded, "nps")
        if row["created_at"] < day1_start <= row["modified_at"]
    ]  # fmt: skip
    assert updated, "day 1 of the demo data must update rows created on day 0"
    assert all(row["id"] in day0 for row in updated)
    assert all(day0[row["id"]]["modified_at"] < row["modified_at"] for row in updated)

    run(embedded, tables, "nps", 1)

    loaded = raw_rows(embedded, "nps")
    for row in updated:
        versions = [r for r in loaded if r["id"] == row["id"]]
        assert len(versions) == 1
        assert business(versions)[0] == row
    assert business(loaded) == source_rows(embedded, "nps")


# The newer version has the lower score, so only the cursor can pick it.
OLD = nps_row(1, "2026-10-30 10:00:00", score=9)
NEW = nps_row(1, "2026-10-30 18:30:00", score=3)
OTHER = nps_row(2, "2026-10-30 12:00:00", score=5)
# Same cursor: the later extract wins, although its score sorts lower.
SAME_CURSOR_EARLY = nps_row(1, "2026-10-30 18:30:00", score=8, extracted_at="2026-10-31 01:00:00")
SAME_CURSOR_LATE = nps_row(1, "2026-10-30 18:30:00", score=4, extracted_at="2026-10-31 02:00:00")
# The cursor ranks before the extract time.
OLD_LATE_EXTRACT = nps_row(1, "2026-10-30 10:00:00", score=9, extracted_at="2026-10-31 02:00:00")


@pytest.mark.parametrize(
    ("files", "expected_score"),
    [
        pytest.param([[OLD, NEW, OTHER]], 3, id="newer-last-in-one-file"),
        pytest.param([[NEW, OLD, OTHER]], 3, id="newer-first-in-one-file"),
        pytest.param([[OLD, OTHER], [NEW]], 3, id="newer-in-second-file"),
        pytest.param([[NEW], [OTHER, OLD]], 3, id="newer-in-first-file"),
        pytest.param([[NEW, OLD_LATE_EXTRACT, OTHER]], 3, id="newer-cursor-earlier-extract"),
        pytest.param([[SAME_CURSOR_LATE, SAME_CURSOR_EARLY, OTHER]], 4, id="same-cursor-later-extract"),
        pytest.param([[OTHER, SAME_CURSOR_EARLY], [SAME_CURSOR_LATE]], 4, id="same-cursor-two-files"),
    ],
)
def test_two_versions_of_one_key_in_one_batch_give_the_latest(
    embedded: Environment, tables: dict, files: list[list[dict]], expected_score: int
) -> None:
    window = interval(0)
    manifest_url = stage_batch(embedded, window, "20261031T010000Z-0000beef", files)
    warehouse = open_warehouse(embedded.warehouse)

    result = load.load(tables["nps"], manifest_url, window, warehouse, pipeline.environment_stage(embedded))

    loaded = raw_rows(embedded, "nps")
    assert [(row["id"], row["score"]) for row in loaded] == [(1, expected_score), (2, 5)]
    assert loaded[0]["modified_at"] == datetime(2026, 10, 30, 18, 30)
    assert (result.rows_staged, result.rows_inserted) == (sum(len(rows) for rows in files), 2)


def test_out_of_order_backfill_gives_the_same_rows_as_in_order(embedded: Environment, tables: dict) -> None:
    # Each day's extract is taken when the source has reached that day, as the DAG would.
    manifests = {}
    for index in (0, 1, 2):
        generate.generate(embedded.source, SPEC, 1, first_day=index, recreate=index == 0)
        for table in INCREMENTAL:
            manifests[table, index] = pipeline.run_extract(tables[table], interval(index), embedded)
    stage = pipeline.environment_stage(embedded)
    # interval 0's batch holds versions that day 1 and 2 replaced: the order matters.
    stale = pq.read_table(Path(manifests["nps", 0].manifest_url).parent / "part-00000.parquet").to_pylist()
    final = {row["id"]: row for row in source_rows(embedded, "nps")}
    assert any(final[row["id"]]["modified_at"] != row["modified_at"] for row in stale)

    results = {}
    for order in ((0, 1, 2), (2, 1, 0)):
        host = str(Path(embedded.data_dir) / f"warehouse-{''.join(map(str, order))}.duckdb")
        warehouse = DuckDBWarehouse(Connection("pipeline_warehouse", "duckdb", host=host))
        for index in order:
            for table in INCREMENTAL:
                load.load(
                    tables[table], manifests[table, index].manifest_url, interval(index), warehouse, stage
                )
        env = Environment(
            name="embedded", source=embedded.source, warehouse=warehouse.connection,
            stage_uri=embedded.stage_uri, aws=None, data_dir=embedded.data_dir,
        )  # fmt: skip
        results[order] = {table: business(raw_rows(env, table)) for table in INCREMENTAL}

    for table in INCREMENTAL:
        assert results[(2, 1, 0)][table] == results[(0, 1, 2)][table]
        assert results[(2, 1, 0)][table] == source_rows(embedded, table)


# ------------------------------------------------------------------ stale attempts


@pytest.mark.parametrize("where", ["other-attempt-folder", "same-attempt-folder-not-in-manifest"])
def test_stale_files_of_a_failed_attempt_are_not_loaded(
    source: Environment, tables: dict, where: str
) -> None:
    window = interval(1)
    extracted = pipeline.run_extract(tables["nps"], window, source)
    attempt = Path(extracted.manifest_url).parent
    folder = attempt.parent / "20261031T000000Z-dead0000" if where == "other-attempt-folder" else attempt
    folder.mkdir(exist_ok=True)
    bogus = [
        {**nps_row(900_000 + n, "2026-10-31 12:00:00", score=0), "_batch_id": folder.name} for n in range(5)
    ]
    name = "part-00000.parquet" if where == "other-attempt-folder" else "part-00001.parquet"
    pq.write_table(pa.Table.from_pylist(bogus, schema=NPS_SCHEMA), folder / name)

    result = pipeline.run_load(tables["nps"], extracted.manifest_url, window, source)

    loaded = raw_rows(source, "nps")
    assert not [row for row in loaded if row["id"] >= 900_000]
    assert business(loaded) == window_rows(source, "nps", window)
    assert result.rows_staged == len(window_rows(source, "nps", window))


# ------------------------------------------------------------------ failures roll back


def raise_before_commit() -> None:
    raise RuntimeError("injected failure between the merge and the commit")


def break_audit_table(env: Environment) -> None:
    """An audit table without most columns: the audit insert, after the merge, fails."""
    db = duckdb.connect(env.warehouse.host)
    try:
        db.execute("create schema if not exists raw_data")
        db.execute("drop table if exists raw_data._load_audit")
        db.execute("create table raw_data._load_audit (table_name varchar(128), note varchar)")
        db.execute("insert into raw_data._load_audit values ('nps', 'kept')")
    finally:
        db.close()


FAILURES = ["before-commit-hook", "audit-insert-fails"]
# How the failing load reaches the table: (table, whether interval 0 was loaded before).
LOAD_PATHS = {
    "merge-into-rows": ("nps", True),  # an incremental batch into a table with rows
    "merge-full-refresh": ("user_session_channel", True),  # a full refresh into rows merges
    "straight-first-load": ("nps", False),  # an empty table: straight into it
}


def failed_load(env: Environment, tables: dict, failure: str, table: str = "nps") -> None:
    extracted = pipeline.run_extract(tables[table], interval(1), env)
    before_commit = None
    if failure == "before-commit-hook":
        before_commit = raise_before_commit
    else:
        break_audit_table(env)
    warehouse = open_warehouse(env.warehouse)
    load.load(
        tables[table], extracted.manifest_url, interval(1), warehouse,
        pipeline.environment_stage(env), before_commit=before_commit,
    )  # fmt: skip


@pytest.mark.parametrize("failure", FAILURES)
def test_failure_between_bulk_load_and_commit_raises_load_error_naming_the_table(
    source: Environment, tables: dict, failure: str
) -> None:
    run(source, tables, "nps", 0)

    with pytest.raises(LoadError) as raised:
        failed_load(source, tables, failure)

    assert "table raw_data.nps" in str(raised.value)
    assert "nothing changed" in str(raised.value)


@pytest.mark.parametrize("path", list(LOAD_PATHS))
@pytest.mark.parametrize("failure", FAILURES)
def test_failure_between_bulk_load_and_commit_leaves_raw_data_as_it_was(
    source: Environment, tables: dict, failure: str, path: str, caplog: pytest.LogCaptureFixture
) -> None:
    table, loaded_before = LOAD_PATHS[path]
    if loaded_before:
        run(source, tables, table, 0)
        before = raw_rows(source, table)
        assert before, "interval 0 must have loaded rows"
    else:
        before = []
    assert window_rows(source, "nps", interval(1)), "interval 1 must have rows to load"
    if failure == "audit-insert-fails":
        kept = "select table_name, note from raw_data._load_audit"
        expected_audit = [{"table_name": "nps", "note": "kept"}]  # what break_audit_table leaves
    else:
        kept = "select * exclude (status, error_class, error_message) from raw_data._load_audit"
        kept += " where status = 'succeeded'"
        expected_audit = query(source, kept) if loaded_before else []
        if loaded_before:
            assert [(row["table_name"], row["window_start"]) for row in expected_audit] == [
                (table, interval(0).start)
            ]

    caplog.clear()
    with caplog.at_level("INFO", logger="ingestion.load"), pytest.raises(LoadError):
        failed_load(source, tables, failure, table)

    straight = "bulk-loading into the table" in caplog.text
    assert straight == path.startswith("straight"), caplog.text
    assert raw_rows(source, table) == before
    assert query(source, kept) == expected_audit
    failed = query(source, "select table_name, error_class from raw_data._load_audit where status = 'failed'")
    if failure == "audit-insert-fails":  # the audit table cannot take the failure either: logged
        assert failed == []
        assert "could not be recorded" in caplog.text
    else:
        assert failed == [{"table_name": table, "error_class": "RuntimeError"}]


@pytest.mark.parametrize("table", list(KEYS))
def test_a_load_straight_into_the_table_equals_the_load_through_staging(
    source: Environment, tables: dict, table: str, caplog: pytest.LogCaptureFixture
) -> None:
    extracted = pipeline.run_extract(tables[table], interval(0), source)
    stage = pipeline.environment_stage(source)
    warehouse = open_warehouse(source.warehouse)

    caplog.clear()
    with caplog.at_level("INFO", logger="ingestion.load"):
        load.load(tables[table], extracted.manifest_url, interval(0), warehouse, stage, raw_schema="raw_a")
        assert "bulk-loading into the table" in caplog.text
        caplog.clear()
        load.load(  # the path of every Redshift load
            tables[table], extracted.manifest_url, interval(0), warehouse, stage, raw_schema="raw_b",
            force_staging=True,
        )  # fmt: skip
        assert "bulk-loading into the table" not in caplog.text

    rows_a = sort_by_key(table, query(source, f'select * exclude (_loaded_at) from raw_a."{table}"'))
    rows_b = sort_by_key(table, query(source, f'select * exclude (_loaded_at) from raw_b."{table}"'))
    assert rows_a == rows_b
    assert len(rows_a) == extracted.rows > 0
    for schema in ("raw_a", "raw_b"):  # one _loaded_at per load, in every row
        stamps = query(
            source, f'select count(distinct _loaded_at) as n, count(*) as rows from {schema}."{table}"'
        )
        assert stamps == [{"n": 1, "rows": extracted.rows}]


# ------------------------------------------------------------------ full refresh


def test_full_refresh_drops_rows_deleted_at_the_source(source: Environment, tables: dict) -> None:
    """Without ``hard_deletes: reconcile`` (tests/test_reconcile.py flags them instead)."""
    channels = replace(tables["user_session_channel"], hard_deletes="off")
    tables = {**tables, "user_session_channel": channels}
    run(source, tables, "user_session_channel", 2)
    assert business(raw_rows(source, "user_session_channel")) == source_rows(source, "user_session_channel")
    gone = source_rows(source, "user_session_channel")[0]["sessionid"]
    db = sqlite3.connect(source.source.host)
    with db:
        db.execute("DELETE FROM user_session_channel WHERE sessionid = ?", (gone,))
    db.close()

    _, result = run(source, tables, "user_session_channel", 2)

    loaded = business(raw_rows(source, "user_session_channel"))
    assert gone not in {row["sessionid"] for row in loaded}
    assert loaded == source_rows(source, "user_session_channel")
    assert len(loaded) == 299
    # only the gone key is deleted; the 299 unchanged rows stay as stored
    assert (result.rows_deleted, result.rows_replaced, result.rows_inserted) == (1, 0, 0)


def test_full_refresh_rerun_of_unchanged_rows_keeps_them_as_stored(source: Environment, tables: dict) -> None:
    run(source, tables, "user_session_channel", 2)
    first = raw_rows(source, "user_session_channel")

    _, rerun = run(source, tables, "user_session_channel", 2)

    second = raw_rows(source, "user_session_channel")
    assert business(second) == business(first) == source_rows(source, "user_session_channel")
    assert second == first  # _batch_id, _extracted_at and _loaded_at too
    assert (rerun.rows_inserted, rerun.rows_replaced, rerun.rows_deleted) == (0, 0, 0)


# ------------------------------------------------------------------ audit


def test_audit_row_records_what_was_loaded(embedded: Environment, tables: dict) -> None:
    generate.generate(embedded.source, SPEC, 1)
    run(embedded, tables, "nps", 0)
    generate.generate(embedded.source, SPEC, 1, first_day=1, recreate=False)
    stored = {row["id"]: row["modified_at"] for row in raw_rows(embedded, "nps")}
    staged = window_rows(embedded, "nps", interval(1))
    replaced = [r for r in staged if r["id"] in stored and stored[r["id"]] < r["modified_at"]]
    new = [r for r in staged if r["id"] not in stored]
    assert replaced and new, "interval 1 must both replace and add rows"

    run(embedded, tables, "nps", 1)

    audit = audit_rows(embedded)
    assert [row["window_start"] for row in audit] == [interval(0).start, interval(1).start]
    row = audit[1]
    (attempt,) = attempt_folders(embedded, "nps", interval(1))
    parts = sorted(attempt.glob("*.parquet"))
    assert row["table_name"] == "nps"
    assert row["mode"] == "incremental"
    assert (row["window_start"], row["window_end"]) == (datetime(2026, 10, 31), datetime(2026, 11, 1))
    assert row["batch_id"] == attempt.name
    assert row["manifest_url"] == str(attempt / "manifest.json")
    assert row["files"] == len(parts)
    assert row["bytes"] == sum(part.stat().st_size for part in parts)
    assert row["rows_staged"] == len(staged)
    assert row["rows_replaced"] == len(replaced)
    assert row["rows_inserted"] == len(replaced) + len(new)
    assert row["rows_deleted"] == 0
    assert row["started_at"] <= row["finished_at"]
