"""What every source shares: the interface, the extract query, Python values to Arrow.

Every source has the same interface, so :mod:`ingestion.extract` does not
know which database it reads:

* ``columns(table)`` - the table's columns with their declared MySQL types;
* ``read(table, columns, window, batch_rows)`` - an iterator of record batches
  read in one consistent snapshot, with the window bounds as bind parameters;
* ``key_is_unique(table)`` - whether the configured key is a unique index;
* ``key_boundaries(table, columns, window, chunks)`` - where a chunked extract splits
  the window's keys (``ingestion/keyrange.py``); ``read`` then takes one ``key_range``.
"""

from __future__ import annotations

import gc
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from operator import itemgetter
from typing import TYPE_CHECKING, Any, Protocol

import pyarrow as pa
import pyarrow.compute as pc

from ingestion.config import TableConfig
from ingestion.errors import SourceError
from ingestion.types import Column, is_temporal
from ingestion.window import Window

if TYPE_CHECKING:
    from ingestion.keyrange import KeyRange

ZERO_DATE = r"^0000|^\d{4}-00|^\d{4}-\d{2}-00"


class Source(Protocol):
    def columns(self, table: TableConfig) -> list[Column]: ...

    def read(
        self,
        table: TableConfig,
        columns: Sequence[Column],
        window: Window,
        batch_rows: int,
        key_range: KeyRange | None = None,
    ) -> Iterator[pa.RecordBatch]: ...

    def key_is_unique(self, table: TableConfig) -> bool: ...

    def key_boundaries(
        self, table: TableConfig, columns: Sequence[Column], window: Window, chunks: int
    ) -> list[tuple]: ...

    def close(self) -> None: ...


def unique_key_in(table: TableConfig, index_columns: Sequence[tuple[str, str]]) -> bool:
    """Is the configured key exactly the columns of one unique index?

    ``index_columns`` lists (index name, column) pairs of the source's unique
    indexes. Then one consistent snapshot holds each key once, and the load
    may skip its dedupe.
    """
    indexes: dict[str, set[str]] = {}
    for index, column in index_columns:
        indexes.setdefault(index, set()).add(column.lower())
    wanted = {c.lower() for c in table.primary_key}
    return any(columns == wanted for columns in indexes.values())


def where_sql(
    table: TableConfig,
    window: Window,
    quote: Callable[[str], str],
    placeholder: str,
    bound: Any = None,
    key_range: KeyRange | None = None,
    key: Sequence[Column] = (),
) -> tuple[str, list[Any]]:
    """`` WHERE ...`` of a read: the cursor window (incremental tables) and the key range
    of a chunk (``key``: the key's columns), bounds bound; ``""`` for every row."""
    conditions: list[str] = []
    params: list[Any] = []
    if table.is_incremental:
        cursor = quote(table.cursor or "")
        conditions += [f"{cursor} >= {placeholder}", f"{cursor} < {placeholder}"]
        convert = bound or (lambda value: value)
        params += [convert(window.extract_start(table.lookback)), convert(window.end)]
    if key_range is not None:
        more, more_params = key_range.predicate(key, quote, placeholder)
        conditions += more
        params += more_params
    return (" WHERE " + " AND ".join(conditions) if conditions else ""), params


def select_sql(
    table: TableConfig,
    columns: Sequence[Column],
    window: Window,
    qualified_table: str,
    quote: Callable[[str], str],
    placeholder: str,
    bound: Any = None,
    key_range: KeyRange | None = None,
) -> tuple[str, list[Any]]:
    """The extract query: every row (full refresh) or the cursor window, bounds bound;
    with ``key_range``, only the keys of one chunk.

    ``quote`` is the source dialect's identifier quoting; ``qualified_table`` is quoted.
    """
    column_list = ", ".join(quote(c.name) for c in columns)
    key = [c for name in table.primary_key for c in columns if c.name == name]
    where, params = where_sql(table, window, quote, placeholder, bound, key_range, key)
    return f"SELECT {column_list} FROM {qualified_table}{where}", params


def to_arrow(values: Sequence[Any], column: Column) -> pa.Array:
    """Convert one column of Python values (as a driver returns them) to Arrow."""
    target = column.arrow_type
    if is_temporal(column):
        if any(isinstance(v, (str, bytes)) for v in values):
            try:  # Arrow takes str and UTF-8 bytes alike (and checks the bytes)
                text = pa.array(values, pa.string())
            except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
                raise SourceError(f"column {column.name!r} ({column.source_type}): {exc}") from None
            zero = pc.fill_null(pc.match_substring_regex(text, ZERO_DATE), False)
            text = pc.if_else(zero, pa.scalar(None, pa.string()), text)
            return cast_column(text, target, column)
        return pa.array(values, target)
    try:
        return pa.array(values, target)
    except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, OverflowError):
        text = pa.array(
            [None if v is None else (v.decode() if isinstance(v, bytes) else str(v)) for v in values],
            pa.string(),
        )
        return cast_column(text, target, column)


def cast_column(text: pa.Array, target: pa.DataType, column: Column) -> pa.Array:
    """Arrow's C++ cast of a column's text, with an error naming the column."""
    try:
        return text.cast(target)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        raise SourceError(
            f"column {column.name!r} ({column.source_type}): value does not fit {target}: {exc}"
        ) from None


def rows_to_batch(rows: Sequence[tuple], columns: Sequence[Column], schema: pa.Schema) -> pa.RecordBatch:
    """Row tuples (all of the select list's length) to one record batch of ``schema``."""
    if rows and len(rows[0]) != len(columns):
        raise SourceError(f"rows of {len(rows[0])} values for {len(columns)} columns")
    # One column's values at a time, taken in C (twice as fast as zip(*rows)).
    by_column = [list(map(itemgetter(index), rows)) for index in range(len(columns))]
    arrays = [to_arrow(values, column) for values, column in zip(by_column, columns, strict=True)]
    return pa.RecordBatch.from_arrays(arrays, schema=schema)


@contextmanager
def collector_paused() -> Iterator[None]:
    """Python's cyclic garbage collector off while one batch's rows are fetched and
    converted: the row tuples are in no cycle, and the collector's passes over them (each
    100,000-row batch triggers hundreds) cost a fifth of a read. On again before the batch
    is handed on; left off if it was off."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def source_schema(columns: Sequence[Column]) -> pa.Schema:
    """Arrow schema of the source columns; each field remembers its MySQL type."""
    return pa.schema(pa.field(c.name, c.arrow_type, metadata={"source_type": c.source_type}) for c in columns)
