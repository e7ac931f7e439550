"""``ingestion.pgcopy`` against a real PostgreSQL: binary COPY streams loaded with ``COPY ... FROM STDIN``.

Every expectation is a literal Python value. The Arrow arrays are built from those values, and
what PostgreSQL stored is read back through psycopg2 (which decodes PostgreSQL's own text output)
and compared with the same literals: the encoder's output is never compared with itself.
"""

from __future__ import annotations

import io
import math
import random
import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

import numpy as np
import psycopg2
import pyarrow as pa
import pytest

from ingestion.errors import LoadError
from ingestion.warehouse import pgcopy

pytestmark = pytest.mark.services

FLOAT32_MAX = 3.4028234663852886e38  # exactly representable in float32, like every real below
FLOAT32_MIN_NORMAL = 1.1754943508222875e-38
FLOAT32_MIN_SUBNORMAL = 1.401298464324817e-45
LONG_TEXT = "日本語😀-" * 100_000  # 1.4 MB of UTF-8


# ------------------------------------------------------------------ helpers


@pytest.fixture
def pg(pg_warehouse) -> Any:
    """An autocommit psycopg2 connection to the test's fresh database."""
    conn = psycopg2.connect(
        host=pg_warehouse.host, port=pg_warehouse.port, user=pg_warehouse.login, dbname=pg_warehouse.schema
    )
    conn.autocommit = True
    try:
        yield conn
    finally:
        conn.close()


def copy_into(
    pg: Any,
    columns: dict[str, str],
    batches: Iterable[pa.RecordBatch],
    constants: Sequence[pa.Scalar] = (),
    select: str | None = None,
    table: str = "t",
) -> list[tuple]:
    """Create ``table`` (column name -> PostgreSQL type), load the COPY stream, return its rows in load order.

    An identity column numbers the rows as COPY inserts them, so the order is PostgreSQL's own.
    """
    names = ", ".join(columns)
    ddl = ", ".join(f"{name} {pg_type}" for name, pg_type in columns.items())
    stream = b"".join(bytes(piece) for piece in pgcopy.copy_stream(iter(batches), constants))
    with pg.cursor() as cursor:
        cursor.execute(f"create table {table} (load_ordinal bigint generated always as identity, {ddl})")
        cursor.copy_expert(f"copy {table} ({names}) from stdin with (format binary)", io.BytesIO(stream))
        cursor.execute(f"select {select or names} from {table} order by load_ordinal")
        rows = cursor.fetchall()
    return [tuple(bytes(v) if isinstance(v, memoryview) else v for v in row) for row in rows]


def same(actual: Any, expected: Any) -> bool:
    """Exact equality: same Python type, floats bit-for-bit in sign and NaN-ness."""
    if isinstance(expected, float) and isinstance(actual, float):
        if math.isnan(expected):
            return math.isnan(actual)
        return actual == expected and math.copysign(1.0, actual) == math.copysign(1.0, expected)
    return type(actual) is type(expected) and actual == expected


def assert_rows(actual: list[tuple], expected: list[tuple]) -> None:
    assert len(actual) == len(expected), f"{len(actual)} rows loaded, {len(expected)} expected"
    wrong = [
        (index, column, got, want)
        for index, (got_row, want_row) in enumerate(zip(actual, expected, strict=True))
        for column, (got, want) in enumerate(zip(got_row, want_row, strict=True))
        if not same(got, want)
    ]
    shown = "\n".join(f"row {i} column {c}: got {g!r:.200}, expected {w!r:.200}" for i, c, g, w in wrong[:10])
    assert not wrong, f"{len(wrong)} values differ:\n{shown}"


def single_column(values: list, arrow_type: pa.DataType, name: str = "c") -> pa.RecordBatch:
    return pa.record_batch([pa.array(values, arrow_type)], names=[name])


# ------------------------------------------------------------------ one column per staged type


@dataclass(frozen=True)
class TypeCase:
    arrow_type: pa.DataType
    pg_type: str
    values: list  # at least four, so that slice(1, 3) is meaningful
    select: str | None = None  # how to read the column back, when not plainly


TYPE_CASES = {
    "int16": TypeCase(pa.int16(), "smallint", [None, -32768, 32767, 0, -1, 1, None]),
    "int32": TypeCase(pa.int32(), "integer", [-2147483648, None, 2147483647, 0, -1, 256]),
    "int64": TypeCase(
        pa.int64(), "bigint", [-9223372036854775808, 9223372036854775807, None, 0, -1, 4294967296]
    ),
    "int32_all_null": TypeCase(pa.int32(), "integer", [None, None, None, None]),
    "float32": TypeCase(
        pa.float32(),
        "real",
        [
            FLOAT32_MAX,
            -FLOAT32_MAX,
            None,
            FLOAT32_MIN_NORMAL,
            FLOAT32_MIN_SUBNORMAL,
            -0.0,
            0.0,
            math.inf,
            -math.inf,
            math.nan,
            0.5,
            -2.75,
            16777216.0,
        ],
        select="c::double precision",  # float4 -> float8 is exact; psycopg2 parses float8 exactly
    ),
    "float64": TypeCase(
        pa.float64(),
        "double precision",
        [
            1.7976931348623157e308,
            -1.7976931348623157e308,
            None,
            2.2250738585072014e-308,
            5e-324,
            -0.0,
            0.0,
            math.inf,
            -math.inf,
            math.nan,
            0.1,
            -1 / 3,
        ],
    ),
    "decimal_20_0": TypeCase(
        pa.decimal128(20, 0),
        "numeric(20, 0)",
        [
            Decimal("18446744073709551615"),
            None,
            Decimal("-18446744073709551615"),
            Decimal("99999999999999999999"),
            Decimal("-99999999999999999999"),
            Decimal("18446744073709551616"),
            Decimal("4294967296"),
            Decimal("-4294967296"),
            Decimal("0"),
            Decimal("-1"),
            Decimal("1"),
        ],
    ),
    "decimal_18_4": TypeCase(
        pa.decimal128(18, 4),
        "numeric(18, 4)",
        [
            Decimal("12345678901234.5678"),
            Decimal("-0.0001"),
            None,
            Decimal("0.0001"),
            Decimal("99999999999999.9999"),
            Decimal("-99999999999999.9999"),
            Decimal("0.0000"),
            Decimal("-12345678901234.5678"),
            Decimal("10000.0000"),
        ],
    ),
    "decimal_38_10": TypeCase(
        pa.decimal128(38, 10),
        "numeric(38, 10)",
        [
            Decimal("9999999999999999999999999999.9999999999"),
            Decimal("-9999999999999999999999999999.9999999999"),
            Decimal("1234567890123456789012345678.0123456789"),
            None,
            Decimal("-0.0000000001"),
            Decimal("0.0000000001"),
            Decimal("0E-10"),
            Decimal("-1.5000000000"),
        ],
    ),
    "decimal_38_0": TypeCase(
        pa.decimal128(38, 0),
        "numeric(38, 0)",
        [
            Decimal("99999999999999999999999999999999999999"),
            Decimal("-99999999999999999999999999999999999999"),
            Decimal(2**64),  # low 64-bit word zero: the two's-complement carry crosses words
            Decimal(-(2**64)),
            None,
            Decimal(-(2**63)),
            Decimal(2**63),
            Decimal(2**64 - 1),
            Decimal(-(2**64) + 1),
        ],
    ),
    "decimal_5_5": TypeCase(
        pa.decimal128(5, 5),
        "numeric(5, 5)",
        [
            Decimal("0.99999"),
            Decimal("-0.99999"),
            None,
            Decimal("0.00001"),
            Decimal("-0.00001"),
            Decimal("0"),
        ],
    ),
    # Fewer than three integer digits (an int8 zero does not fit these types).
    "decimal_4_2": TypeCase(
        pa.decimal128(4, 2),
        "numeric(4, 2)",
        [Decimal("99.99"), None, Decimal("-99.99"), Decimal("0.01"), Decimal(0)],
    ),
    "decimal_1_0_without_nulls": TypeCase(
        pa.decimal128(1, 0), "numeric(1, 0)", [Decimal(9), Decimal(-9), Decimal(0), Decimal(1), Decimal(-1)]
    ),
    "decimal_3_2_without_nulls": TypeCase(
        pa.decimal128(3, 2),
        "numeric(3, 2)",
        [Decimal("9.99"), Decimal("-9.99"), Decimal("0.01"), Decimal("-0.01")],
    ),
    "decimal_12_8": TypeCase(
        pa.decimal128(12, 8),
        "numeric(12, 8)",
        [Decimal("1234.56789012"), Decimal("-0.00000001"), None, Decimal("-9999.99999999"), Decimal("1")],
    ),
    "decimal256_50_3": TypeCase(
        pa.decimal256(50, 3),
        "numeric(50, 3)",
        [
            Decimal("99999999999999999999999999999999999999999999999.999"),
            Decimal("-99999999999999999999999999999999999999999999999.999"),
            None,
            Decimal("0.001"),
            Decimal("-0.001"),
            Decimal(2**128) / 1000,
            Decimal(-(2**128)) / 1000,
            Decimal("12345678901234567890123456789012345678901234567.890"),
            Decimal("0.000"),
        ],
    ),
    "decimal256_76_0": TypeCase(
        pa.decimal256(76, 0),
        "numeric(76, 0)",
        [Decimal(10**76 - 1), Decimal(-(10**76) + 1), None, Decimal(-(2**192)), Decimal(2**192), Decimal(0)],
    ),
    "timestamp_us": TypeCase(
        pa.timestamp("us"),
        "timestamp",
        [
            datetime(1, 1, 1),
            datetime(1000, 1, 1),
            None,
            datetime(1969, 12, 31, 23, 59, 59, 999999),
            datetime(1970, 1, 1),
            datetime(1999, 12, 31, 23, 59, 59, 999999),
            datetime(2000, 1, 1),
            datetime(2000, 1, 1, 0, 0, 0, 1),
            datetime(2026, 10, 30, 12, 34, 56, 789012),
            datetime(9999, 12, 31, 23, 59, 59, 999999),
        ],
    ),
    "timestamp_s": TypeCase(
        pa.timestamp("s"),
        "timestamp",
        [
            datetime(1000, 1, 1, 0, 0, 1),
            None,
            datetime(1969, 12, 31, 23, 59, 59),
            datetime(9999, 12, 31, 23, 59, 59),
        ],
    ),
    "timestamp_ms": TypeCase(
        pa.timestamp("ms"),
        "timestamp",
        [
            datetime(1899, 12, 31, 23, 59, 59, 999000),
            datetime(2000, 1, 1),
            None,
            datetime(2038, 1, 19, 3, 14, 8),
        ],
    ),
    "timestamp_ns": TypeCase(
        pa.timestamp("ns"),
        "timestamp",
        [
            datetime(1677, 9, 22),
            None,
            datetime(1999, 12, 31, 23, 59, 59, 999999),
            datetime(2262, 4, 11, 0, 0, 0, 1),
        ],
    ),
    "date32": TypeCase(
        pa.date32(),
        "date",
        [
            date(1, 1, 1),
            date(1000, 1, 1),
            None,
            date(1969, 12, 31),
            date(1970, 1, 1),
            date(1999, 12, 31),
            date(2000, 1, 1),
            date(2000, 1, 2),
            date(2000, 2, 29),
            date(9999, 12, 31),
        ],
    ),
    "string": TypeCase(
        pa.string(),
        "text",
        [
            "",
            None,
            "NULL",
            "\\N",
            "😀🎉 four-byte",
            "tab\tnew line\ncarriage\r",
            'quote\'s "double" \\ backslash',
            LONG_TEXT,
            "ascii",
        ],
    ),
    "large_string": TypeCase(pa.large_string(), "text", [None, "", "NULL", "😀", LONG_TEXT, "é"]),
    "string_all_null": TypeCase(pa.string(), "text", [None, None, None, None]),
    "varchar_multibyte": TypeCase(
        pa.string(), "varchar(5)", ["ñ日本語😀", "😀😀😀😀😀", None, "", "abcde"]
    ),  # exactly 5 characters, up to 20 bytes
    "binary": TypeCase(
        pa.binary(),
        "bytea",
        [b"", None, b"\x00", b"\x00\x00\x00", b"\\x", bytes(range(256)), b"NULL", b"\xff" * 70_000],
    ),
    "large_binary": TypeCase(pa.large_binary(), "bytea", [b"\\x00", None, b"", b"\x00\xff\x00", b"\\"]),
}


@pytest.mark.parametrize("case", TYPE_CASES.values(), ids=TYPE_CASES.keys())
def test_every_staged_type_round_trips_exactly(pg, case: TypeCase) -> None:
    rows = copy_into(
        pg, {"c": case.pg_type}, [single_column(case.values, case.arrow_type)], select=case.select
    )

    assert_rows(rows, [(value,) for value in case.values])


@pytest.mark.parametrize("case", TYPE_CASES.values(), ids=TYPE_CASES.keys())
def test_a_sliced_batch_loads_exactly_the_sliced_rows(pg, case: TypeCase) -> None:
    batch = single_column(case.values, case.arrow_type).slice(1, 3)
    assert batch.column(0).offset == 1

    rows = copy_into(pg, {"c": case.pg_type}, [batch], select=case.select)

    assert_rows(rows, [(value,) for value in case.values[1:4]])


# ------------------------------------------------------------------ several columns at once

# (name, Arrow type, PostgreSQL type, five values without NULLs)
FIXED_COLUMNS = [
    ("small", pa.int16(), "smallint", [-32768, 32767, 0, 7, -7]),
    ("whole", pa.int32(), "integer", [2147483647, -2147483648, 1, 0, -1]),
    ("big", pa.int64(), "bigint", [9223372036854775807, -9223372036854775808, 0, 10**12, -(10**12)]),
    ("ratio", pa.float32(), "real", [0.5, -0.0, math.inf, FLOAT32_MAX, -2.75]),
    ("measure", pa.float64(), "double precision", [0.1, -math.inf, math.nan, 5e-324, -0.0]),
    (
        "amount",
        pa.decimal128(38, 10),
        "numeric(38, 10)",
        [
            Decimal("9999999999999999999999999999.9999999999"),
            Decimal("-0.0000000001"),
            Decimal("0E-10"),
            Decimal("-1234567890123456789012345678.0123456789"),
            Decimal("42.0000000000"),
        ],
    ),
    (
        "unsigned_id",
        pa.decimal128(20, 0),
        "numeric(20, 0)",
        [
            Decimal("18446744073709551615"),
            Decimal(0),
            Decimal(1),
            Decimal(-5),
            Decimal("99999999999999999999"),
        ],
    ),
    (
        "huge",
        pa.decimal256(50, 3),
        "numeric(50, 3)",
        [
            Decimal("-99999999999999999999999999999999999999999999999.999"),
            Decimal("0.001"),
            Decimal("0.000"),
            Decimal("1.500"),
            Decimal("99999999999999999999999999999999999999999999999.999"),
        ],
    ),
    (
        "created_at",
        pa.timestamp("us"),
        "timestamp",
        [
            datetime(1000, 1, 1),
            datetime(1969, 12, 31, 23, 59, 59, 999999),
            datetime(2000, 1, 1),
            datetime(9999, 12, 31, 23, 59, 59, 999999),
            datetime(2026, 10, 30, 0, 0, 0, 1),
        ],
    ),
    (
        "day",
        pa.date32(),
        "date",
        [date(1000, 1, 1), date(1999, 12, 31), date(2000, 1, 1), date(9999, 12, 31), date(1, 1, 1)],
    ),
]
TEXT_COLUMN = ("label", pa.string(), "text", ["", "NULL", "😀", LONG_TEXT, "plain"])
BYTES_COLUMN = ("payload", pa.binary(), "bytea", [b"\\x", b"", b"\x00\x00", bytes(range(256)), b"x"])


def with_nulls(values: list) -> list:
    """The values with every other one (starting with the second) replaced by NULL."""
    return [None if index % 2 else value for index, value in enumerate(values)]


ALL_COLUMNS = [TEXT_COLUMN, *FIXED_COLUMNS, BYTES_COLUMN]

# Row shapes: only fixed-width columns without NULLs (the encoder's pure byte-matrix path), fixed
# columns around a text and a bytes column (the element-wise join path), fixed columns with NULLs.
SHAPES = {
    "fixed_without_nulls": FIXED_COLUMNS,
    "fixed_and_text": FIXED_COLUMNS[:5] + [TEXT_COLUMN] + FIXED_COLUMNS[5:] + [BYTES_COLUMN],
    "text_first_and_last": ALL_COLUMNS,
    "fixed_with_nulls": [
        (name, t, pg_type, with_nulls(values)) for name, t, pg_type, values in FIXED_COLUMNS
    ],
    "everything_with_nulls": [
        (name, t, pg_type, with_nulls(values)) for name, t, pg_type, values in ALL_COLUMNS
    ],
}


def shape_batch(columns: list) -> pa.RecordBatch:
    return pa.record_batch(
        [pa.array(values, t) for _, t, _, values in columns], names=[c[0] for c in columns]
    )


def shape_ddl(columns: list) -> dict[str, str]:
    return {name: pg_type for name, _, pg_type, _ in columns}


def shape_select(columns: list) -> str:
    return ", ".join(
        f"{name}::double precision" if pg_type == "real" else name for name, _, pg_type, _ in columns
    )


def shape_rows(columns: list) -> list[tuple]:
    return list(zip(*(values for _, _, _, values in columns), strict=True))


@pytest.mark.parametrize("columns", SHAPES.values(), ids=SHAPES.keys())
def test_a_batch_of_many_columns_round_trips_exactly(pg, columns: list) -> None:
    batch = shape_batch(columns)
    if columns is SHAPES["fixed_without_nulls"]:
        assert all(column.null_count == 0 for column in batch.columns)

    rows = copy_into(pg, shape_ddl(columns), [batch], select=shape_select(columns))

    assert_rows(rows, shape_rows(columns))


@pytest.mark.parametrize("columns", SHAPES.values(), ids=SHAPES.keys())
def test_a_sliced_batch_of_many_columns_loads_exactly_the_sliced_rows(pg, columns: list) -> None:
    rows = copy_into(pg, shape_ddl(columns), [shape_batch(columns).slice(1, 3)], select=shape_select(columns))

    assert_rows(rows, shape_rows(columns)[1:4])


LOADED_AT = datetime(2026, 10, 30, 12, 34, 56, 789012)
CONSTANT_SETS = {
    "string_and_timestamp": (
        [pa.scalar("batch-2026-10-30 😀"), pa.scalar(LOADED_AT, pa.timestamp("us"))],
        {"load_id": "text", "loaded_at": "timestamp"},
        ("batch-2026-10-30 😀", LOADED_AT),
    ),
    "null_and_decimal_constants": (
        [
            pa.scalar(None, pa.string()),
            pa.scalar(Decimal("-0.0001"), pa.decimal128(18, 4)),
            pa.scalar(-1, pa.int64()),
        ],
        {"load_id": "text", "load_amount": "numeric(18, 4)", "load_number": "bigint"},
        (None, Decimal("-0.0001"), -1),
    ),
}


@pytest.mark.parametrize(
    "constants, constant_ddl, constant_values", CONSTANT_SETS.values(), ids=CONSTANT_SETS.keys()
)
@pytest.mark.parametrize("shape", ["fixed_without_nulls", "fixed_and_text", "everything_with_nulls"])
def test_constants_are_appended_to_every_row(
    pg, shape: str, constants, constant_ddl, constant_values
) -> None:
    columns = SHAPES[shape]
    batches = [shape_batch(columns), shape_batch(columns).slice(2, 2)]

    rows = copy_into(
        pg,
        shape_ddl(columns) | constant_ddl,
        batches,
        constants,
        select=", ".join([shape_select(columns), *constant_ddl]),
    )

    expected = shape_rows(columns) + shape_rows(columns)[2:4]
    assert_rows(rows, [row + constant_values for row in expected])


# ------------------------------------------------------------------ many random rows


def random_rows(seed: int, count: int) -> dict[str, list]:
    """Columns of random values, about 10% NULL each."""
    rng = random.Random(seed)
    alphabet = "abcXYZ019 _-'\"\\\t\né日本😀🎉ß"

    def maybe(make):
        return [None if rng.random() < 0.1 else make() for _ in range(count)]

    def decimal(precision: int, scale: int) -> Decimal:
        unscaled = rng.randint(-(10**precision) + 1, 10**precision - 1)
        # Small magnitudes too: uniform draws almost never have leading zeros.
        unscaled //= 10 ** rng.randint(0, precision)
        return Decimal(f"{unscaled}E-{scale}")

    def timestamp() -> datetime:
        span = (datetime(9999, 12, 31, 23, 59, 59, 999999) - datetime(1, 1, 1)) // timedelta(microseconds=1)
        return datetime(1, 1, 1) + timedelta(microseconds=rng.randint(0, span))

    def float64() -> float:
        return struct.unpack("<d", rng.getrandbits(64).to_bytes(8, "little"))[0]  # every bit pattern

    return {
        "small": maybe(lambda: rng.randint(-(2**15), 2**15 - 1)),
        "whole": maybe(lambda: rng.randint(-(2**31), 2**31 - 1)),
        "big": maybe(lambda: rng.randint(-(2**63), 2**63 - 1)),
        "measure": maybe(float64),
        "amount": maybe(lambda: decimal(38, 10)),
        "price": maybe(lambda: decimal(18, 4)),
        "unsigned_id": maybe(lambda: Decimal(rng.randint(0, 2**64 - 1))),
        "huge": maybe(lambda: decimal(50, 3)),
        "created_at": maybe(timestamp),
        "day": maybe(lambda: date.fromordinal(rng.randint(1, date(9999, 12, 31).toordinal()))),
        "label": maybe(lambda: "".join(rng.choices(alphabet, k=rng.randint(0, 40)))),
        "payload": maybe(lambda: rng.randbytes(rng.randint(0, 20))),
    }


RANDOM_TYPES = {
    "small": (pa.int16(), "smallint"),
    "whole": (pa.int32(), "integer"),
    "big": (pa.int64(), "bigint"),
    "measure": (pa.float64(), "double precision"),
    "amount": (pa.decimal128(38, 10), "numeric(38, 10)"),
    "price": (pa.decimal128(18, 4), "numeric(18, 4)"),
    "unsigned_id": (pa.decimal128(20, 0), "numeric(20, 0)"),
    "huge": (pa.decimal256(50, 3), "numeric(50, 3)"),
    "created_at": (pa.timestamp("us"), "timestamp"),
    "day": (pa.date32(), "date"),
    "label": (pa.string(), "text"),
    "payload": (pa.binary(), "bytea"),
}


@pytest.mark.parametrize("seed", [20261030, 7])
def test_a_large_random_batch_round_trips_exactly(pg, seed: int) -> None:
    values = random_rows(seed, 20_000)
    batch = pa.record_batch(
        [pa.array(values[name], arrow_type) for name, (arrow_type, _) in RANDOM_TYPES.items()],
        names=list(RANDOM_TYPES),
    )
    batches = [batch.slice(0, 7_001), batch.slice(7_001)]  # two batches, the second at an odd offset

    rows = copy_into(pg, {name: pg_type for name, (_, pg_type) in RANDOM_TYPES.items()}, batches)

    assert_rows(rows, list(zip(*values.values(), strict=True)))


# ------------------------------------------------------------------ empty streams

EMPTY_STREAMS = {
    "no_batches": [],
    "one_empty_batch": [shape_batch(SHAPES["fixed_and_text"]).slice(0, 0)],
    "empty_batches_of_every_shape": [
        shape_batch(columns).slice(3, 0) for columns in [SHAPES["fixed_and_text"]] * 3
    ],
}


@pytest.mark.parametrize("batches", EMPTY_STREAMS.values(), ids=EMPTY_STREAMS.keys())
@pytest.mark.parametrize("constants", [(), (pa.scalar("load"),)], ids=["no_constants", "a_constant"])
def test_an_empty_stream_loads_no_rows(pg, batches: list, constants: tuple) -> None:
    columns = SHAPES["fixed_and_text"]
    ddl = shape_ddl(columns) | ({"load_id": "text"} if constants else {})

    rows = copy_into(pg, ddl, batches, constants)

    assert rows == []


def test_empty_batches_between_others_add_no_rows(pg) -> None:
    columns = SHAPES["fixed_and_text"]
    batch = shape_batch(columns)
    batches = [batch.slice(0, 0), batch.slice(0, 2), batch.slice(2, 0), batch.slice(2, 3), batch.slice(5, 0)]

    rows = copy_into(pg, shape_ddl(columns), batches, select=shape_select(columns))

    assert_rows(rows, shape_rows(columns))


# ------------------------------------------------------------------ refused input (no database)

UNSUPPORTED = {
    "bool": pa.array([True, None], pa.bool_()),
    "int8": pa.array([1, None], pa.int8()),
    "uint8": pa.array([1, None], pa.uint8()),
    "uint16": pa.array([1, None], pa.uint16()),
    "uint32": pa.array([1, None], pa.uint32()),
    "uint64": pa.array([2**64 - 1, None], pa.uint64()),
    "float16": pa.array(np.array([1.5, 2.0], np.float16)),
    "timestamp_utc": pa.array([datetime(2026, 1, 1), None], pa.timestamp("us", tz="UTC")),
    "timestamp_offset": pa.array([datetime(2026, 1, 1), None], pa.timestamp("s", tz="+02:00")),
    "date64": pa.array([date(2026, 1, 1), None], pa.date64()),
    "time64": pa.array([1, None], pa.time64("us")),
    "time32": pa.array([1, None], pa.time32("s")),
    "duration": pa.array([1, None], pa.duration("us")),
    "list": pa.array([[1, 2], None], pa.list_(pa.int64())),
    "large_list": pa.array([[1], []], pa.large_list(pa.int32())),
    "struct": pa.array([{"a": 1}, None], pa.struct([("a", pa.int64())])),
    "map": pa.array([[("k", 1)], None], pa.map_(pa.string(), pa.int64())),
    "dictionary": pa.array(["a", "b", None]).dictionary_encode().slice(0, 2),
    "null": pa.array([None, None], pa.null()),
    "fixed_size_binary": pa.array([b"ab", None], pa.binary(2)),
    "string_view": pa.array(["a", None], pa.string_view()),
    "decimal_negative_scale": pa.array([Decimal("12300"), None], pa.decimal128(5, -2)),
}


@pytest.mark.parametrize("array", UNSUPPORTED.values(), ids=UNSUPPORTED.keys())
def test_an_unsupported_type_raises_load_error_naming_the_column(array: pa.Array) -> None:
    batch = pa.record_batch([pa.array([1, 2], pa.int32()), array], names=["id", "bad_column"])

    with pytest.raises(LoadError, match="'bad_column'"):
        pgcopy.encode_batch(batch)
    with pytest.raises(LoadError, match="'bad_column'"):
        b"".join(bytes(piece) for piece in pgcopy.copy_stream(iter([batch])))


@pytest.mark.parametrize(
    "constant",
    [
        pa.scalar(True),
        pa.scalar(datetime(2026, 1, 1), pa.timestamp("us", tz="UTC")),
        pa.scalar([1], pa.list_(pa.int8())),
    ],
    ids=["bool", "timestamp_utc", "list"],
)
def test_an_unsupported_constant_raises_load_error(constant: pa.Scalar) -> None:
    with pytest.raises(LoadError):
        pgcopy.encode_batch(pa.record_batch([pa.array([1], pa.int32())], names=["id"]), [constant])


def test_sub_microsecond_timestamps_raise_load_error_naming_the_column() -> None:
    batch = pa.record_batch([pa.array([1_500], pa.timestamp("ns"))], names=["happened_at"])

    with pytest.raises(LoadError, match="'happened_at'"):
        pgcopy.encode_batch(batch)


def viewed(value: str, source: pa.DataType, target: pa.DataType) -> pa.Array:
    return pa.array([Decimal(value)], source).view(target)


def cast_unsafely(value: str, source: pa.DataType, target: pa.DataType) -> pa.Array:
    return pa.array([Decimal(value)], source).cast(target, safe=False)


OVERFLOWING = {
    # Beyond the base-10000 digits the declared precision rounds up to: refused.
    "123.45_viewed_as_2_0": (viewed, "123.45", pa.decimal128(5, 2), pa.decimal128(2, 0)),
    "123456.78_viewed_as_5_2": (viewed, "123456.78", pa.decimal128(10, 2), pa.decimal128(5, 2)),
    "12345_cast_unsafely_to_3_0": (cast_unsafely, "12345", pa.decimal128(5, 0), pa.decimal128(3, 0)),
    "10^20_viewed_as_20_0": (viewed, "1" + "0" * 20, pa.decimal128(21, 0), pa.decimal128(20, 0)),
    "-10^20_viewed_as_20_0": (viewed, "-1" + "0" * 20, pa.decimal128(21, 0), pa.decimal128(20, 0)),
    "1.00000_viewed_as_5_5": (viewed, "1.00000", pa.decimal128(6, 5), pa.decimal128(5, 5)),
    "10^48_viewed_as_decimal256_48_0": (viewed, "1" + "0" * 48, pa.decimal256(49, 0), pa.decimal256(48, 0)),
    # Within those base-10000 digits, beyond the declared precision only.
    "123.45_viewed_as_4_2": (viewed, "123.45", pa.decimal128(5, 2), pa.decimal128(4, 2)),
    "-123.45_viewed_as_3_2": (viewed, "-123.45", pa.decimal128(5, 2), pa.decimal128(3, 2)),
    "123.45_cast_unsafely_to_5_4": (cast_unsafely, "123.45", pa.decimal128(5, 2), pa.decimal128(5, 4)),
    "123.45_cast_unsafely_to_4_3": (cast_unsafely, "123.45", pa.decimal128(5, 2), pa.decimal128(4, 3)),
    "10^14_viewed_as_18_4": (viewed, "1" + "0" * 14, pa.decimal128(19, 4), pa.decimal128(18, 4)),
    "10^47_viewed_as_decimal256_50_3": (viewed, "1" + "0" * 47, pa.decimal256(51, 3), pa.decimal256(50, 3)),
}


@pytest.mark.parametrize("make, value, source, target", OVERFLOWING.values(), ids=OVERFLOWING.keys())
def test_a_decimal_beyond_its_precision_raises_load_error_naming_the_column(
    make, value, source, target
) -> None:
    # The type itself is encodable: in-range values of it are accepted.
    pgcopy.encode_batch(pa.record_batch([pa.array([Decimal(0), None], target)], names=["amount"]))
    array = make(value, source, target)
    assert array.type == target
    try:  # Arrow's own judgement that the value really is out of range
        array.validate(full=True)
    except pa.ArrowInvalid as exc:
        assert "does not fit in precision" in str(exc), exc
    else:
        raise AssertionError(f"{array.to_pylist()} fits {target}: not an overflow case")
    batch = pa.record_batch([pa.array([1], pa.int32()), array], names=["id", "amount"])

    with pytest.raises(LoadError, match="'amount'"):
        pgcopy.encode_batch(batch)


def test_a_null_decimal_slot_is_not_checked_against_the_precision(pg) -> None:
    # Arrow leaves the bytes under a NULL slot undefined; here they hold 10^30.
    data = b"".join(v.to_bytes(16, "little", signed=True) for v in [12345, 10**30, -1])
    validity = pa.py_buffer(bytes([0b101]))
    array = pa.Array.from_buffers(pa.decimal128(5, 2), 3, [validity, pa.py_buffer(data)])
    assert array.to_pylist() == [Decimal("123.45"), None, Decimal("-0.01")]

    rows = copy_into(pg, {"amount": "numeric(5, 2)"}, [pa.record_batch([array], names=["amount"])])

    assert_rows(rows, [(Decimal("123.45"),), (None,), (Decimal("-0.01"),)])
