"""MySQLSource against a real MariaDB: exact types, bound windows, one snapshot, streaming."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import Decimal

import MySQLdb.cursors
import pyarrow as pa
import pytest

from ingestion.config import TableConfig
from ingestion.environments import Connection
from ingestion.errors import ExtractError
from ingestion.sources import mysql as mysql_source
from ingestion.sources.base import source_schema
from ingestion.sources.mysql import MySQLSource
from ingestion.window import Window

pytestmark = pytest.mark.services

WINDOW = Window(datetime(2024, 1, 2), datetime(2024, 1, 3))
LONG_TEXT = "abcdefgh\u00e9\U0001f600" * 75_000  # 1,050,000 bytes of utf8mb4

TYPES_DDL = """
CREATE TABLE types (
  id int NOT NULL PRIMARY KEY,
  flag tinyint(1),
  small tinyint,
  tiny_u tinyint unsigned,
  medium mediumint,
  i int,
  i_u int unsigned,
  big bigint,
  big_u bigint unsigned,
  amount decimal(18,4),
  wide decimal(65,30),
  f float,
  d double,
  dt datetime(6),
  dt0 datetime,
  ts timestamp(6) NULL DEFAULT NULL,
  dd date,
  y year,
  tm time,
  s varchar(20),
  c char(3),
  txt text,
  long_txt longtext,
  bin varbinary(8),
  blb blob,
  e enum('a','b'),
  st set('x','y'),
  j json,
  bits bit(5)
) ENGINE=InnoDB
"""

TYPES_COLUMNS = [
    "id", "flag", "small", "tiny_u", "medium", "i", "i_u", "big", "big_u", "amount", "wide", "f",
    "d", "dt", "dt0", "ts", "dd", "y", "tm", "s", "c", "txt", "long_txt", "bin", "blb", "e", "st",
    "j", "bits",
]  # fmt: skip

EXPECTED_ARROW_TYPES = {
    "id": pa.int32(),
    "flag": pa.int16(),
    "small": pa.int16(),
    "tiny_u": pa.int32(),
    "medium": pa.int32(),
    "i": pa.int32(),
    "i_u": pa.int64(),
    "big": pa.int64(),
    "big_u": pa.decimal128(20, 0),
    "amount": pa.decimal128(18, 4),
    "wide": pa.decimal256(65, 30),
    "f": pa.float32(),
    "d": pa.float64(),
    "dt": pa.timestamp("us"),
    "dt0": pa.timestamp("us"),
    "ts": pa.timestamp("us"),
    "dd": pa.date32(),
    "y": pa.int16(),
    "tm": pa.string(),
    "s": pa.string(),
    "c": pa.string(),
    "txt": pa.string(),
    "long_txt": pa.string(),
    "bin": pa.binary(),
    "blb": pa.binary(),
    "e": pa.string(),
    "st": pa.string(),
    "j": pa.string(),
    "bits": pa.int64(),
}

WIDE = "12345678901234567890123456789012345.123456789012345678901234567890"

EXPECTED_TYPES_ROWS = [
    {
        "id": 1, "flag": 0, "small": -128, "tiny_u": 255, "medium": -8388608,
        "i": -2147483648, "i_u": 4294967295, "big": -9223372036854775808,
        "big_u": Decimal("18446744073709551615"), "amount": Decimal("12345678901234.5678"),
        "wide": Decimal(WIDE), "f": 1.5, "d": 0.1,
        "dt": datetime(2024, 2, 29, 23, 59, 59, 999999), "dt0": datetime(2024, 1, 1, 0, 0, 0),
        "ts": datetime(2024, 1, 1, 0, 0, 0, 1), "dd": date(2024, 1, 31), "y": 2024,
        "tm": "-838:59:59", "s": "\U0001f600 \u00fcn\u00efc\u00f8d\u00e9", "c": "abc", "txt": "",
        "long_txt": LONG_TEXT, "bin": b"\x00\xff", "blb": b"\xde\xad\xbe\xef", "e": "b",
        "st": "x,y", "j": '{"a": [1, 2]}', "bits": 21,
    },
    {
        "id": 2, "flag": 1, "small": 127, "tiny_u": 0, "medium": 8388607,
        "i": 2147483647, "i_u": 0, "big": 9223372036854775807,
        "big_u": Decimal("0"), "amount": Decimal("-0.0001"),
        "wide": Decimal("0"), "f": -0.25, "d": -1e300,
        "dt": None, "dt0": None,  # '0000-00-00 00:00:00'
        "ts": datetime(2038, 1, 19, 3, 14, 7), "dd": None, "y": 1901,  # dd '0000-00-00'
        "tm": "00:00:01", "s": "", "c": "", "txt": None,
        "long_txt": "", "bin": b"", "blb": None, "e": "a",
        "st": "", "j": "[]", "bits": 0,
    },
    {
        "id": 3, "flag": 2, "small": None, "tiny_u": None, "medium": None,
        "i": None, "i_u": None, "big": None,
        "big_u": Decimal("9223372036854775808"), "amount": Decimal("0.0000"),
        "wide": None, "f": None, "d": None,
        "dt": None, "dt0": datetime(2024, 1, 2, 3, 4, 5),  # dt '2024-01-00 10:00:00'
        "ts": None, "dd": None, "y": None,  # dd '2024-00-15'
        "tm": None, "s": None, "c": None, "txt": None,
        "long_txt": None, "bin": None, "blb": None, "e": None,
        "st": None, "j": None, "bits": None,
    },
    {"id": 4, **{name: None for name in TYPES_COLUMNS if name != "id"}},
]  # fmt: skip


def insert_types(db) -> None:
    # Zero dates need a sql_mode without NO_ZERO_DATE / NO_ZERO_IN_DATE; TIMESTAMP literals
    # are read in the session time zone (+05:00 here) and stored as UTC.
    db.execute("SET SESSION sql_mode = ''")
    db.execute("SET SESSION time_zone = '+05:00'")
    db.execute(TYPES_DDL)
    columns = ", ".join(TYPES_COLUMNS)
    db.execute(
        f"INSERT INTO types ({columns}) VALUES "
        "(1, 0, -128, 255, -8388608, -2147483648, 4294967295, -9223372036854775808, "
        f" 18446744073709551615, 12345678901234.5678, {WIDE}, 1.5, 0.1, "
        " '2024-02-29 23:59:59.999999', '2024-01-01 00:00:00', '2024-01-01 05:00:00.000001', "
        " '2024-01-31', 2024, '-838:59:59', %s, 'abc', '', %s, x'00ff', x'deadbeef', 'b', "
        """ 'x,y', '{"a": [1, 2]}', b'10101'), """
        "(2, 1, 127, 0, 8388607, 2147483647, 0, 9223372036854775807, 0, -0.0001, 0, -0.25, "
        " -1e300, '0000-00-00 00:00:00', '0000-00-00 00:00:00', '2038-01-19 08:14:07', "
        " '0000-00-00', 1901, '00:00:01', '', '', NULL, '', x'', NULL, 'a', '', '[]', b'00000'), "
        "(3, 2, NULL, NULL, NULL, NULL, NULL, NULL, 9223372036854775808, 0, NULL, NULL, NULL, "
        " '2024-01-00 10:00:00', '2024-01-02 03:04:05', NULL, '2024-00-15', NULL, NULL, NULL, "
        " NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL), "
        "(4, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, "
        " NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL)",
        ("\U0001f600 \u00fcn\u00efc\u00f8d\u00e9", LONG_TEXT),
    )
    db.execute("SET SESSION time_zone = '+00:00'")


def full_refresh(name: str) -> TableConfig:
    return TableConfig(name=name, source_table=name, primary_key=("id",), mode="full_refresh")


def incremental(name: str, lookback: timedelta) -> TableConfig:
    return TableConfig(
        name=name,
        source_table=name,
        primary_key=("id",),
        mode="incremental",
        cursor="modified_at",
        lookback=lookback,
    )


def read_all(source: MySQLSource, table: TableConfig, batch_rows: int = 100_000) -> pa.Table:
    columns = source.columns(table)
    batches = list(source.read(table, columns, WINDOW, batch_rows))
    schema = source_schema(columns)
    for batch in batches:
        assert batch.schema == schema
    return pa.Table.from_batches(batches, schema=schema)


# -- types ----------------------------------------------------------------------------------------


def test_columns_come_from_information_schema_in_ordinal_order(mysql_db) -> None:
    insert_types(mysql_db)
    source = MySQLSource(mysql_db.connection)
    try:
        columns = source.columns(full_refresh("types"))
    finally:
        source.close()
    assert [c.name for c in columns] == TYPES_COLUMNS
    declared = {c.name: c.source_type for c in columns}
    assert declared["flag"] == "tinyint(1)"
    assert declared["big_u"] in ("bigint(20) unsigned", "bigint unsigned")
    assert declared["amount"] == "decimal(18,4)"
    assert declared["dt"] == "datetime(6)"


def test_every_type_round_trips_exactly(mysql_db) -> None:
    insert_types(mysql_db)
    source = MySQLSource(mysql_db.connection)
    try:
        table = read_all(source, full_refresh("types"))
    finally:
        source.close()

    assert {field.name: field.type for field in table.schema} == EXPECTED_ARROW_TYPES
    rows = sorted(table.to_pylist(), key=lambda row: row["id"])
    assert len(rows) == len(EXPECTED_TYPES_ROWS)
    for actual, expected in zip(rows, EXPECTED_TYPES_ROWS, strict=True):
        for name in TYPES_COLUMNS:
            assert actual[name] == expected[name], f"row {expected['id']} column {name}"
            assert type(actual[name]) is type(expected[name]), f"row {expected['id']} column {name}"


def test_tinyint1_stays_an_integer_and_empty_string_is_not_null(mysql_db) -> None:
    insert_types(mysql_db)
    source = MySQLSource(mysql_db.connection)
    try:
        table = read_all(source, full_refresh("types")).sort_by("id")
    finally:
        source.close()
    assert table.column("flag").to_pylist() == [0, 1, 2, None]
    assert table.column("s").to_pylist() == ["\U0001f600 \u00fcn\u00efc\u00f8d\u00e9", "", None, None]
    assert table.column("bin").to_pylist() == [b"\x00\xff", b"", None, None]
    assert table.column("s").null_count == 2


def test_field_metadata_keeps_the_mysql_type(mysql_db) -> None:
    insert_types(mysql_db)
    source = MySQLSource(mysql_db.connection)
    try:
        table = read_all(source, full_refresh("types"))
    finally:
        source.close()
    assert table.schema.field("flag").metadata == {b"source_type": b"tinyint(1)"}


# -- windows ---------------------------------------------------------------------------------------

EVENTS = [
    (1, "2024-01-01 21:59:59.999999"),  # just before start - lookback
    (2, "2024-01-01 22:00:00"),  # exactly start - lookback (2h): inclusive
    (7, "2024-01-01 23:59:59.999999"),  # inside the lookback
    (3, "2024-01-02 00:00:00"),  # exactly the start: inclusive
    (4, "2024-01-02 23:59:59.999999"),  # last microsecond of the window
    (5, "2024-01-03 00:00:00"),  # exactly the end: exclusive
    (6, None),  # no cursor value: never in a window
]


@pytest.fixture
def events(mysql_db):
    mysql_db.execute(
        "CREATE TABLE events (id int NOT NULL PRIMARY KEY, modified_at datetime(6), "
        "payload varchar(10)) ENGINE=InnoDB"
    )
    mysql_db.executemany(
        "INSERT INTO events (id, modified_at, payload) VALUES (%s, %s, %s)",
        [(i, ts, f"v{i}") for i, ts in EVENTS],
    )
    return mysql_db


def ids(table: pa.Table) -> list[int]:
    return sorted(table.column("id").to_pylist())


def column_by_id(table: pa.Table, name: str) -> dict:
    return dict(zip(table.column("id").to_pylist(), table.column(name).to_pylist(), strict=True))


def test_window_start_inclusive_end_exclusive(events) -> None:
    source = MySQLSource(events.connection)
    try:
        assert ids(read_all(source, incremental("events", timedelta(0)))) == [3, 4]
    finally:
        source.close()


def test_window_lookback_reaches_back_inclusively(events) -> None:
    source = MySQLSource(events.connection)
    try:
        table = read_all(source, incremental("events", timedelta(hours=2)))
    finally:
        source.close()
    assert ids(table) == [2, 3, 4, 7]
    assert column_by_id(table, "modified_at") == {
        2: datetime(2024, 1, 1, 22, 0, 0),
        7: datetime(2024, 1, 1, 23, 59, 59, 999999),
        3: datetime(2024, 1, 2, 0, 0, 0),
        4: datetime(2024, 1, 2, 23, 59, 59, 999999),
    }


def test_full_refresh_reads_every_row(events) -> None:
    source = MySQLSource(events.connection)
    try:
        assert ids(read_all(source, full_refresh("events"))) == [1, 2, 3, 4, 5, 6, 7]
    finally:
        source.close()


def test_window_bounds_are_bind_parameters(events, monkeypatch) -> None:
    executed: list[tuple[str, object]] = []
    original = MySQLdb.cursors.SSCursor.execute

    def spy(self, query, args=None):
        executed.append((query, args))
        return original(self, query, args)

    monkeypatch.setattr(MySQLdb.cursors.SSCursor, "execute", spy)
    source = MySQLSource(events.connection)
    try:
        read_all(source, incremental("events", timedelta(hours=2)))
    finally:
        source.close()
    selects = [(query, args) for query, args in executed if query.startswith("SELECT")]
    assert selects == [
        (
            f"SELECT `id`, `modified_at`, `payload` FROM `{events.name}`.`events` "
            "WHERE `modified_at` >= %s AND `modified_at` < %s",
            [datetime(2024, 1, 1, 22, 0, 0), datetime(2024, 1, 3, 0, 0, 0)],
        )
    ]


def test_empty_window_yields_no_batch(events) -> None:
    source = MySQLSource(events.connection)
    table = incremental("events", timedelta(0))
    try:
        columns = source.columns(table)
        window = Window(datetime(2030, 1, 1), datetime(2030, 1, 2))
        assert list(source.read(table, columns, window, 1000)) == []
    finally:
        source.close()


# -- snapshot, batching, streaming -------------------------------------------------------------------


def test_reads_one_consistent_snapshot(events, monkeypatch) -> None:
    """Rows committed after the snapshot transaction starts are not seen by that read."""
    writer = events.connect()
    original = MySQLdb.cursors.SSCursor.execute

    def execute_then_write(self, query, args=None):
        result = original(self, query, args)
        if query.startswith("START TRANSACTION WITH CONSISTENT SNAPSHOT"):
            with writer.cursor() as cursor:
                cursor.execute("INSERT INTO events VALUES (100, '2024-01-02 12:00:00', 'new')")
                cursor.execute("UPDATE events SET payload = 'changed' WHERE id = 3")
                cursor.execute("DELETE FROM events WHERE id = 4")
        return result

    monkeypatch.setattr(MySQLdb.cursors.SSCursor, "execute", execute_then_write)
    source = MySQLSource(events.connection)
    try:
        first = read_all(source, full_refresh("events"))
        monkeypatch.setattr(MySQLdb.cursors.SSCursor, "execute", original)
        second = read_all(source, full_refresh("events"))
    finally:
        source.close()
        writer.close()
    assert column_by_id(first, "payload") == {1: "v1", 2: "v2", 3: "v3", 4: "v4", 5: "v5", 6: "v6", 7: "v7"}
    after = {1: "v1", 2: "v2", 3: "changed", 5: "v5", 6: "v6", 7: "v7", 100: "new"}
    assert column_by_id(second, "payload") == after


def test_session_is_utc_repeatable_read_utf8mb4(events) -> None:
    source = MySQLSource(events.connection)
    try:
        db = source._connect()
        with db.cursor() as cursor:
            cursor.execute(
                "SELECT @@session.time_zone, @@session.tx_isolation, @@character_set_client, "
                "@@character_set_results"
            )
            row = cursor.fetchone()
    finally:
        source.close()
    assert row == (b"+00:00", b"REPEATABLE-READ", b"utf8mb4", b"utf8mb4")


def test_batches_hold_at_most_batch_rows(mysql_db) -> None:
    mysql_db.execute("CREATE TABLE seq (id int NOT NULL PRIMARY KEY, v varchar(10))")
    mysql_db.executemany("INSERT INTO seq VALUES (%s, %s)", [(i, str(i)) for i in range(1, 11)])
    source = MySQLSource(mysql_db.connection)
    table = full_refresh("seq")
    try:
        columns = source.columns(table)
        batches = list(source.read(table, columns, WINDOW, 3))
    finally:
        source.close()
    assert [b.num_rows for b in batches] == [3, 3, 3, 1]
    assert pa.Table.from_batches(batches).column("id").to_pylist() == list(range(1, 11))


def test_wide_rows_make_smaller_batches(mysql_db, monkeypatch) -> None:
    monkeypatch.setattr(mysql_source, "BATCH_BYTES", 2_500_000)
    mysql_db.execute("CREATE TABLE docs (id int NOT NULL PRIMARY KEY, body longtext)")
    for i in range(1, 7):
        mysql_db.execute("INSERT INTO docs VALUES (%s, %s)", (i, LONG_TEXT))
    source = MySQLSource(mysql_db.connection)
    table = full_refresh("docs")
    try:
        columns = source.columns(table)
        batches = list(source.read(table, columns, WINDOW, 1000))
    finally:
        source.close()
    assert sum(b.num_rows for b in batches) == 6
    assert max(b.num_rows for b in batches) <= 3
    assert all(v == LONG_TEXT for b in batches for v in b.column(1).to_pylist())


def test_stream_of_many_rows_in_order(mysql_db) -> None:
    mysql_db.execute(
        "CREATE TABLE big (id int NOT NULL PRIMARY KEY, created_at datetime, "
        "modified_at datetime, score tinyint, deleted tinyint(1))"
    )
    mysql_db.execute(
        "INSERT INTO big SELECT seq, '2024-01-01' + INTERVAL seq SECOND, "
        "'2024-01-02' + INTERVAL seq SECOND, seq % 11, seq % 3 FROM seq_1_to_50000"
    )
    source = MySQLSource(mysql_db.connection)
    try:
        table = read_all(source, full_refresh("big"), batch_rows=7_000)
    finally:
        source.close()
    assert table.num_rows == 50_000
    assert table.column("id").to_pylist() == list(range(1, 50_001))
    assert table.slice(49_999).to_pylist() == [
        {
            "id": 50_000,
            "created_at": datetime(2024, 1, 1, 13, 53, 20),
            "modified_at": datetime(2024, 1, 2, 13, 53, 20),
            "score": 5,
            "deleted": 2,
        }
    ]


def test_abandoned_read_leaves_the_source_usable(mysql_db) -> None:
    mysql_db.execute("CREATE TABLE seq (id int NOT NULL PRIMARY KEY)")
    mysql_db.execute("INSERT INTO seq SELECT seq FROM seq_1_to_10000")
    source = MySQLSource(mysql_db.connection)
    table = full_refresh("seq")
    try:
        columns = source.columns(table)
        stream = source.read(table, columns, WINDOW, 100)
        assert next(stream).num_rows == 100
        stream.close()  # the consumer stops half way
        assert sum(b.num_rows for b in source.read(table, columns, WINDOW, 5000)) == 10_000
    finally:
        source.close()


# -- errors ----------------------------------------------------------------------------------------------


def test_missing_table_is_a_clear_error(mysql_db) -> None:
    source = MySQLSource(mysql_db.connection)
    try:
        with pytest.raises(ExtractError, match=r"table 'ghost'.*not found"):
            source.columns(full_refresh("ghost"))
    finally:
        source.close()


def test_source_schema_of_the_table_config_wins(mysql_db, events) -> None:
    other = Connection("pipeline_source", "mysql", **_without_schema(events.connection))
    table = TableConfig(
        name="events", source_table="events", source_schema=events.name,
        primary_key=("id",), mode="full_refresh",
    )  # fmt: skip
    source = MySQLSource(other)
    try:
        assert ids(read_all(source, table)) == [1, 2, 3, 4, 5, 6, 7]
        with pytest.raises(ExtractError, match=r"table 'events': no source schema"):
            source.columns(full_refresh("events"))
    finally:
        source.close()


def test_invalid_date_is_a_clear_error_naming_the_column(mysql_db) -> None:
    mysql_db.execute("SET SESSION sql_mode = 'ALLOW_INVALID_DATES'")
    mysql_db.execute("CREATE TABLE bad (id int NOT NULL PRIMARY KEY, day date)")
    mysql_db.execute("INSERT INTO bad VALUES (1, '2024-01-31'), (2, '2024-02-30')")
    source = MySQLSource(mysql_db.connection)
    table = full_refresh("bad")
    try:
        columns = source.columns(table)
        with pytest.raises(ExtractError, match=r"column 'day' \(date\): value does not fit date32"):
            list(source.read(table, columns, WINDOW, 100))
        assert source.columns(table) == columns  # the source reconnects after the failure
    finally:
        source.close()


def test_unreachable_server_is_a_clear_error() -> None:
    source = MySQLSource(Connection("pipeline_source", "mysql", host="127.0.0.1", port=1, login="root"))
    with pytest.raises(ExtractError, match=r"cannot connect to MySQL at 127\.0\.0\.1:1"):
        source.columns(TableConfig("nps", "nps", ("id",), "full_refresh", source_schema="x"))


def _without_schema(connection: Connection) -> dict:
    return {
        "host": connection.host,
        "port": connection.port,
        "login": connection.login,
        "password": connection.password,
    }


# -- into the S3 stage ------------------------------------------------------------------------------------


def test_extract_streams_into_the_s3_stage(events, s3_bucket, s3_connection) -> None:
    from ingestion.extract import extract
    from ingestion.stage import open_stage

    stage = open_stage(f"s3://{s3_bucket}/stage", s3_connection)
    source = MySQLSource(events.connection)
    try:
        result = extract(incremental("events", timedelta(hours=2)), WINDOW, source, stage)
    finally:
        source.close()
    assert result.rows == 4
    manifest = stage.read_manifest(result.manifest_url)
    assert manifest.record_count == 4
    staged = pa.concat_tables(stage.open_parquet(entry.url).read() for entry in manifest.entries)
    assert sorted(staged.column("id").to_pylist()) == [2, 3, 4, 7]
    assert staged.schema.field("modified_at").type == pa.timestamp("us")
