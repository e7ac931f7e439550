"""Extract and load in the embedded environment: SQLite source, local stage, DuckDB warehouse.

Every expected value is computed here from the SQLite file (read with ``sqlite3``), from
the files on disk, or written literally; the warehouse is read back with ``duckdb``.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from devtools import generate
from devtools.generate import DemoSpec
from ingestion import load, pipeline
from ingestion.batch import Batch
from ingestion.config import TableConfig
from ingestion.environments import Connection, Environment
from ingestion.errors import ConfigError, LoadError, StageError
from ingestion.extract import ExtractResult
from ingestion.load import LoadResult
from ingestion.stage import Manifest, ManifestEntry
from ingestion.warehouse import open_warehouse
from ingestion.warehouse.duckdb import DuckDBWarehouse
from ingestion.window import Window

REPO_ROOT = Path(__file__).resolve().parent.parent
SPEC = DemoSpec(size=100)  # 100 sessions and 10 NPS responses a day; days 1+ update 2 responses
DAY0 = datetime(2026, 10, 30)
LOOKBACK = timedelta(hours=2)  # config/tables.yml: lookback 2h for both incremental tables
KEYS = {"nps": ("id",), "session_timestamp": ("sessionid",), "user_session_channel": ("sessionid",)}
CURSORS = {"nps": "modified_at", "session_timestamp": "ts"}
METADATA = ("_batch_id", "_extracted_at", "_loaded_at")
INCREMENTAL = ("nps", "session_timestamp")


def interval(index: int) -> Window:
    return Window(DAY0 + timedelta(days=index), DAY0 + timedelta(days=index + 1))


# ------------------------------------------------------------------ reading both ends


def source_rows(env: Environment, table: str) -> list[dict]:
    """Every row of a source table, DATETIME columns parsed, read with plain sqlite3."""
    db = sqlite3.connect(env.source.host)
    try:
        declared = {row[1]: row[2].upper() for row in db.execute(f'PRAGMA table_info("{table}")')}
        cursor = db.execute(f'SELECT * FROM "{table}"')
        names = [d[0] for d in cursor.description]
        rows = []
        for values in cursor.fetchall():
            row = dict(zip(names, values, strict=True))
            for name, value in row.items():
                if declared[name].startswith("DATETIME") and value is not None:
                    row[name] = datetime.fromisoformat(value)
            rows.append(row)
    finally:
        db.close()
    return sort_by_key(table, rows)


def window_rows(env: Environment, table: str, window: Window) -> list[dict]:
    """The source rows a window must deliver: cursor >= start - lookback and < end."""
    cursor = CURSORS[table]
    low = window.start - LOOKBACK
    return [row for row in source_rows(env, table) if low <= row[cursor] < window.end]


def sort_by_key(table: str, rows: list[dict]) -> list[dict]:
    return sorted(rows, key=lambda row: tuple(row[k] for k in KEYS[table]))


def query(env: Environment, sql: str) -> list[dict]:
    db = duckdb.connect(env.warehouse.host)
    try:
        cursor = db.execute(sql)
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, values, strict=True)) for values in cursor.fetchall()]
    finally:
        db.close()


def raw_rows(env: Environment, table: str) -> list[dict]:
    """Every column of ``raw_data.<table>``, ordered by key."""
    return sort_by_key(table, query(env, f'select * from raw_data."{table}"'))


def business(rows: list[dict]) -> list[dict]:
    return [{k: v for k, v in row.items() if k not in METADATA} for row in rows]


def audit_rows(env: Environment) -> list[dict]:
    return query(env, "select * from raw_data._load_audit order by started_at, batch_id")


def attempt_folders(env: Environment, table: str, window: Window) -> list[Path]:
    folder = Path(env.stage_uri) / table / window.label
    return sorted(p for p in folder.iterdir() if p.is_dir())


def run(
    env: Environment, tables: dict[str, TableConfig], table: str, index: int
) -> tuple[ExtractResult, LoadResult]:
    return pipeline.run_table(tables[table], interval(index), env)


@pytest.fixture
def source(embedded: Environment) -> Environment:
    """The embedded environment with three days of demo data in its SQLite source."""
    counts = generate.generate(embedded.source, SPEC, 3)
    assert counts == {"nps": 30, "session_timestamp": 300, "user_session_channel": 300}
    return embedded


# ------------------------------------------------------------------ one window


@pytest.mark.parametrize("table", INCREMENTAL)
@pytest.mark.parametrize("index", [0, 1, 2])
def test_window_rows_land_in_raw_data_exactly_once(
    source: Environment, tables: dict, table: str, index: int
) -> None:
    expected = window_rows(source, table, interval(index))
    assert expected, "the demo data must put rows in every window"

    run(source, tables, table, index)

    loaded = raw_rows(source, table)
    keys = [tuple(row[k] for k in KEYS[table]) for row in loaded]
    assert len(keys) == len(set(keys)) == len(expected)
    assert business(loaded) == expected


@pytest.mark.parametrize("table", INCREMENTAL)
def test_overlapping_windows_load_each_key_once(source: Environment, tables: dict, table: str) -> None:
    for index in (0, 1, 2):
        run(source, tables, table, index)

    loaded = raw_rows(source, table)
    keys = [tuple(row[k] for k in KEYS[table]) for row in loaded]
    assert len(keys) == len(set(keys))
    assert business(loaded) == source_rows(source, table)


# The extract reads cursor >= start - lookback and cursor < end (window.py: [start, end)).
# For interval 1 with a 2h lookback: [2026-10-30 22:00:00, 2026-11-01 00:00:00).
@pytest.mark.parametrize(
    ("row_id", "modified_at", "read"),
    [
        pytest.param(9001, "2026-10-30 22:00:00", True, id="at-extract-start-read"),
        pytest.param(9002, "2026-10-30 21:59:59", False, id="before-extract-start-not-read"),
        pytest.param(9003, "2026-10-31 23:59:59", True, id="second-before-end-read"),
        pytest.param(9004, "2026-11-01 00:00:00", False, id="at-window-end-not-read"),
    ],
)
def test_window_is_half_open_at_whole_second_bounds(
    source: Environment, tables: dict, row_id: int, modified_at: str, read: bool
) -> None:
    db = sqlite3.connect(source.source.host)
    with db:
        db.execute(
            "INSERT INTO nps (id, created_at, modified_at, score, deleted) VALUES (?, ?, ?, 7, 0)",
            (row_id, modified_at, modified_at),
        )
    db.close()

    extracted, _ = run(source, tables, "nps", 1)

    ids = {row["id"] for row in raw_rows(source, "nps")}
    assert (row_id in ids) is read
    assert extracted.rows == len(window_rows(source, "nps", interval(1)))


@pytest.mark.parametrize("table", INCREMENTAL)
def test_rerun_same_window_leaves_table_unchanged(source: Environment, tables: dict, table: str) -> None:
    run(source, tables, table, 0)
    run(source, tables, table, 1)
    before = raw_rows(source, table)
    assert len(before) == len(
        {tuple(r[k] for k in KEYS[table]) for i in (0, 1) for r in window_rows(source, table, interval(i))}
    )

    _, rerun = run(source, tables, table, 1)

    assert raw_rows(source, table) == before
    assert (rerun.rows_inserted, rerun.rows_replaced, rerun.rows_deleted) == (0, 0, 0)


# ------------------------------------------------------------------ changes over days


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


NPS_SCHEMA = pa.schema(
    [
        pa.field("id", pa.int32(), metadata={"source_type": "INT"}),
        pa.field("created_at", pa.timestamp("us"), metadata={"source_type": "DATETIME"}),
        pa.field("modified_at", pa.timestamp("us"), metadata={"source_type": "DATETIME"}),
        pa.field("score", pa.int16(), metadata={"source_type": "TINYINT"}),
        pa.field("deleted", pa.int16(), metadata={"source_type": "TINYINT(1)"}),
        pa.field("_batch_id", pa.string()),
        pa.field("_extracted_at", pa.timestamp("us")),
    ]
)


def test_extract_writes_the_schema_of_the_hand_made_batches(source: Environment, tables: dict) -> None:
    extracted = pipeline.run_extract(tables["nps"], interval(1), source)

    written = pq.read_schema(Path(extracted.manifest_url).parent / "part-00000.parquet")
    fields = written.remove_metadata()  # field metadata (source types) stays
    assert fields.equals(NPS_SCHEMA, check_metadata=True), f"{fields} != {NPS_SCHEMA}"
    # the batch-level facts the load relies on: nps.id is the SQLite table's primary key
    assert written.metadata[b"pipeline.unique_key"] == b"true"
    assert written.metadata[b"pipeline.batch_id"] == extracted.batch_id.encode()


def stage_batch(env: Environment, window: Window, batch_id: str, files: list[list[dict]]) -> str:
    """Write nps Parquet parts and their manifest the way an extract attempt does."""
    folder = Path(env.stage_uri) / "nps" / window.label / batch_id
    folder.mkdir(parents=True)
    entries = []
    for number, rows in enumerate(files):
        path = folder / f"part-{number:05d}.parquet"
        rows = [{**row, "_batch_id": batch_id} for row in rows]
        # One batch id; the rows' extract times differ, so none is recorded for the batch.
        schema = NPS_SCHEMA.with_metadata(Batch(batch_id, extracted_at=None).metadata())
        pq.write_table(pa.Table.from_pylist(rows, schema=schema), path)
        entries.append(ManifestEntry(str(path), path.stat().st_size, len(rows)))
    manifest = Manifest(url=str(folder / "manifest.json"), entries=tuple(entries))
    pipeline.environment_stage(env).write_manifest(manifest.url, manifest)
    return manifest.url


def nps_row(row_id: int, modified_at: str, score: int, extracted_at: str = "2026-10-31 01:00:00") -> dict:
    return {
        "id": row_id,
        "created_at": datetime(2026, 10, 30, 9, 0),
        "modified_at": datetime.fromisoformat(modified_at),
        "score": score,
        "deleted": 0,
        "_extracted_at": datetime.fromisoformat(extracted_at),
    }


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


def test_a_failing_part_write_fails_the_extract_and_leaves_no_manifest(
    source: Environment, tables: dict
) -> None:
    stage_root = Path(source.stage_uri)
    stage_root.mkdir(parents=True, exist_ok=True)
    (stage_root / "nps").write_text("a file where the table's folder must go")

    with pytest.raises(StageError, match="table 'nps': writing the stage"):
        pipeline.run_extract(tables["nps"], interval(0), source)

    assert not list(stage_root.rglob("manifest.json"))


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
    "straight-full-refresh": ("user_session_channel", True),  # DELETE, then into the table
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
        expected_audit = [{"table_name": "nps", "note": "kept"}]  # what break_audit_table leaves
    elif loaded_before:
        expected_audit = query(source, "select * from raw_data._load_audit")
        assert [(row["table_name"], row["window_start"]) for row in expected_audit] == [
            (table, interval(0).start)
        ]
    else:
        expected_audit = []

    caplog.clear()
    with caplog.at_level("INFO", logger="ingestion.load"), pytest.raises(LoadError):
        failed_load(source, tables, failure, table)

    straight = "bulk-loading into the table" in caplog.text
    assert straight == path.startswith("straight"), caplog.text
    assert raw_rows(source, table) == before
    assert query(source, "select * from raw_data._load_audit") == expected_audit


@pytest.mark.parametrize("table", list(KEYS))
def test_a_load_straight_into_the_table_equals_the_load_through_staging(
    source: Environment, tables: dict, table: str, caplog: pytest.LogCaptureFixture
) -> None:
    extracted = pipeline.run_extract(tables[table], interval(0), source)
    stage = pipeline.environment_stage(source)
    straight = open_warehouse(source.warehouse)
    staged = open_warehouse(source.warehouse)
    staged.loads_into_target = False  # the path of every Redshift load

    caplog.clear()
    with caplog.at_level("INFO", logger="ingestion.load"):
        load.load(tables[table], extracted.manifest_url, interval(0), straight, stage, raw_schema="raw_a")
        assert "bulk-loading into the table" in caplog.text
        caplog.clear()
        load.load(tables[table], extracted.manifest_url, interval(0), staged, stage, raw_schema="raw_b")
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
    assert (result.rows_deleted, result.rows_inserted) == (300, 299)


def test_full_refresh_rerun_keeps_business_columns(source: Environment, tables: dict) -> None:
    run(source, tables, "user_session_channel", 2)
    first = raw_rows(source, "user_session_channel")

    run(source, tables, "user_session_channel", 2)

    second = raw_rows(source, "user_session_channel")
    assert business(second) == business(first) == source_rows(source, "user_session_channel")
    assert {row["_batch_id"] for row in second}.isdisjoint({row["_batch_id"] for row in first})


# ------------------------------------------------------------------ windows and audit


@pytest.mark.parametrize(
    ("start", "end"),
    [
        pytest.param("2026-10-30T00:00:00", "2026-10-30T00:00:00", id="zero-length"),
        pytest.param("2026-10-31T00:00:00", "2026-10-30T00:00:00", id="end-before-start"),
        pytest.param("2026-10-30T02:00:00+02:00", "2026-10-30T00:00:00Z", id="same-instant-two-zones"),
    ],
)
def test_empty_window_is_refused(start: str, end: str) -> None:
    with pytest.raises(ConfigError) as raised:
        Window.parse(start, end)

    assert "is empty" in str(raised.value)
    assert "data interval 2026-10-" in str(raised.value)


@pytest.mark.parametrize("table", INCREMENTAL)
def test_window_without_rows_loads_nothing_and_writes_an_audit_row(
    source: Environment, tables: dict, table: str
) -> None:
    window = Window(datetime(2027, 1, 1), datetime(2027, 1, 2))

    extracted, result = pipeline.run_table(tables[table], window, source)

    assert raw_rows(source, table) == []
    assert (extracted.rows, extracted.files, result.rows_staged, result.rows_inserted) == (0, 1, 0, 0)
    audit = audit_rows(source)
    assert len(audit) == 1
    assert (audit[0]["table_name"], audit[0]["window_start"], audit[0]["window_end"]) == (
        table,
        datetime(2027, 1, 1),
        datetime(2027, 1, 2),
    )
    assert (audit[0]["rows_staged"], audit[0]["rows_inserted"], audit[0]["files"]) == (0, 0, 1)


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


# ------------------------------------------------------------------ command line


def cli(data_dir: Path, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW_CONN_", "PIPELINE_"))}
    env["PIPELINE_DATA_DIR"] = str(data_dir)
    return subprocess.run(
        [sys.executable, "-m", "ingestion", *args],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


def test_cli_run_prints_the_row_counts(source: Environment) -> None:
    expected = len(window_rows(source, "nps", interval(1)))

    done = cli(source.data_dir, "run", "nps", "--start", "2026-10-31", "--end", "2026-11-01")

    assert done.returncode == 0, done.stderr
    output = json.loads(done.stdout)
    assert output["extract"]["rows"] == expected
    assert output["load"]["table"] == "nps"
    assert output["load"]["rows_staged"] == expected
    assert output["load"]["rows_inserted"] == expected
    assert len(raw_rows(source, "nps")) == expected


BAD_CONFIG = "tables:\n  - name: nps\n    primary_key: id\n    mode: incremental\n    cursor: modified_at\n"


@pytest.mark.parametrize(
    ("args", "config_text", "fragments"),
    [
        pytest.param(
            ["run", "nosuch"],
            None,
            ["table 'nosuch' is not in the table config", "known: nps, session_timestamp"],
            id="unknown-table",
        ),
        pytest.param(
            ["run", "nps"],
            BAD_CONFIG + "    lookbak: 2h\n",
            ["table 'nps'", "unknown key(s) lookbak"],
            id="unknown-key-in-config",
        ),
        pytest.param(
            ["run", "nps"],
            BAD_CONFIG.replace("cursor: modified_at", "cursor: modified_at; drop table x"),
            ["table 'nps'", "cursor 'modified_at; drop table x'", "not a plain identifier"],
            id="identifier-in-config",
        ),
    ],
)
def test_cli_error_exits_2_and_names_the_entry(
    source: Environment, tmp_path: Path, args: list[str], config_text: str | None, fragments: list[str]
) -> None:
    options = []
    if config_text is not None:
        (tmp_path / "bad.yml").write_text(config_text)
        options = ["--config", str(tmp_path / "bad.yml")]

    done = cli(source.data_dir, *options, *args, "--start", "2026-10-31", "--end", "2026-11-01")

    assert done.returncode == 2
    assert done.stdout == ""
    for fragment in fragments:
        assert fragment in done.stderr
    assert not (source.data_dir / "warehouse.duckdb").exists()


def test_cli_refuses_an_empty_window(source: Environment) -> None:
    done = cli(source.data_dir, "run", "nps", "--start", "2026-10-31", "--end", "2026-10-31")

    assert done.returncode == 2
    assert "is empty" in done.stderr
    assert not (source.data_dir / "warehouse.duckdb").exists()


# ------------------------------------------------------------------ demo data generator


def all_source_rows(env: Environment) -> dict[str, list[dict]]:
    return {table: source_rows(env, table) for table in generate.TABLES}


def environment_in(folder: Path) -> Environment:
    return Environment(
        name="embedded", source=Connection("pipeline_source", "sqlite", host=str(folder / "source.sqlite")),
        warehouse=Connection("pipeline_warehouse", "duckdb", host=str(folder / "warehouse.duckdb")),
        stage_uri=str(folder / "stage"), aws=None, data_dir=folder,
    )  # fmt: skip


def test_generator_same_seed_and_size_give_identical_rows(tmp_path: Path) -> None:
    first, second, other_seed = (environment_in(tmp_path / name) for name in ("a", "b", "c"))
    generate.generate(first.source, SPEC, 2)
    generate.generate(second.source, SPEC, 2)
    generate.generate(other_seed.source, DemoSpec(seed=7, size=100), 2)

    assert all_source_rows(first) == all_source_rows(second)
    assert all_source_rows(first) != all_source_rows(other_seed)
    assert len(all_source_rows(first)["session_timestamp"]) == 200


def test_generator_days_added_one_by_one_equal_days_written_at_once(tmp_path: Path) -> None:
    at_once, one_by_one = environment_in(tmp_path / "a"), environment_in(tmp_path / "b")
    generate.generate(at_once.source, SPEC, 3)
    for index in range(3):
        generate.generate(one_by_one.source, SPEC, 1, first_day=index, recreate=index == 0)

    assert all_source_rows(one_by_one) == all_source_rows(at_once)


def test_generator_later_days_update_and_soft_delete_earlier_rows(tmp_path: Path) -> None:
    day0, day2 = environment_in(tmp_path / "a"), environment_in(tmp_path / "b")
    generate.generate(day0.source, SPEC, 1)
    generate.generate(day2.source, SPEC, 3)
    first = {row["id"]: row for row in source_rows(day0, "nps")}
    later = {row["id"]: row for row in source_rows(day2, "nps")}

    assert sorted(first) == list(range(1, 11))
    assert sorted(later) == list(range(1, 31))
    assert not [row for row in first.values() if row["deleted"]]
    changed = [later[i] for i in first if later[i] != first[i]]
    assert changed, "days 1 and 2 must update rows of day 0"
    for row in changed:
        assert row["created_at"] == first[row["id"]]["created_at"]
        assert row["modified_at"] >= interval(1).start
    deleted = [row for row in later.values() if row["deleted"] == 1]
    assert deleted, "days 1 and 2 must soft-delete some earlier rows"
    assert all(row["modified_at"].date() > row["created_at"].date() for row in deleted)
    assert all(0 <= row["score"] <= 10 for row in later.values())
