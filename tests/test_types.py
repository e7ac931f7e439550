"""MySQL column types map to one Arrow type and one column type per warehouse."""

from __future__ import annotations

import pyarrow as pa
import pytest

from ingestion.environments import Connection
from ingestion.errors import ExtractError
from ingestion.types import Column, arrow_type
from ingestion.warehouse import DIALECTS as WAREHOUSES


@pytest.mark.parametrize(
    ("source_type", "expected"),
    [
        ("tinyint(1)", pa.int16()),
        ("TINYINT(1)", pa.int16()),
        ("tinyint", pa.int16()),
        ("smallint(6)", pa.int16()),
        ("bool", pa.int16()),
        ("tinyint unsigned", pa.int32()),
        ("smallint(5) unsigned", pa.int32()),
        ("mediumint", pa.int32()),
        ("int(11)", pa.int32()),
        ("INT", pa.int32()),
        ("integer", pa.int32()),
        ("mediumint unsigned", pa.int64()),
        ("int(10) unsigned", pa.int64()),
        ("int unsigned zerofill", pa.int64()),
        ("bigint(20)", pa.int64()),
        ("bigint unsigned", pa.decimal128(20, 0)),
        ("bigint(20) unsigned", pa.decimal128(20, 0)),
        ("decimal(18,4)", pa.decimal128(18, 4)),
        ("decimal(18, 4)", pa.decimal128(18, 4)),
        ("numeric(10)", pa.decimal128(10, 0)),
        ("decimal", pa.decimal128(10, 0)),
        ("decimal(65,30)", pa.decimal256(65, 30)),
        ("float", pa.float32()),
        ("double", pa.float64()),
        ("double precision", pa.float64()),
        ("datetime", pa.timestamp("us")),
        ("DATETIME", pa.timestamp("us")),
        ("datetime(6)", pa.timestamp("us")),
        ("timestamp", pa.timestamp("us")),
        ("date", pa.date32()),
        ("year", pa.int16()),
        ("year(4)", pa.int16()),
        ("bit(1)", pa.int64()),
        ("char(2)", pa.string()),
        ("varchar(32)", pa.string()),
        ("VARCHAR(32)", pa.string()),
        ("text", pa.string()),
        ("mediumtext", pa.string()),
        ("longtext", pa.string()),
        ("json", pa.string()),
        ("enum('web','ios','android')", pa.string()),
        ("set('a','b')", pa.string()),
        ("time", pa.string()),
        ("binary(16)", pa.binary()),
        ("varbinary(255)", pa.binary()),
        ("blob", pa.binary()),
        ("longblob", pa.binary()),
    ],
)
def test_arrow_type_of_mysql_type(source_type: str, expected: pa.DataType) -> None:
    assert arrow_type(source_type, "c") == expected


@pytest.mark.parametrize(
    ("source_type", "fragment"),
    [
        ("geometry", "has no mapping"),
        ("point", "has no mapping"),
        ("polygon", "has no mapping"),
        ("int(", "cannot read the MySQL type"),
        ("varchar(32) character set utf8mb4", "cannot read the MySQL type"),
    ],
)
def test_unknown_type_raises_extract_error_naming_the_column(source_type: str, fragment: str) -> None:
    with pytest.raises(ExtractError) as raised:
        arrow_type(source_type, "location")

    message = str(raised.value)
    assert "column 'location'" in message
    assert repr(source_type) in message
    assert fragment in message


def test_unknown_type_of_a_column_names_the_column() -> None:
    with pytest.raises(ExtractError, match="column 'shape'"):
        Column("shape", "multipolygon").arrow_type  # noqa: B018 - the property raises


# source type, then the column type in postgres, redshift, duckdb
WAREHOUSE_TYPES = [
    ("tinyint(1)", "smallint", "smallint", "smallint"),
    ("smallint unsigned", "integer", "integer", "integer"),
    ("int", "integer", "integer", "integer"),
    ("int unsigned", "bigint", "bigint", "bigint"),
    ("bigint", "bigint", "bigint", "bigint"),
    ("bigint unsigned", "decimal(20, 0)", "decimal(20, 0)", "decimal(20, 0)"),
    ("decimal(18,4)", "decimal(18, 4)", "decimal(18, 4)", "decimal(18, 4)"),
    ("float", "real", "real", "real"),
    ("double", "double precision", "double precision", "double precision"),
    ("datetime", "timestamp", "timestamp", "timestamp"),
    ("timestamp", "timestamp", "timestamp", "timestamp"),
    ("date", "date", "date", "date"),
    ("year", "smallint", "smallint", "smallint"),
    ("bit(8)", "bigint", "bigint", "bigint"),
    ("char(2)", "varchar(2)", "varchar(8)", "varchar"),
    ("varchar(32)", "varchar(32)", "varchar(128)", "varchar"),
    ("varchar(16383)", "varchar(16383)", "varchar(65532)", "varchar"),
    ("varchar(16384)", "varchar(16384)", "varchar(65535)", "varchar"),
    ("varchar(20000)", "varchar(20000)", "varchar(65535)", "varchar"),
    ("text", "text", "varchar(65535)", "varchar"),
    ("longtext", "text", "varchar(65535)", "varchar"),
    ("json", "text", "varchar(65535)", "varchar"),
    ("enum('a','b')", "text", "varchar(65535)", "varchar"),
    ("varbinary(16)", "bytea", "varbyte(65535)", "blob"),
    ("blob", "bytea", "varbyte(65535)", "blob"),
]
DIALECTS = ("postgres", "redshift", "duckdb")


def warehouse(dialect: str):
    return WAREHOUSES[dialect](Connection("pipeline_warehouse", dialect))


@pytest.mark.parametrize(
    ("source_type", "dialect", "expected"),
    [
        pytest.param(source_type, dialect, expected, id=f"{source_type}-{dialect}")
        for source_type, *per_dialect in WAREHOUSE_TYPES
        for dialect, expected in zip(DIALECTS, per_dialect, strict=True)
    ],
)
def test_warehouse_type_of_mysql_type(source_type: str, dialect: str, expected: str) -> None:
    column = Column("c", source_type)

    assert warehouse(dialect).column_type(column.arrow_type, column.char_length) == expected


@pytest.mark.parametrize(
    ("source_type", "dialect", "expected"),
    [
        ("VARCHAR(32)", "redshift", '"c" varchar(128)'),
        ("VARCHAR(32)", "postgres", '"c" varchar(32)'),
        ("CHAR(3)", "redshift", '"c" varchar(12)'),
        ("TEXT", "redshift", '"c" varchar(65535)'),
        ("TINYINT(1)", "redshift", '"c" smallint'),
        ("DATETIME", "duckdb", '"c" timestamp'),
    ],
)
def test_target_column_definition_uses_the_declared_length(
    source_type: str, dialect: str, expected: str
) -> None:
    field = pa.field("c", arrow_type(source_type), metadata={"source_type": source_type})

    assert warehouse(dialect).column_definitions(pa.schema([field])) == [expected]
