"""Schema drift: compare a batch's columns with its raw table's, and adapt the table safely.

Every load compares column names and mapped warehouse types of the staged batch
(``Warehouse.column_types``) with those of ``raw_data.<table>``
(``Warehouse.table_column_types``), then, by the table's ``on_schema_change``
(dbt's vocabulary):

- ``append_new_columns`` (default): a new source column is added to the raw
  table (earlier rows NULL); a column the source dropped stays in the raw table,
  NULL for new rows, with a warning; a safe widening widens the raw column;
- ``sync_all_columns``: the same, but a column the source dropped is dropped
  from the raw table too;
- ``fail``: any difference fails.

A change that could lose information (narrowing, a scale change, text to number,
number to text) always fails with :class:`SchemaDriftError` naming the table, the
column, both types and the command that rebuilds the raw table from a full
extract. Nothing is ever cast with loss: ``smallint`` to ``decimal(10, 2)`` fails
rather than loading 7.5 as 8. The statements run in the load's transaction.

The columns the load itself adds (``_loaded_at``, ``_deleted_at``) are not the
source's: they are never compared, and a raw table made before one of them
existed gains it (whatever ``on_schema_change`` says).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from ingestion.batch import LOAD_COLUMNS
from ingestion.config import TableConfig
from ingestion.errors import SchemaDriftError
from ingestion.warehouse import Warehouse
from ingestion.warehouse import sql as q
from ingestion.window import Window

log = logging.getLogger(__name__)

APPEND_NEW_COLUMNS, FAIL, SYNC_ALL_COLUMNS = "append_new_columns", "fail", "sync_all_columns"

INTEGERS = {"smallint": 5, "integer": 10, "bigint": 19}  # decimal digits each holds
INTEGER_ORDER = ["smallint", "integer", "bigint"]
UNBOUNDED_TEXT = {"text", "varchar"}
TYPE = re.compile(r"^(?P<base>[a-z][a-z ]*?)(?:\((?P<first>\d+)(?:,\s*(?P<second>\d+))?\))?$")


def _parse(column_type: str) -> tuple[str, int | None, int | None]:
    match = TYPE.match(column_type.strip().lower())
    if not match:
        return column_type, None, None
    first, second = match.group("first"), match.group("second")
    return match.group("base"), int(first) if first else None, int(second) if second else None


def same_type(old: str, new: str) -> bool:
    return old == new or (old in UNBOUNDED_TEXT and new in UNBOUNDED_TEXT)


def is_safe_widening(old: str, new: str) -> bool:
    """Whether every value of ``old`` fits ``new`` exactly (and ``new`` differs)."""
    (old_base, old_size, old_scale), (new_base, new_size, new_scale) = _parse(old), _parse(new)
    if old_base in INTEGERS and new_base in INTEGERS:
        return INTEGER_ORDER.index(new_base) > INTEGER_ORDER.index(old_base)
    if old_base in INTEGERS and new_base == "decimal":  # e.g. int unsigned, bigint unsigned
        return new_scale == 0 and (new_size or 0) >= INTEGERS[old_base]
    if old_base == new_base == "decimal":
        return old_scale == new_scale and (new_size or 0) > (old_size or 0)
    if (old_base, new_base) == ("real", "double precision"):
        return True
    if old_base in ("varchar", "text") and new_base in ("varchar", "text"):
        if new_size is None:  # unbounded
            return old_size is not None
        return old_size is not None and new_size > old_size
    if old_base == new_base == "varbyte":
        return (new_size or 0) > (old_size or 0)
    return False


@dataclass
class DriftPlan:
    """What differs between the batch and the raw table, and what the load does about it."""

    added: list[tuple[str, str]] = field(default_factory=list)  # (column, type)
    dropped: list[str] = field(default_factory=list)  # in the raw table, not in the batch
    widened: list[tuple[str, str, str]] = field(default_factory=list)  # (column, old, new)
    drop_from_table: bool = False  # sync_all_columns
    load_columns: list[str] = field(default_factory=list)  # load-metadata columns the table lacks

    def __bool__(self) -> bool:
        return bool(self.added or self.dropped or self.widened)

    def describe(self) -> str:
        """One line for the audit row and the log."""
        parts = [f"added {c} {t}" for c, t in self.added]
        parts += [f"added {c} timestamp" for c in self.load_columns]
        parts += [f"widened {c} {old} -> {new}" for c, old, new in self.widened]
        if self.drop_from_table:
            parts += [f"dropped {c}" for c in self.dropped]
        else:
            parts += [f"{c} gone from the source (kept, NULL for new rows)" for c in self.dropped]
        return "; ".join(parts)


def rebuild_command(table: TableConfig, window: Window | None) -> str:
    start = window.start.isoformat() if window else "<start>"
    end = window.end.isoformat() if window else "<end>"
    return f"python -m ingestion run {table.name} --rebuild --start {start} --end {end}"


def plan(
    table: TableConfig,
    target_name: str,
    batch: Sequence[tuple[str, str]],
    raw: Sequence[tuple[str, str]],
    window: Window | None = None,
) -> DriftPlan:
    """Compare the batch's (name, type) with the raw table's; raise on what needs a decision."""
    raw_types = {name: column_type for name, column_type in raw if name not in LOAD_COLUMNS}
    batch_types = dict(batch)
    result = DriftPlan(drop_from_table=table.on_schema_change == SYNC_ALL_COLUMNS)
    result.load_columns = [c for c in LOAD_COLUMNS if raw and c not in {name for name, _ in raw}]
    lossy = []
    for name, new in batch:
        old = raw_types.get(name)
        if old is None:
            result.added.append((name, new))
        elif not same_type(old, new):
            if is_safe_widening(old, new):
                result.widened.append((name, old, new))
            else:
                lossy.append(f"column {name!r} is {old} in the table but {new} in the source")
    result.dropped = [name for name in raw_types if name not in batch_types]
    remedy = (
        f"To reload the table in its new shape from a full extract, run: {rebuild_command(table, window)}"
    )
    if lossy:
        raise SchemaDriftError(
            f"table {target_name}: {'; '.join(lossy)}: loading would lose information, "
            f"so nothing was loaded. {remedy}"
        )
    if result and table.on_schema_change == FAIL:
        raise SchemaDriftError(
            f"table {target_name}: the source's columns changed ({result.describe()}) and the "
            f"table config says on_schema_change: fail, so nothing was loaded. Set on_schema_change "
            f"to append_new_columns or sync_all_columns in config/tables.yml, or: {remedy}"
        )
    return result


def apply(
    warehouse: Warehouse,
    cursor: Any,
    raw_schema: str,
    table: TableConfig,
    drift: DriftPlan,
    window: Window | None = None,
) -> None:
    """Alter the raw table as planned, in the caller's transaction. Views over the table that
    would block a type change or a column drop are dropped and created again around it."""
    target = q.target_table(raw_schema, table)
    target_name = f"{raw_schema}.{table.name}"
    for name in drift.dropped:
        if drift.drop_from_table:
            log.warning("load %s: column %s is gone from the source: dropping it", target_name, name)
        else:
            log.warning(
                "load %s: column %s is gone from the source: kept, NULL for new rows", target_name, name
            )
    statements = [q.add_column_sql(target, name, column_type) for name, column_type in drift.added]
    statements += [q.add_column_sql(target, name, "timestamp") for name in drift.load_columns]
    for name, _, new in drift.widened:
        try:
            statements += warehouse.widen_column_sql(raw_schema, table, name, new)
        except SchemaDriftError as exc:
            raise SchemaDriftError(
                f"table {target_name}: {exc}. To reload the table in its new shape, run: "
                f"{rebuild_command(table, window)}"
            ) from None
    if drift.drop_from_table:
        statements += [q.drop_column_sql(target, name) for name in drift.dropped]
    if not statements:
        return
    views = []
    if drift.widened or (drift.drop_from_table and drift.dropped):
        views = warehouse.dependent_views(cursor, raw_schema, table)
    with_views(warehouse, cursor, views, statements)
    log.info("load %s: schema changes: %s", target_name, drift.describe())


def with_views(warehouse: Warehouse, cursor: Any, views: Sequence, statements: Sequence[str]) -> None:
    """Run the statements with the views dropped (outermost first) and created again after
    (innermost first), in the caller's transaction: a view that no longer fits fails it."""
    for view in reversed(views):
        warehouse.execute(cursor, view.drop_sql())
    for statement in statements:
        warehouse.execute(cursor, statement)
    for view in views:
        warehouse.execute(cursor, view.create_sql())
    if views:
        log.info("recreated view(s) %s over the altered table", ", ".join(v.qualified for v in views))
