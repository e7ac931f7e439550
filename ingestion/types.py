"""The one place where MySQL column types map to Arrow (Parquet) types.

The warehouse column type of each Arrow type is the dialect's ``column_type``
(``ingestion/warehouse/``); the README's types table shows the whole chain.

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

from ingestion.errors import SourceError

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
        raise SourceError(f"column {column!r}: cannot read the MySQL type {source_type!r}", retryable=False)
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
    raise SourceError(
        f"column {column!r}: MySQL type {source_type!r} has no mapping; "
        "cast it in a view or add it to ingestion/types.py",
        retryable=False,
    )


def is_temporal(column: Column) -> bool:
    return parse_type(column.source_type, column.name)[0] in TEMPORAL_TYPES
