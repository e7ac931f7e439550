"""Schema drift between two loads: names and mapped types compared, never a silent change.

The source table changes between two loads of an incremental table: SQLite (embedded,
DuckDB warehouse) and MariaDB (services, PostgreSQL warehouse). After each case the raw
table's rows and column types are read back with plain SQL (DuckDB's
``information_schema`` spelling, PostgreSQL's ``format_type``) and compared with values
written out here. Redshift's widening SQL is pinned as exact text.
"""

from __future__ import annotations

import logging
import sqlite3
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal

import duckdb
import pyarrow as pa
import pytest

from ingestion import config, pipeline
from ingestion.environments import Connection, Environment
from ingestion.errors import ConfigError, SchemaDriftError
from ingestion.schema_drift import is_safe_widening, plan
from ingestion.warehouse import open_warehouse
from ingestion.warehouse.redshift import RedshiftWarehouse
from ingestion.window import Window

DAY0, DAY1 = (
    Window(datetime(2026, 10, 30) + timedelta(days=d), datetime(2026, 10, 31) + timedelta(days=d))
    for d in (0, 1)
)
COLUMNS = ["id", "modified_at", "qty", "code", "price", "big", "note"]
DDL = {
    "id": "INT PRIMARY KEY", "modified_at": "DATETIME", "qty": "SMALLINT", "code": "VARCHAR(10)",
    "price": "DECIMAL(5,2)", "big": "INT", "note": "TEXT",
}  # fmt: skip
FIRST_ROWS = [
    {"id": 1, "qty": 1, "code": "a", "price": Decimal("1.25"), "big": 10, "note": "n1"},
    {"id": 2, "qty": 2, "code": "bb", "price": Decimal("2.50"), "big": 20, "note": None},
    {"id": 3, "qty": 3, "code": "ccc", "price": Decimal("3.75"), "big": 30, "note": "n3"},
]
NEXT_ROWS = [  # the second window's rows before a case changes them
    {"id": 4, "qty": 4, "code": "d", "price": Decimal("4.00"), "big": 40, "note": "n4"},
    {"id": 5, "qty": 5, "code": "e", "price": Decimal("5.00"), "big": 50, "note": "n5"},
]
# The raw table's types before any change, as each warehouse spells them.
DUCKDB_TYPES = {
    "id": "INTEGER", "modified_at": "TIMESTAMP", "qty": "SMALLINT", "code": "VARCHAR",
    "price": "DECIMAL(5,2)", "big": "INTEGER", "note": "VARCHAR", "_batch_id": "VARCHAR",
    "_extracted_at": "TIMESTAMP", "_loaded_at": "TIMESTAMP", "_deleted_at": "TIMESTAMP",
}  # fmt: skip
POSTGRES_TYPES = {
    "id": "integer", "modified_at": "timestamp without time zone", "qty": "smallint",
    "code": "character varying(10)", "price": "numeric(5,2)", "big": "integer", "note": "text",
    "_batch_id": "character varying(64)", "_extracted_at": "timestamp without time zone",
    "_loaded_at": "timestamp without time zone", "_deleted_at": "timestamp without time zone",
}  # fmt: skip


@dataclass(frozen=True)
class Case:
    """One change of the source table between the two loads."""

    retype: dict[str, str] = field(default_factory=dict)  # column -> new MySQL type
    add: dict[str, str] = field(default_factory=dict)  # column -> MySQL type
    drop: tuple[str, ...] = ()
    next_values: tuple[dict, dict] = ({}, {})  # overrides of NEXT_ROWS' values
    types: dict[str, tuple[str, str]] = field(default_factory=dict)  # raw type after: (duckdb, postgres)
    fails: str | None = None  # what the SchemaDriftError says, or None when the load succeeds
    policy: str = "append_new_columns"


CASES = {
    "new-column": Case(
        add={"color": "VARCHAR(12)"},
        next_values=({"color": "red"}, {"color": None}),
        types={"color": ("VARCHAR", "character varying(12)")},
    ),
    "dropped-column-kept": Case(drop=("note",)),
    "dropped-column-synced": Case(drop=("note",), policy="sync_all_columns"),
    "int-to-bigint": Case(
        retype={"big": "BIGINT"},
        next_values=({"big": 3_000_000_000}, {"big": -3_000_000_000}),
        types={"big": ("BIGINT", "bigint")},
    ),
    "varchar-10-to-20": Case(
        retype={"code": "VARCHAR(20)"},
        next_values=({"code": "fifteen chars.."}, {"code": "x" * 20}),
        types={"code": ("VARCHAR", "character varying(20)")},
    ),
    "decimal-5-2-to-8-2": Case(
        retype={"price": "DECIMAL(8,2)"},
        next_values=({"price": Decimal("123456.78")}, {"price": Decimal("-0.01")}),
        types={"price": ("DECIMAL(8,2)", "numeric(8,2)")},
    ),
    "smallint-to-decimal-10-2": Case(
        retype={"qty": "DECIMAL(10,2)"},
        next_values=({"qty": Decimal("7.50")}, {"qty": Decimal("2.25")}),
        fails="column 'qty' is smallint in the table but decimal(10, 2) in the source",
    ),
    "int-narrowed-to-smallint": Case(
        retype={"big": "SMALLINT"},
        fails="column 'big' is integer in the table but smallint in the source",
    ),
    "new-column-with-on-schema-change-fail": Case(
        add={"color": "VARCHAR(12)"}, policy="fail", fails="on_schema_change: fail"
    ),
}


def table_config(case: Case) -> config.TableConfig:
    return config.parse_table(
        {
            "name": "items", "primary_key": "id", "mode": "incremental", "cursor": "modified_at",
            "on_schema_change": case.policy,
        },
        0,
    )  # fmt: skip


def next_rows(case: Case) -> list[dict]:
    rows = []
    for base, override in zip(NEXT_ROWS, case.next_values, strict=True):
        row = {k: v for k, v in base.items() if k not in case.drop}
        rows.append({**row, **{c: None for c in case.add}, **override})
    return rows


def expected_rows(case: Case) -> dict[int, dict]:
    """Business columns by key after the second load: first rows keep what they had (NULL in
    a new column), second rows carry the new values (NULL in a dropped, kept column)."""
    synced = case.policy == "sync_all_columns"
    rows = {}
    for row in FIRST_ROWS:
        row = {**row, **{c: None for c in case.add}}
        rows[row["id"]] = {k: v for k, v in row.items() if not (synced and k in case.drop)}
    for row in next_rows(case):
        rows[row["id"]] = {**row, **({} if synced else {c: None for c in case.drop})}
    return rows


def expected_types(case: Case, dialect: int) -> dict[str, str]:
    types = dict((DUCKDB_TYPES, POSTGRES_TYPES)[dialect])
    for column in case.drop if case.policy == "sync_all_columns" else ():
        del types[column]
    types.update({column: pair[dialect] for column, pair in case.types.items()})
    return types


def stamp(row: dict, day: Window) -> dict:
    return {**row, "modified_at": day.start + timedelta(hours=1)}


# ------------------------------------------------------------------ the two ends


class SQLiteEnd:
    def __init__(self, env: Environment) -> None:
        self.db = sqlite3.connect(env.source.host, isolation_level=None)
        self.types = dict(DDL)

    def create(self) -> None:
        self.db.execute(f"CREATE TABLE items ({', '.join(f'{c} {t}' for c, t in self.types.items())})")

    def insert(self, rows: list[dict]) -> None:
        for row in rows:
            values = [str(v) if isinstance(v, Decimal) else v for v in row.values()]
            marks = ", ".join("?" for _ in row)
            self.db.execute(f"INSERT INTO items ({', '.join(row)}) VALUES ({marks})", values)

    def change(self, case: Case) -> None:
        for column, column_type in case.add.items():
            self.db.execute(f"ALTER TABLE items ADD COLUMN {column} {column_type}")
        for column in case.drop:
            self.db.execute(f"ALTER TABLE items DROP COLUMN {column}")
        if case.retype:  # SQLite cannot alter a column's type: copy into a new table
            self.types = {c: t for c, t in self.types.items() if c not in case.drop}
            self.types.update(case.add)
            self.types.update(case.retype)
            self.db.execute("ALTER TABLE items RENAME TO items_before")
            self.create()
            self.db.execute("INSERT INTO items SELECT * FROM items_before")
            self.db.execute("DROP TABLE items_before")


class MySQLEnd:
    def __init__(self, mysql_db) -> None:
        self.mysql_db = mysql_db

    def create(self) -> None:
        self.mysql_db.execute(f"CREATE TABLE items ({', '.join(f'{c} {t}' for c, t in DDL.items())})")

    def insert(self, rows: list[dict]) -> None:
        for row in rows:
            marks = ", ".join("%s" for _ in row)
            self.mysql_db.execute(
                f"INSERT INTO items ({', '.join(row)}) VALUES ({marks})", list(row.values())
            )

    def change(self, case: Case) -> None:
        for column, column_type in case.add.items():
            self.mysql_db.execute(f"ALTER TABLE items ADD COLUMN {column} {column_type}")
        for column in case.drop:
            self.mysql_db.execute(f"ALTER TABLE items DROP COLUMN {column}")
        for column, column_type in case.retype.items():
            self.mysql_db.execute(f"ALTER TABLE items MODIFY {column} {column_type}")


class Warehouse:
    """The raw table read back with the warehouse's own driver."""

    def __init__(self, env: Environment) -> None:
        self.env = env
        self.duckdb = env.warehouse.conn_type == "duckdb"

    def rows(self, sql_text: str) -> list[tuple]:
        if self.duckdb:
            db = duckdb.connect(self.env.warehouse.host)
            try:
                return db.execute(sql_text).fetchall()
            finally:
                db.close()
        db = open_warehouse(self.env.warehouse).connect()
        try:
            cursor = db.cursor()
            cursor.execute(sql_text)
            result = cursor.fetchall() if cursor.description else []
            db.commit()
            return result
        finally:
            db.close()

    def types(self, name: str = "items") -> dict[str, str]:
        if self.duckdb:
            sql_text = (
                "select column_name, data_type from information_schema.columns "
                f"where table_schema = 'raw_data' and table_name = '{name}'"
            )
        else:
            sql_text = (
                "select attname, format_type(atttypid, atttypmod) from pg_attribute "
                f"where attrelid = 'raw_data.{name}'::regclass and attnum > 0 and not attisdropped"
            )
        return dict(self.rows(sql_text))

    def business(self) -> dict[int, dict]:
        names = [c for c in self.types() if not c.startswith("_")]
        rows = self.rows(f"select {', '.join(names)} from raw_data.items")
        return {row[0]: {k: v for k, v in zip(names, row, strict=True) if k != "modified_at"} for row in rows}

    def everything(self) -> list[tuple]:
        return sorted(self.rows("select * from raw_data.items"))

    def audit_changes(self) -> list:
        return [
            row[0] for row in self.rows("select schema_changes from raw_data._load_audit order by started_at")
        ]


def run_case(env: Environment, source, case: Case, caplog: pytest.LogCaptureFixture) -> None:
    table = table_config(case)
    warehouse = Warehouse(env)
    source.create()
    source.insert([stamp({k: v for k, v in r.items()}, DAY0) for r in FIRST_ROWS])
    pipeline.run_table(table, DAY0, env)
    before_types, before_rows = warehouse.types(), warehouse.everything()
    assert before_types == expected_types(Case(), 0 if warehouse.duckdb else 1)

    source.change(case)
    source.insert([stamp(row, DAY1) for row in next_rows(case)])
    caplog.clear()
    if case.fails:
        with pytest.raises(SchemaDriftError) as raised:
            pipeline.run_table(table, DAY1, env)
        message = str(raised.value)
        assert "table raw_data.items" in message and case.fails in message
        if case.policy != "fail":
            assert "python -m ingestion run items --rebuild --start 2026-10-31T00:00:00" in message
        assert not raised.value.retryable
        assert warehouse.types() == before_types
        assert warehouse.everything() == before_rows
        return

    with caplog.at_level(logging.INFO, logger="ingestion"):
        pipeline.run_table(table, DAY1, env)

    assert warehouse.types() == expected_types(case, 0 if warehouse.duckdb else 1)
    assert warehouse.business() == {k: {c: v for c, v in r.items()} for k, r in expected_rows(case).items()}
    changes = warehouse.audit_changes()
    if case.add:
        assert "added color" in changes[1]
    if case.drop:
        assert "note" in caplog.text and "gone from the source" in caplog.text


# ------------------------------------------------------------------ embedded (DuckDB)


@pytest.mark.parametrize("name", list(CASES))
def test_schema_change_between_loads_on_duckdb(
    embedded: Environment, name: str, caplog: pytest.LogCaptureFixture
) -> None:
    run_case(embedded, SQLiteEnd(embedded), CASES[name], caplog)


def test_rebuild_after_a_lossy_change_reloads_every_row_in_the_new_shape_on_duckdb(
    embedded: Environment, caplog: pytest.LogCaptureFixture
) -> None:
    case = CASES["smallint-to-decimal-10-2"]
    run_case(embedded, SQLiteEnd(embedded), case, caplog)

    _, result = pipeline.run_table(table_config(case), DAY1, embedded, rebuild=True)

    warehouse = Warehouse(embedded)
    assert warehouse.types()["qty"] == "DECIMAL(10,2)"
    qty = {key: row["qty"] for key, row in warehouse.business().items()}
    assert qty == {1: 1, 2: 2, 3: 3, 4: Decimal("7.50"), 5: Decimal("2.25")}  # every row, not the window's
    assert result.rows_inserted == 5 and result.schema_changes == "rebuilt from a full extract"


# ------------------------------------------------------------------ services (PostgreSQL)


@pytest.mark.parametrize("name", list(CASES))
def test_schema_change_between_loads_on_postgres(
    services: Environment, mysql_db, name: str, caplog: pytest.LogCaptureFixture
) -> None:
    run_case(services, MySQLEnd(mysql_db), CASES[name], caplog)


VIEWS = (
    "create view raw_data.items_view as select id, big, price, code from raw_data.items",
    "create view raw_data.items_summary as select count(*) as n, sum(big) as total from raw_data.items_view",
)


@pytest.mark.parametrize("name", ["int-to-bigint", "decimal-5-2-to-8-2", "varchar-10-to-20"])
def test_widening_a_column_read_by_views_recreates_the_views_on_postgres(
    services: Environment, mysql_db, name: str
) -> None:
    case = CASES[name]
    source, warehouse, table = MySQLEnd(mysql_db), Warehouse(services), table_config(case)
    source.create()
    source.insert([stamp(r, DAY0) for r in FIRST_ROWS])
    pipeline.run_table(table, DAY0, services)
    for view in VIEWS:  # like dbt's staging views over the raw table, and a view over those
        warehouse.rows(view)
    source.change(case)
    source.insert([stamp(row, DAY1) for row in next_rows(case)])

    pipeline.run_table(table, DAY1, services)

    assert warehouse.types("items_view") == {
        c: expected_types(case, 1)[c] for c in ("id", "big", "price", "code")
    }
    rows = expected_rows(case)
    assert sorted(warehouse.rows("select id, big, price, code from raw_data.items_view")) == [
        (k, r["big"], r["price"], r["code"]) for k, r in sorted(rows.items())
    ]
    assert warehouse.rows("select n, total from raw_data.items_summary") == [
        (5, sum(r["big"] for r in rows.values()))
    ]


def test_rebuild_after_a_lossy_change_keeps_the_views_on_postgres(
    services: Environment, mysql_db, caplog: pytest.LogCaptureFixture
) -> None:
    case = CASES["smallint-to-decimal-10-2"]
    run_case(services, MySQLEnd(mysql_db), case, caplog)
    warehouse = Warehouse(services)
    warehouse.rows("create view raw_data.items_qty as select id, qty from raw_data.items")

    pipeline.run_table(table_config(case), DAY1, services, rebuild=True)

    assert warehouse.types()["qty"] == "numeric(10,2)"
    assert sorted(warehouse.rows("select id, qty from raw_data.items_qty")) == [
        (1, Decimal("1.00")), (2, Decimal("2.00")), (3, Decimal("3.00")), (4, Decimal("7.50")),
        (5, Decimal("2.25")),
    ]  # fmt: skip


# ------------------------------------------------------------------ the comparison, and Redshift's SQL


@pytest.mark.parametrize(
    ("old", "new", "safe"),
    [
        ("smallint", "integer", True), ("integer", "bigint", True), ("smallint", "bigint", True),
        ("integer", "decimal(20, 0)", True),  # int unsigned -> bigint unsigned
        ("bigint", "decimal(20, 0)", True), ("bigint", "decimal(18, 0)", False),
        ("varchar(10)", "varchar(20)", True), ("varchar(40)", "text", True),
        ("decimal(5, 2)", "decimal(8, 2)", True), ("real", "double precision", True),
        ("bigint", "integer", False), ("varchar(20)", "varchar(10)", False),
        ("decimal(8, 2)", "decimal(5, 2)", False), ("decimal(5, 2)", "decimal(8, 3)", False),
        ("smallint", "decimal(10, 2)", False), ("varchar(10)", "integer", False),
        ("integer", "varchar(10)", False), ("double precision", "real", False),
        ("timestamp", "date", False), ("text", "varchar(10)", False),
    ],
)  # fmt: skip
def test_only_changes_that_keep_every_value_are_safe_widenings(old: str, new: str, safe: bool) -> None:
    assert is_safe_widening(old, new) is safe


def test_every_lossy_column_is_named_in_one_error() -> None:
    table = table_config(Case())
    batch = [("id", "integer"), ("qty", "decimal(10, 2)"), ("code", "integer")]
    raw = [("id", "integer"), ("qty", "smallint"), ("code", "varchar(10)"), ("_loaded_at", "timestamp")]

    with pytest.raises(SchemaDriftError) as raised:
        plan(table, "raw_data.items", batch, raw, DAY1)

    assert "column 'qty' is smallint in the table but decimal(10, 2) in the source" in str(raised.value)
    assert "column 'code' is varchar(10) in the table but integer in the source" in str(raised.value)


REDSHIFT = RedshiftWarehouse(Connection("pipeline_warehouse", "redshift", extra={"iam_role": "arn:x"}))


@pytest.mark.parametrize(
    ("column", "new_type"),
    [("big", "bigint"), ("code", "varchar(80)"), ("price", "decimal(8, 2)")],
)
def test_redshift_widens_by_copying_the_column_in_the_transaction(column: str, new_type: str) -> None:
    statements = REDSHIFT.widen_column_sql("raw_data", table_config(Case()), column, new_type)

    assert statements == [
        f'alter table "raw_data"."items" add column "{column}__widened" {new_type}',
        f'update "raw_data"."items" set "{column}__widened" = "{column}"',
        f'alter table "raw_data"."items" drop column "{column}"',
        f'alter table "raw_data"."items" rename column "{column}__widened" to "{column}"',
    ]


@pytest.mark.parametrize("column", ["id", "modified_at"])
def test_redshift_refuses_to_widen_its_distkey_or_sortkey(column: str) -> None:
    with pytest.raises(SchemaDriftError, match=f"column '{column}' is a distkey/sortkey"):
        REDSHIFT.widen_column_sql("raw_data", table_config(Case()), column, "bigint")


def test_redshift_adds_a_new_column_and_reads_varchar_lengths_in_bytes() -> None:
    from ingestion.warehouse import sql

    assert sql.add_column_sql('"raw_data"."items"', "color", "varchar(48)") == (
        'alter table "raw_data"."items" add column "color" varchar(48)'
    )
    field = pa.field("color", pa.string(), metadata={"source_type": "VARCHAR(12)"})
    assert REDSHIFT.column_types(pa.schema([field])) == [("color", "varchar(48)")]
    assert REDSHIFT.normalize_type("character varying", 48, None, None) == "varchar(48)"
    assert REDSHIFT.normalize_type("numeric", None, 8, 2) == "decimal(8, 2)"
    assert REDSHIFT.normalize_type("timestamp without time zone", None, None, None) == "timestamp"


def test_on_schema_change_defaults_to_append_new_columns() -> None:
    table = config.parse_table({"name": "items", "primary_key": "id", "mode": "full_refresh"}, 0)

    assert table.on_schema_change == "append_new_columns"


def test_an_unknown_on_schema_change_names_the_table_and_the_choices() -> None:
    entry = {"name": "items", "primary_key": "id", "mode": "full_refresh", "on_schema_change": "ignore"}

    with pytest.raises(ConfigError) as raised:
        config.parse_table(entry, 0)

    assert "table 'items': on_schema_change 'ignore' must be one of" in str(raised.value)
    assert "append_new_columns, fail, sync_all_columns" in str(raised.value)
