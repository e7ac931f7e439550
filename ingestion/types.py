"""The one place where MySQL column types map to Arrow (Parquet) and warehouse types.

| MySQL                         | Arrow / Parquet        | PostgreSQL / Redshift          | DuckDB        |
|-------------------------------|------------------------|--------------------------------|---------------|
| tinyint, tinyint(1), smallint | int16                  | smallint                       | smallint      |
| tinyint/smallint unsigned     | int32                  | integer                        | integer       |
| mediumint, int                | int32                  | integer                        | integer       |
| mediumint/int unsigned        | int64                  | bigint                         | bigint        |
| bigint                        | int64                  | bigint                         | bigint        |
| bigint unsigned               | decimal128(20, 0)      | decimal(20, 0)                 | decimal(20,0) |
| decimal(p, s)                 | decimal128(p, s)       | decimal(p, s)                  | decimal(p, s) |
| float / double                | float32 / float64      | real / double precision        | same          |
| datetime, timestamp           | timestamp[us] (UTC)    | timestamp                      | timestamp     |
| date                          | date32                 | date                           | date          |
| year                          | int16                  | smallint                       | smallint      |
| bit(n)                        | int64                  | bigint                         | bigint        |
| char(n), varchar(n)           | string                 | varchar(n) / varchar(4n bytes) | varchar       |
| text types, json, enum, set,  | string                 | text / varchar(65535)          | varchar       |
| time                          |                        |                                |               |
| binary, varbinary, blob types | binary                 | bytea / varbyte(65535)         | blob          |

``tinyint(1)`` stays an integer: MySQL stores any value from -128 to 127 in it,
so 2 is loaded as 2, never folded into a boolean. Zero dates (``0000-00-00``
and dates with a zero month or day) become NULL. ``''`` stays distinct from
NULL. Redshift's VARCHAR length counts bytes, so ``varchar(n)`` of utf8mb4 text
becomes ``varchar(4n)`` there, capped at 65535.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import pyarrow as pa

from ingestion.errors import ExtractError

REDSHIFT_MAX_VARCHAR = 65535

TYPE_PATTERN = re.compile(
    r"^\s*(?P<base>[a-z ]+?)\s*(?:\((?P<args>[^)]*)\))?\s*(?P<unsigned>unsigned)?"
    r"\s*(?:zerofill)?\s*$"
)

TEXT_TYPES = {
    "tinytext", "text", "mediumtext", "longtext", "json", "enum", "set", "time",
    "long varchar", "long",
}  # fmt: skip
BINARY_TYPES = {"binary", "varbinary", "tinyblob", "blob", "mediumblob", "longblob"}
TEMPORAL_TYPES = {"datetime", "timestamp", "date"}


@dataclass(frozen=True)
class Column:
    """A source column with its declared MySQL type, e.g. ``bigint(20) unsigned``."""

    name: str
    source_type: str

    @property
    def arrow_type(self) -> pa.DataType:
        return arrow_type(self.source_type, self.name)

    @property
    def char_length(self) -> int | None:
        base, args, _ = parse_type(self.source_type, self.name)
        if base in ("char", "varchar") and args:
            return int(args[0])
        return None


def parse_type(source_type: str, column: str = "?") -> tuple[str, list[str], bool]:
    match = TYPE_PATTERN.match(source_type.lower())
    if not match:
        raise ExtractError(f"column {column!r}: cannot read the MySQL type {source_type!r}")
    args = [a.strip() for a in (match.group("args") or "").split(",") if a.strip()]
    return match.group("base").strip(), args, bool(match.group("unsigned"))


def arrow_type(source_type: str, column: str = "?") -> pa.DataType:
    """Map a declared MySQL column type to its Arrow type (see the module table)."""
    base, args, unsigned = parse_type(source_type, column)
    if base in ("tinyint", "smallint", "year", "bool", "boolean"):
        return pa.int32() if unsigned and base != "year" else pa.int16()
    if base in ("mediumint", "int", "integer"):
        return pa.int64() if unsigned else pa.int32()
    if base == "bigint":
        return pa.decimal128(20, 0) if unsigned else pa.int64()
    if base in ("decimal", "numeric", "dec", "fixed"):
        precision = int(args[0]) if args else 10
        scale = int(args[1]) if len(args) > 1 else 0
        return pa.decimal128(precision, scale) if precision <= 38 else pa.decimal256(precision, scale)
    if base in ("float", "real") and not args:
        return pa.float32()
    if base in ("float", "double", "double precision", "real"):
        return pa.float64()
    if base in ("datetime", "timestamp"):
        return pa.timestamp("us")
    if base == "date":
        return pa.date32()
    if base == "bit":
        return pa.int64()
    if base in ("char", "varchar", "character", "character varying", "nchar", "nvarchar"):
        return pa.string()
    if base in TEXT_TYPES:
        return pa.string()
    if base in BINARY_TYPES:
        return pa.binary()
    raise ExtractError(
        f"column {column!r}: MySQL type {source_type!r} has no mapping; "
        "cast it in a view or add it to ingestion/types.py"
    )


def is_temporal(column: Column) -> bool:
    return parse_type(column.source_type, column.name)[0] in TEMPORAL_TYPES


def warehouse_type(dialect: str, data_type: pa.DataType, char_length: int | None = None) -> str:
    """Render the warehouse column type for an Arrow type in one dialect."""
    if pa.types.is_int16(data_type):
        return "smallint"
    if pa.types.is_int32(data_type):
        return "integer"
    if pa.types.is_int64(data_type):
        return "bigint"
    if pa.types.is_decimal(data_type):
        return f"decimal({data_type.precision}, {data_type.scale})"
    if pa.types.is_float32(data_type):
        return "real"
    if pa.types.is_float64(data_type):
        return "double precision"
    if pa.types.is_timestamp(data_type):
        return "timestamp"
    if pa.types.is_date32(data_type):
        return "date"
    if pa.types.is_string(data_type) or pa.types.is_large_string(data_type):
        if dialect == "redshift":
            size = min(4 * char_length, REDSHIFT_MAX_VARCHAR) if char_length else REDSHIFT_MAX_VARCHAR
            return f"varchar({size})"
        if dialect == "postgres":
            return f"varchar({char_length})" if char_length else "text"
        return "varchar"
    if pa.types.is_binary(data_type) or pa.types.is_large_binary(data_type):
        return {"redshift": "varbyte(65535)", "postgres": "bytea"}.get(dialect, "blob")
    raise ValueError(f"no warehouse type for Arrow type {data_type}")
