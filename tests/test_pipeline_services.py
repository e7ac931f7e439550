"""The production path on real services: MariaDB → S3 server → PostgreSQL.

Every expectation is read from MariaDB with plain SQL, or written out literally.
"""

from __future__ import annotations

import io
import json
import logging
from datetime import date, datetime, timedelta
from decimal import Decimal

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from devtools import generate
from ingestion import config
from ingestion.environments import Environment
from ingestion.errors import LoadError
from ingestion.load import load
from ingestion.pipeline import environment_stage, open_source, run_extract, run_load, run_table
from ingestion.warehouse import open_warehouse
from ingestion.window import Window
from tests.services_helpers import warehouse_rows

pytestmark = pytest.mark.services

START = date(2026, 10, 30)
COLUMNS = {
    "nps": "id, created_at, modified_at, score, deleted",
    "session_timestamp": "sessionid, ts",
    "user_session_channel": "userid, sessionid, channel",
}


def day_window(day: int) -> Window:
    start = datetime.combine(START + timedelta(days=day), datetime.min.time())
    return Window(start, start + timedelta(days=1))


def mysql_rows(mysql_db, sql: str) -> list[tuple]:
    with mysql_db.admin.cursor() as cursor:
        cursor.execute(sql)
        return list(cursor.fetchall())


@pytest.fixture
def demo_source(services: Environment) -> Environment:
    generate.generate(services.source, generate.DemoSpec(size=200), days=3)
    return services


@pytest.mark.parametrize("table_name", list(COLUMNS))
def test_three_intervals_land_every_source_row_exactly_once(demo_source, mysql_db, table_name):
    table = config.get_table(table_name)
    for day in range(3):
        run_table(table, day_window(day), demo_source)
    columns = COLUMNS[table_name]
    raw = warehouse_rows(demo_source, f"select {columns} from raw_data.{table_name} order by 1, 2")
    source = mysql_rows(mysql_db, f"select {columns} from {table_name} order by 1, 2")
    assert sorted(raw) == sorted(source)
    key = table.primary_key[0]
    dupes = warehouse_rows(
        demo_source, f"select {key} from raw_data.{table_name} group by {key} having count(*) > 1"
    )
    assert dupes == []


@pytest.mark.parametrize("table_name", ["nps", "session_timestamp"])
def test_rerun_of_a_window_is_a_no_op(demo_source, table_name):
    table = config.get_table(table_name)
    run_table(table, day_window(0), demo_source)
    run_table(table, day_window(1), demo_source)
    before = warehouse_rows(demo_source, f"select * from raw_data.{table_name} order by 1")
    extracted, loaded = run_table(table, day_window(1), demo_source)
    assert extracted.rows > 0 and loaded.rows_inserted == 0
    assert warehouse_rows(demo_source, f"select * from raw_data.{table_name} order by 1") == before


def test_a_row_updated_later_replaces_the_stored_version(services, mysql_db):
    spec = generate.DemoSpec(size=200)
    generate.generate(services.source, spec, days=1)
    nps = config.get_table("nps")
    run_table(nps, day_window(0), services)
    generate.generate(services.source, spec, days=1, first_day=1, recreate=False)
    updated = generate.day_changes(spec, 1).nps_updates
    assert updated
    score, deleted, modified_at, row_id = updated[-1]
    run_table(nps, day_window(1), services)
    assert warehouse_rows(
        services, f"select score, deleted, modified_at from raw_data.nps where id = {row_id}"
    ) == [(score, deleted, modified_at)]


def test_stale_files_of_a_failed_attempt_are_not_loaded(demo_source):
    table = config.get_table("nps")
    window = day_window(0)
    stage = environment_stage(demo_source)
    extracted = run_extract(table, window, demo_source)
    schema = stage.open_parquet(f"{extracted.manifest_url.rsplit('/', 1)[0]}/part-00000.parquet").schema_arrow
    bogus = pa.table(
        {
            "id": pa.array([990001, 990002], pa.int32()),
            "created_at": pa.array([datetime(2026, 10, 30, 1)] * 2, pa.timestamp("us")),
            "modified_at": pa.array([datetime(2026, 10, 30, 1)] * 2, pa.timestamp("us")),
            "score": pa.array([10, 10], pa.int16()),
            "deleted": pa.array([0, 0], pa.int16()),
            "_batch_id": ["failed-attempt"] * 2,
            "_extracted_at": pa.array([datetime(2026, 10, 31)] * 2, pa.timestamp("us")),
        },
        schema=schema,
    )
    prefix = extracted.manifest_url.rsplit("/", 2)[0]
    for url in (
        f"{prefix}/19990101T000000Z-dead/part-00000.parquet",  # an earlier attempt
        f"{extracted.manifest_url.rsplit('/', 1)[0]}/part-00099.parquet",
    ):  # not in the manifest
        sink = io.BytesIO()
        pq.write_table(bogus, sink)
        with stage.open_output(url) as stream:
            stream.write(sink.getvalue())
    run_load(table, extracted.manifest_url, window, demo_source)
    assert warehouse_rows(demo_source, "select count(*) from raw_data.nps where id >= 990001") == [(0,)]
    assert warehouse_rows(demo_source, "select count(*) from raw_data.nps") == [(extracted.rows,)]


@pytest.mark.parametrize(
    "table_name",
    [
        pytest.param("nps", id="merge-into-rows"),  # an incremental batch into a table with rows
        pytest.param("user_session_channel", id="merge-full-refresh"),  # a full refresh into rows merges
    ],
)
@pytest.mark.parametrize("failure", ["before-commit", "audit-insert-fails"])
def test_a_failure_between_copy_and_commit_leaves_raw_data_unchanged(demo_source, failure, table_name):
    table = config.get_table(table_name)
    run_table(table, day_window(0), demo_source)
    everything = f"select * from raw_data.{table_name} order by 1, 2"
    before = warehouse_rows(demo_source, everything)
    assert before
    succeeded = "select * from raw_data._load_audit where status = 'succeeded'"
    audit_before = warehouse_rows(demo_source, succeeded)
    extracted = run_extract(table, day_window(1), demo_source)

    hook = None
    if failure == "before-commit":

        def hook() -> None:
            raise RuntimeError("injected failure after the merge")
    else:
        db = open_warehouse(demo_source.warehouse).connect()
        db.cursor().execute(  # existing rows stay valid; the next audit insert fails
            "alter table raw_data._load_audit add constraint refuse check (rows_staged < 0) not valid"
        )
        db.commit()
        db.close()
    with pytest.raises(LoadError, match=f"raw_data.{table_name}"):
        load(table, extracted.manifest_url, day_window(1), open_warehouse(demo_source.warehouse),
             environment_stage(demo_source), before_commit=hook)  # fmt: skip
    assert warehouse_rows(demo_source, everything) == before
    assert warehouse_rows(demo_source, succeeded) == audit_before
    failed = "select table_name, error_class from raw_data._load_audit where status = 'failed'"
    error_class = "RuntimeError" if failure == "before-commit" else "CheckViolation"
    # the failed row (rows_staged NULL) passes the check that refused the load's own audit row
    assert warehouse_rows(demo_source, failed) == [(table_name, error_class)]


@pytest.mark.parametrize("table_name", list(COLUMNS))
def test_a_load_straight_into_the_table_equals_the_load_through_staging(demo_source, table_name, caplog):
    """PostgreSQL's two paths (Redshift always stages) give the same rows."""
    table = config.get_table(table_name)
    extracted = run_extract(table, day_window(0), demo_source)
    stage = environment_stage(demo_source)
    warehouse = open_warehouse(demo_source.warehouse)

    caplog.clear()
    with caplog.at_level(logging.INFO, logger="ingestion.load"):
        load(table, extracted.manifest_url, day_window(0), warehouse, stage, raw_schema="raw_a")
        assert "bulk-loading into the table" in caplog.text
        caplog.clear()
        load(
            table, extracted.manifest_url, day_window(0), warehouse, stage, raw_schema="raw_b",
            force_staging=True,
        )  # fmt: skip
        assert "bulk-loading into the table" not in caplog.text

    columns = f"{COLUMNS[table_name]}, _batch_id, _extracted_at"
    rows_a = warehouse_rows(demo_source, f"select {columns} from raw_a.{table_name} order by 1, 2")
    rows_b = warehouse_rows(demo_source, f"select {columns} from raw_b.{table_name} order by 1, 2")
    assert rows_a == rows_b
    assert len(rows_a) == extracted.rows > 0
    for schema in ("raw_a", "raw_b"):  # one _loaded_at per load, in every row
        stamps = f"select count(distinct _loaded_at), count(*) from {schema}.{table_name}"
        assert warehouse_rows(demo_source, stamps) == [(1, extracted.rows)]


def test_an_incremental_batch_into_a_table_with_rows_is_merged_through_staging(demo_source, caplog):
    table = config.get_table("nps")
    run_table(table, day_window(0), demo_source)
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="ingestion.load"):
        _, loaded = run_table(table, day_window(1), demo_source)
    assert "bulk-loading into the table" not in caplog.text
    assert loaded.rows_staged > 0


TYPE_CASES_DDL = """
create table type_cases (
    id int primary key,
    flag tinyint(1),
    big bigint unsigned,
    amount decimal(18, 4),
    happened_at datetime(6),
    stamped_at timestamp null,
    day date,
    label varchar(16),
    body longtext
)
"""

LONG_TEXT = "é" * 300_000 + "🙂" * 100_000


@pytest.mark.parametrize("straight", [True, False], ids=["straight-into-table", "through-staging"])
def test_type_cases_round_trip_exactly_into_postgres(services, mysql_db, straight):
    mysql_db.execute("set session sql_mode = ''")
    mysql_db.execute("set session time_zone = '+00:00'")
    mysql_db.execute(TYPE_CASES_DDL)
    rows = [
        (1, 0, 0, "0.0000", "2026-10-30 00:00:00.000000", "2026-10-30 00:00:00", "2026-10-30", "", ""),
        (2, 1, 18446744073709551615, "12345678901234.5678", "2026-10-30 23:59:59.999999",
         "2038-01-19 03:14:07", "1000-01-01", "🙂 emoji", LONG_TEXT),
        (3, 2, 1, "-0.0001", "0000-00-00 00:00:00", "0000-00-00 00:00:00", "0000-00-00", "NULL", "x"),
        (4, None, None, None, None, None, None, None, None),
    ]  # fmt: skip
    mysql_db.executemany("insert into type_cases values (%s, %s, %s, %s, %s, %s, %s, %s, %s)", rows)
    table = config.parse_table({"name": "type_cases", "primary_key": "id", "mode": "full_refresh"}, 0)
    extracted = run_extract(table, day_window(0), services)
    warehouse = open_warehouse(services.warehouse)
    load(
        table, extracted.manifest_url, day_window(0), warehouse, environment_stage(services),
        force_staging=not straight,
    )  # fmt: skip

    loaded = warehouse_rows(services, "select * from raw_data.type_cases order by id")
    assert [row[:9] for row in loaded] == [
        (1, 0, Decimal(0), Decimal("0.0000"), datetime(2026, 10, 30), datetime(2026, 10, 30),
         date(2026, 10, 30), "", ""),
        (2, 1, Decimal(18446744073709551615), Decimal("12345678901234.5678"),
         datetime(2026, 10, 30, 23, 59, 59, 999999), datetime(2038, 1, 19, 3, 14, 7), date(1000, 1, 1),
         "🙂 emoji", LONG_TEXT),
        (3, 2, Decimal(1), Decimal("-0.0001"), None, None, None, "NULL", "x"),
        (4, None, None, None, None, None, None, None, None),
    ]  # fmt: skip
    types = dict(
        warehouse_rows(
            services,
            "select column_name, data_type from information_schema.columns "
            "where table_schema = 'raw_data' and table_name = 'type_cases'",
        )
    )
    assert types["flag"] == "smallint"
    assert types["big"] == "numeric"
    assert types["label"] == "character varying"


def test_source_reads_one_snapshot_while_the_table_changes(services, mysql_db):
    """Rows committed after the extract started are not half-read."""
    generate.generate(services.source, generate.DemoSpec(size=50), days=1)
    table = config.get_table("user_session_channel")
    source = open_source(services.source)
    columns = source.columns(table)
    batches = source.read(table, columns, day_window(0), 10)
    first = next(batches)
    writer = mysql_db.connect()
    writer.cursor().execute("insert into user_session_channel values (1, 'zz-late-session', 'Organic')")
    writer.close()
    total = first.num_rows + sum(b.num_rows for b in batches)
    source.close()
    assert total == 50


def test_manifest_in_s3_is_a_redshift_copy_manifest(demo_source):
    extracted = run_extract(config.get_table("nps"), day_window(0), demo_source)
    stage = environment_stage(demo_source)
    with stage.filesystem.open_input_stream(stage.path(extracted.manifest_url)) as stream:
        manifest = json.loads(stream.read())
    assert [set(entry) for entry in manifest["entries"]] == [{"url", "mandatory", "meta"}]
    entry = manifest["entries"][0]
    assert entry["url"].startswith("s3://") and entry["mandatory"] is True
    assert entry["meta"]["record_count"] == extracted.rows
    assert entry["meta"]["content_length"] == stage.filesystem.get_file_info(stage.path(entry["url"])).size


def test_first_loads_of_all_tables_in_parallel_all_succeed(demo_source, mysql_db):
    """Parallel workers creating raw_data and the audit table at once do not race."""
    from concurrent.futures import ThreadPoolExecutor

    tables = [config.get_table(name) for name in COLUMNS]
    with ThreadPoolExecutor(max_workers=len(tables)) as pool:
        results = list(pool.map(lambda table: run_table(table, day_window(0), demo_source), tables))
    assert [loaded.table for _, loaded in results] == list(COLUMNS)
    audit = warehouse_rows(demo_source, "select table_name from raw_data._load_audit order by 1")
    assert audit == [(name,) for name in sorted(COLUMNS)]


def test_a_key_that_is_not_unique_in_the_source_is_deduplicated_to_the_latest_row(services, mysql_db):
    mysql_db.execute("create table events (event_key int not null, changed_at datetime not null, v text)")
    mysql_db.executemany(
        "insert into events values (%s, %s, %s)",
        [
            (1, "2026-10-30 01:00:00", "old"),
            (1, "2026-10-30 05:00:00", "new"),
            (2, "2026-10-30 02:00:00", "b"),
        ],
    )
    table = config.parse_table(
        {"name": "events", "primary_key": "event_key", "mode": "incremental", "cursor": "changed_at"}, 0
    )
    source = open_source(services.source)
    assert source.key_is_unique(table) is False
    source.close()
    run_table(table, day_window(0), services)
    assert warehouse_rows(services, "select event_key, v from raw_data.events order by 1") == [
        (1, "new"),
        (2, "b"),
    ]


def test_the_source_primary_key_is_recognised_as_unique(demo_source):
    source = open_source(demo_source.source)
    try:
        assert all(source.key_is_unique(config.get_table(name)) for name in COLUMNS)
    finally:
        source.close()
