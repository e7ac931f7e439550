"""The DuckDB dialect's own answers: a table's column types, and the bulk-load's setting.

Expected types are written out literally (``column_type``'s spelling); the file is read
back with ``duckdb``.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from ingestion.connection import Connection
from ingestion.stage import Manifest, ManifestEntry, open_stage
from ingestion.warehouse import StagedBatch
from ingestion.warehouse.duckdb import DuckDBWarehouse


def warehouse(tmp_path: Path) -> DuckDBWarehouse:
    return DuckDBWarehouse(Connection("w", "duckdb", host=str(tmp_path / "warehouse.duckdb")))


def test_table_column_types_are_the_tables_in_order_in_column_type_spelling(tmp_path: Path) -> None:
    dw = warehouse(tmp_path)
    db = dw.connect()
    try:
        db.execute("create schema raw_data")
        db.execute(
            'create table raw_data.t (id integer, "Odd ""name""" smallint, big bigint, price decimal(8, 2), '
            "ratio real, score double, note varchar, seen timestamp, day date, data blob)"
        )
        # The same table name in another schema and in an attached file: not this table's columns.
        db.execute("create schema other")
        db.execute("create table other.t (elsewhere integer)")
        db.execute(f"attach '{tmp_path / 'other.duckdb'}' as second")
        db.execute("create schema second.raw_data")
        db.execute("create table second.raw_data.t (attached integer)")
        types = dw.table_column_types(db, "raw_data", "t")
        missing = dw.table_column_types(db, "raw_data", "absent")
    finally:
        db.close()

    assert types == [
        ("id", "integer"),
        ('Odd "name"', "smallint"),
        ("big", "bigint"),
        ("price", "decimal(8, 2)"),
        ("ratio", "real"),
        ("score", "double precision"),
        ("note", "varchar"),
        ("seen", "timestamp"),
        ("day", "date"),
        ("data", "blob"),
    ]
    assert missing == []


def test_bulk_load_leaves_the_connections_insertion_order_setting_as_it_was(tmp_path: Path) -> None:
    rows = [{"id": n, "note": f"n{n}"} for n in range(1, 6)]
    path = tmp_path / "stage" / "part-00000.parquet"
    path.parent.mkdir()
    schema = pa.schema([("id", pa.int32()), ("note", pa.string())])
    pq.write_table(pa.Table.from_pylist(rows, schema=schema), path)
    manifest = Manifest(url=str(path.parent / "manifest.json"), entries=(ManifestEntry(str(path), 1, 5),))
    loaded_at = datetime(2026, 10, 31, 1, 2, 3)
    batch = StagedBatch(
        manifest, open_stage(str(tmp_path / "stage")), ["id", "note", "_loaded_at"],
        {"_loaded_at": pa.scalar(loaded_at, pa.timestamp("us"))},
    )  # fmt: skip
    dw = warehouse(tmp_path)
    db = dw.connect()
    try:
        db.execute("create table t (id integer, note varchar, _loaded_at timestamp)")
        setting = "select current_setting('preserve_insertion_order')"
        before = db.execute(setting).fetchone()[0]
        loaded = dw.bulk_load(db, "t", batch)
        after = db.execute(setting).fetchone()[0]
        stored = db.execute("select id, note, _loaded_at from t order by id").fetchall()
    finally:
        db.close()

    assert before is True
    assert after is True
    assert loaded == 5
    assert stored == [(n, f"n{n}", loaded_at) for n in range(1, 6)]


def test_a_second_connection_to_the_file_keeps_the_default_during_a_bulk_load(tmp_path: Path) -> None:
    """The setting is the load's connection's (``set session``), not the database's."""
    dw = warehouse(tmp_path)
    db = dw.connect()
    other = duckdb.connect(dw.path)
    try:
        db.execute("set session preserve_insertion_order = false")
        seen = other.execute("select current_setting('preserve_insertion_order')").fetchone()[0]
    finally:
        other.close()
        db.close()
    assert seen is True
