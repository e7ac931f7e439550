"""Hostile names never become SQL: tables and columns named with quotes, backticks,
semicolons, spaces, reserved words, percent signs and non-ASCII letters round-trip
exactly, and a name that embeds ``DROP TABLE`` drops nothing.

Every expected value is the literal inserted here; the warehouses are read back with
plain ``psycopg2`` / ``duckdb`` and the names compared with the catalog's.
"""

from __future__ import annotations

import sqlite3
from datetime import datetime

import duckdb
import psycopg2
import pytest

from ingestion import config, environments
from ingestion.environments import Environment
from ingestion.errors import SourceError
from ingestion.pipeline import run_table
from ingestion.sources.mysql import MySQLSource
from ingestion.window import Window

WINDOW = Window(datetime(2026, 10, 30), datetime(2026, 10, 31))

# MySQL allows every one of these as a table or column name (any BMP character but NUL,
# at most 64 characters, no trailing space).
SOURCE_TABLE = "odd `tbl` näme; it's"
KEY = 'the "key"'
CURSOR = "modified at`"
SOFT_DELETE = "is deleted?"
INJECTION = "a`; DROP TABLE victim; -- x"
COLUMNS = {  # name -> MySQL type (in table order)
    KEY: "int NOT NULL PRIMARY KEY",
    CURSOR: "datetime(6)",
    INJECTION: "varchar(40)",
    '"; DROP TABLE victim; --': "varchar(40)",
    "it's": "varchar(40)",
    "select": "int",
    "größe ünïcode 名前": "varchar(40)",
    "100%": "int",
    "%(loaded_at)s": "varchar(40)",
    "semi;colon": "varchar(40)",
    "back\\slash": "varchar(40)",
    "dot.ted": "varchar(40)",
    "?": "varchar(40)",
    "$1": "varchar(40)",
    "_row_rank": "int",
    SOFT_DELETE: "tinyint(1)",
}
NAMES = list(COLUMNS)
ROWS = [
    (1, datetime(2026, 10, 30, 1, 2, 3, 456789), "x'; DROP TABLE victim; --", '"q"', "'s'",
     7, "ü", 100, "%s", ";", "\\", ".", "?", "$1", 5, 0),
    (2, datetime(2026, 10, 30, 23, 59, 59), "`", "", None, None, "名前", -1, "%(x)s", "a;b",
     "\\\\", "a.b", "??", "$2", 5, 1),
    (3, datetime(2026, 10, 31), "outside the window", "", "", 0, "", 0, "", "", "", "", "", "", 5, 0),
]  # fmt: skip
IN_WINDOW = [row for row in ROWS if WINDOW.start <= row[1] < WINDOW.end]
METADATA = ["_batch_id", "_extracted_at", "_loaded_at", "_deleted_at"]


def hostile_table(mode: str = "incremental") -> config.TableConfig:
    """Read through the table config's own validation, as tables.yml would be."""
    entry = {"name": f"hostile_{mode}", "source_table": SOURCE_TABLE, "primary_key": KEY, "mode": mode}
    entry["hard_deletes"] = "reconcile"  # the key snapshot and the anti-join name the key too
    if mode == "incremental":
        entry.update(cursor=CURSOR, lookback=0)
    entry["soft_delete"] = SOFT_DELETE
    return config.parse_tables({"tables": [entry]})[entry["name"]]


def test_table_config_keeps_source_names_verbatim() -> None:
    table = hostile_table()
    assert (table.source_table, table.primary_key, table.cursor, table.soft_delete) == (
        "odd `tbl` näme; it's",
        ('the "key"',),
        "modified at`",
        "is deleted?",
    )


def backtick(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


def double_quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def business(rows: list[tuple]) -> list[tuple]:
    return sorted((tuple(row[: len(NAMES)]) for row in rows), key=lambda row: row[0])


# ------------------------------------------------------------------------ MySQL → PostgreSQL


@pytest.fixture
def hostile_mysql(mysql_db):
    mysql_db.execute("CREATE TABLE victim (id int)")
    mysql_db.execute("INSERT INTO victim VALUES (1)")
    definitions = ", ".join(f"{backtick(name)} {kind}" for name, kind in COLUMNS.items())
    mysql_db.execute(f"CREATE TABLE {backtick(SOURCE_TABLE)} ({definitions}) ENGINE=InnoDB")
    placeholders = ", ".join(["%s"] * len(NAMES))
    column_list = ", ".join(backtick(name).replace("%", "%%") for name in NAMES)
    mysql_db.executemany(
        f"INSERT INTO {backtick(SOURCE_TABLE)} ({column_list}) VALUES ({placeholders})", ROWS
    )
    return mysql_db


def mysql_tables(mysql_db) -> set[str]:
    with mysql_db.admin.cursor() as cursor:
        cursor.execute(
            "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = %s", (mysql_db.name,)
        )
        return {row[0].decode() if isinstance(row[0], bytes) else row[0] for row in cursor.fetchall()}


@pytest.mark.services
def test_hostile_names_round_trip_from_mysql_into_postgres(
    hostile_mysql, pg_warehouse, s3_bucket, s3_connection, tmp_path
) -> None:
    environment = Environment(
        name="services",
        source=hostile_mysql.connection,
        warehouse=pg_warehouse,
        stage_uri=f"s3://{s3_bucket}/stage",
        aws=s3_connection,
        data_dir=tmp_path,
    )
    extracted, loaded = run_table(hostile_table(), WINDOW, environment)
    assert (extracted.rows, loaded.rows_inserted) == (len(IN_WINDOW), len(IN_WINDOW))
    # A rerun takes the other path of the load (staging table, merge) and changes nothing.
    extracted, loaded = run_table(hostile_table(), WINDOW, environment)
    assert (extracted.rows, loaded.rows_inserted, loaded.rows_replaced) == (len(IN_WINDOW), 0, 0)

    # A full refresh reads every row (no bound parameters: its own statement text), twice.
    for _ in range(2):
        extracted, loaded = run_table(hostile_table("full_refresh"), WINDOW, environment)
        assert extracted.rows == len(ROWS)

    db = psycopg2.connect(
        host=pg_warehouse.host, port=pg_warehouse.port, user=pg_warehouse.login, dbname=pg_warehouse.schema
    )
    try:
        cursor = db.cursor()
        for name, expected in (("hostile_incremental", IN_WINDOW), ("hostile_full_refresh", ROWS)):
            cursor.execute(
                "select column_name from information_schema.columns "
                "where table_schema = 'raw_data' and table_name = %s order by ordinal_position",
                (name,),
            )
            assert [row[0] for row in cursor.fetchall()] == NAMES + METADATA
            cursor.execute(f"select {', '.join(double_quote(n) for n in NAMES)} from raw_data.{name}")
            assert business(cursor.fetchall()) == business(expected)
    finally:
        db.close()
    assert {"victim", SOURCE_TABLE} <= mysql_tables(hostile_mysql)


@pytest.mark.services
def test_source_connection_runs_one_statement_per_call(mysql_db) -> None:
    import MySQLdb

    mysql_db.execute("CREATE TABLE victim (id int)")
    source = MySQLSource(mysql_db.connection)
    try:
        db = source._connect()
        cursor = db.cursor()
        with pytest.raises(MySQLdb.ProgrammingError) as raised:
            cursor.execute("SELECT 1; DROP TABLE victim")
            cursor.fetchall()
            while cursor.nextset():
                pass
        assert "syntax" in str(raised.value).lower()
    finally:
        source.close()
    assert "victim" in mysql_tables(mysql_db)


@pytest.mark.services
def test_missing_hostile_source_table_is_named_exactly(mysql_db) -> None:
    source = MySQLSource(mysql_db.connection)
    try:
        with pytest.raises(SourceError) as raised:
            source.columns(hostile_table())
    finally:
        source.close()
    assert repr(SOURCE_TABLE) in str(raised.value)


# ------------------------------------------------------------------------ SQLite → DuckDB


def test_hostile_names_round_trip_from_sqlite_into_duckdb(tmp_path) -> None:
    # The stage's file paths are hostile too: DuckDB reads them as bound values.
    data_dir = tmp_path / "it's; [data] dir"
    data_dir.mkdir()
    embedded = environments.resolve("embedded", env={"PIPELINE_DATA_DIR": str(data_dir)})
    path = embedded.source.host
    source = sqlite3.connect(path)
    try:
        source.execute("CREATE TABLE victim (id int)")
        # No primary key here: the load dedupes the batch (its third path).
        definitions = ", ".join(
            f"{double_quote(name)} {kind.replace(' PRIMARY KEY', '')}" for name, kind in COLUMNS.items()
        )
        source.execute(f"CREATE TABLE {double_quote(SOURCE_TABLE)} ({definitions})")
        source.executemany(
            f"INSERT INTO {double_quote(SOURCE_TABLE)} ({', '.join(double_quote(n) for n in NAMES)}) "
            f"VALUES ({', '.join(['?'] * len(NAMES))})",
            [(*row[:1], row[1].isoformat(sep=" "), *row[2:]) for row in ROWS],
        )
        source.commit()
    finally:
        source.close()

    for _ in range(2):  # a first load and a rerun that changes nothing
        extracted, loaded = run_table(hostile_table(), WINDOW, embedded)
        assert extracted.rows == len(IN_WINDOW)

    warehouse = duckdb.connect(embedded.warehouse.host, read_only=True)
    try:
        names = warehouse.execute(
            "select column_name from information_schema.columns "
            "where table_schema = 'raw_data' and table_name = 'hostile_incremental' "
            "order by ordinal_position"
        ).fetchall()
        assert [row[0] for row in names] == NAMES + METADATA
        rows = warehouse.execute(
            f"select {', '.join(double_quote(n) for n in NAMES)} from raw_data.hostile_incremental"
        ).fetchall()
        assert business(rows) == business(IN_WINDOW)
    finally:
        warehouse.close()
    source = sqlite3.connect(path)
    try:
        tables = {row[0] for row in source.execute("select name from sqlite_master where type = 'table'")}
    finally:
        source.close()
    assert {"victim", SOURCE_TABLE} <= tables
