"""Chunked extract: key ranges balanced by row count, every key landing exactly once.

Expectations are written out literally or computed from the rows the test inserts;
the warehouse is read back with plain SQL.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from dataclasses import replace
from datetime import datetime, timedelta
from decimal import Decimal

import pytest

from ingestion import chunks, config, pipeline
from ingestion.config import parse_table
from ingestion.errors import ConfigError, LoadError, SourceError
from ingestion.keyrange import KeyRange, offsets
from ingestion.sources import timeout
from ingestion.stage import Manifest, ManifestEntry
from ingestion.types import Column
from ingestion.window import Window
from tests.embedded_helpers import business, interval, raw_rows, source_rows
from tests.services_helpers import warehouse_one

REPO_ROOT = config.DEFAULT_CONFIG_PATH.parent.parent
DAY = Window(datetime(2026, 10, 30), datetime(2026, 10, 31))


@pytest.mark.parametrize(
    "rows, chunks_wanted, expected",
    [(10, 4, [3, 5, 8]), (2, 4, [1]), (0, 4, []), (5, 1, []), (4, 4, [1, 2, 3])],
)
def test_offsets_split_the_rows_evenly(rows, chunks_wanted, expected):
    assert offsets(rows, chunks_wanted) == expected


@pytest.mark.parametrize("value", [0, 65, "2", True, 1.5])
def test_chunks_setting_must_be_a_whole_number_from_1_to_64(value):
    with pytest.raises(ConfigError, match=r"table 'nps': chunks .* must be a whole number from 1 to 64"):
        parse_table({"name": "nps", "primary_key": "id", "mode": "full_refresh", "chunks": value}, 0)
    assert parse_table({"name": "nps", "primary_key": "id", "mode": "full_refresh"}, 0).chunks == 1


def test_composite_key_range_is_written_out_in_key_order_and_survives_json():
    key = [Column("k", "varchar(10)"), Column("n", "bigint(20) unsigned")]
    key_range = KeyRange(("a", 2**64 - 1), ("b", 0))
    assert KeyRange.from_json(json.loads(json.dumps(key_range.to_json()))) == key_range
    conditions, params = key_range.predicate(key, lambda name: f'"{name}"', "?")
    assert conditions == [
        '("k" > ? OR ("k" = ? AND "n" >= ?))',
        '("k" < ? OR ("k" = ? AND "n" < ?))',
    ]
    assert params == ["a", "a", 2**64 - 1, "b", "b", 0]


def test_combine_needs_every_chunk_of_one_batch_exactly_once(embedded):
    stage = pipeline.environment_stage(embedded)
    table = parse_table({"name": "nps", "primary_key": "id", "mode": "full_refresh"}, 0)
    batch = stage.url("nps", DAY.label, "20261031T000000Z-00000000")
    urls = []
    for number in range(2):
        url = f"{batch}/chunk-{number:03d}-of-002-ab12/manifest.json"
        stage.write_manifest(url, Manifest(url, (ManifestEntry(f"{url}.part", 10, number + 1),)))
        urls.append(url)
    combined = chunks.combine(table, stage, list(reversed(urls)))
    assert combined == f"{batch}/manifest.json"
    assert [e.record_count for e in stage.read_manifest(combined).entries] == [1, 2]
    for wrong in ([urls[0]], [urls[0], urls[0], urls[1]], [*urls, f"{batch}/manifest.json"]):
        with pytest.raises(LoadError, match="table 'nps'"):
            chunks.combine(table, stage, wrong)


def test_chunked_runs_land_the_same_rows_as_the_source_embedded(source, tables):
    for name, table in tables.items():
        for day in range(3):
            extracted, loaded = pipeline.run_table(replace(table, chunks=3), interval(day), source)
            assert loaded.batch_id == extracted.batch_id
        assert business(raw_rows(source, name)) == business(source_rows(source, name)), name


def test_chunked_incremental_table_flags_rows_deleted_at_the_source(source, tables):
    table = replace(tables["session_timestamp"], chunks=3, hard_deletes="reconcile")
    pipeline.run_table(table, interval(0), source)
    gone = source_rows(source, "session_timestamp")[0]["sessionid"]
    with sqlite3.connect(source.source.host) as db:
        db.execute("DELETE FROM session_timestamp WHERE sessionid = ?", (gone,))
    pipeline.run_table(table, interval(1), source)
    flagged = [row["sessionid"] for row in raw_rows(source, "session_timestamp") if row["_deleted_at"]]
    assert flagged == [gone]


def test_cli_runs_a_chunked_extract_with_chunks_option(source, tmp_path):
    command = [sys.executable, "-m", "ingestion", "--env", "embedded", "run", "user_session_channel"]
    window = ["--start", "2026-10-30", "--end", "2026-10-31", "--chunks", "4"]
    env = {"PIPELINE_DATA_DIR": str(source.data_dir), "PATH": "/usr/bin:/bin"}
    done = subprocess.run(
        [*command, *window], env=env, cwd=REPO_ROOT, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout)
    assert result["load"]["rows_staged"] == len(source_rows(source, "user_session_channel")) == 300
    assert done.stderr.count("chunk ") >= 4 and "combine user_session_channel: 4 chunk(s)" in done.stderr


# ------------------------------------------------------------------ MariaDB, S3, PostgreSQL


N = 41  # rows per key-type table: 4 chunks of 10 or 11
CI_WORDS = [f"{'aBcDéF'[i % 6]}{i:03d}" for i in range(N)]  # utf8mb4_unicode_ci order is not Python's
KEY_TYPES = {
    "int": (["k INT"], [(i * i,) for i in range(N)]),
    "bigint_unsigned": (["k BIGINT UNSIGNED"], [(2**64 - 1 - i * 2**58,) for i in range(N)]),
    "varchar_ci": (["k VARCHAR(20)"], [(w,) for w in CI_WORDS]),
    "decimal_beyond_double": (["k DECIMAL(20,2)"], [(Decimal(10**17) + Decimal(i) / 100,) for i in range(N)]),
    "datetime": (["k DATETIME"], [(datetime(2026, 1, 1) + timedelta(minutes=7 * i),) for i in range(N)]),
    "composite": (["k VARCHAR(5)", "n INT"], [(CI_WORDS[i % 3], i) for i in range(N)]),
}


@pytest.mark.parametrize("kind", list(KEY_TYPES))
def test_every_key_type_splits_into_balanced_chunks_landing_each_key_once(services, mysql_db, kind):
    columns, keys = KEY_TYPES[kind]
    names = [c.split()[0] for c in columns]
    mysql_db.execute(
        f"CREATE TABLE t ({', '.join(columns)}, v INT NOT NULL, PRIMARY KEY ({', '.join(names)}))"
    )
    marks = ", ".join(["%s"] * (len(names) + 1))
    mysql_db.executemany(f"INSERT INTO t VALUES ({marks})", [(*key, v) for v, key in enumerate(keys)])
    table = parse_table({"name": "t", "primary_key": names, "mode": "full_refresh", "chunks": 4}, 0)

    planned = pipeline.plan_chunks(table, DAY, services)
    planned = [chunks.Chunk.from_json(json.loads(json.dumps(c.to_json()))) for c in planned]  # as XCom
    results = [pipeline.run_chunk(table, chunk, services) for chunk in planned]
    assert sorted(r.rows for r in results) == [10, 10, 10, 11]  # balanced by rows, in SQL's order
    manifest_url = chunks.combine(
        table, pipeline.environment_stage(services), [r.manifest_url for r in results]
    )
    loaded = pipeline.run_load(table, manifest_url, DAY, services)
    assert loaded.rows_staged == N and loaded.batch_id == planned[0].batch.batch_id
    key = ", ".join(names)
    counted = warehouse_one(services, f"select count(*), count(distinct ({key})), sum(v) from raw_data.t")
    assert counted == (N, N, N * (N - 1) // 2)


def test_rows_changed_between_chunk_reads_land_at_most_once(services, mysql_db):
    """Three chunks of ids 1-10, 11-20, 21-30; rows change after the first chunk is read."""
    mysql_db.execute("CREATE TABLE o (id INT PRIMARY KEY, modified_at DATETIME NOT NULL, score INT NOT NULL)")
    in_window = datetime(2026, 10, 30, 10, 0)
    mysql_db.executemany("INSERT INTO o VALUES (%s, %s, %s)", [(i, in_window, i) for i in range(1, 31)])
    table = parse_table(
        {"name": "o", "primary_key": "id", "mode": "incremental", "cursor": "modified_at", "chunks": 3}, 0
    )
    planned = pipeline.plan_chunks(table, DAY, services)
    assert [c.key_range for c in planned] == [
        KeyRange(None, (11,)),
        KeyRange((11,), (21,)),
        KeyRange((21,), None),
    ]
    first = pipeline.run_chunk(table, planned[0], services)

    next_day = datetime(2026, 10, 31, 0, 5)
    mysql_db.execute("UPDATE o SET score = 500, modified_at = %s WHERE id = 5", (next_day,))  # read already
    mysql_db.execute("UPDATE o SET score = 2500 WHERE id = 25")  # not read yet, still in the window
    mysql_db.execute("UPDATE o SET modified_at = %s WHERE id = 22", (next_day,))  # leaves the window
    mysql_db.execute("DELETE FROM o WHERE id = 15")
    mysql_db.execute("INSERT INTO o VALUES (31, %s, 31)", (in_window,))

    rest = [pipeline.run_chunk(table, chunk, services) for chunk in planned[1:]]
    stage = pipeline.environment_stage(services)
    manifest_url = chunks.combine(table, stage, [first.manifest_url, *(r.manifest_url for r in rest)])
    pipeline.run_load(table, manifest_url, DAY, services)
    expected_ids = sorted(set(range(1, 32)) - {15, 22})
    assert warehouse_one(services, "select count(*), count(distinct id) from raw_data.o") == (29, 29)
    assert warehouse_one(services, "select array_agg(id order by id) from raw_data.o") == (expected_ids,)
    scores = "select array_agg(score order by id) from raw_data.o where id in (5, 25)"
    assert warehouse_one(services, scores) == ([5, 2500],)  # id 5 as its chunk's snapshot saw it

    # The next interval's extract reads the rows whose cursor moved into it.
    pipeline.run_table(table, Window(DAY.end, DAY.end + timedelta(days=1)), services)
    assert warehouse_one(services, "select count(*), count(distinct id) from raw_data.o") == (30, 30)
    assert warehouse_one(services, scores) == ([500, 2500],)


def test_query_timeout_stops_a_slow_source_query_with_a_retryable_error(services, mysql_db):
    mysql_db.execute("CREATE TABLE base (id INT PRIMARY KEY)")
    mysql_db.executemany("INSERT INTO base VALUES (%s)", [(i,) for i in range(100)])
    mysql_db.execute("CREATE VIEW slow AS SELECT id, SLEEP(0.05) AS pause FROM base")  # 5 s in all
    source = replace(services.source, extra={"query_timeout": 0.5})
    table = parse_table({"name": "slow", "primary_key": "id", "mode": "full_refresh"}, 0)
    started = datetime.now()
    with pytest.raises(
        SourceError, match=r"table 'slow': .* stopped by the source's query timeout \(0.5 s"
    ) as info:
        pipeline.run_extract(table, DAY, replace(services, source=source))
    assert info.value.retryable
    assert datetime.now() - started < timedelta(seconds=4)


@pytest.mark.parametrize(
    "version, expected",
    [
        ("10.11.19-MariaDB-0+deb12u1", "SET SESSION max_statement_time = 2.500"),
        ("8.0.36", "SET SESSION max_execution_time = 2500"),
    ],
)
def test_query_timeout_uses_the_servers_own_setting(version, expected):
    assert timeout.session_sql(version, 2.5) == expected
