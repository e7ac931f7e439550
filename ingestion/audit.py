"""``raw_data._load_audit``: one row per load attempt, succeeded or failed.

A successful load writes its row in its own transaction, before the commit. A
failed load writes a ``failed`` row in a transaction of its own after the
rollback, with the error's class and the first line of its message (connection
strings and passwords removed), so an operator sees failures next to successes.
If even that write fails (the warehouse is unreachable), the failure is logged
and the load's own error is raised.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from ingestion.config import TableConfig
from ingestion.warehouse import Warehouse
from ingestion.warehouse import sql as q
from ingestion.window import Window

log = logging.getLogger(__name__)

SUCCEEDED, FAILED = "succeeded", "failed"
MESSAGE_LENGTH = 1024

_URI_CREDENTIALS = re.compile(r"(\b[a-z][a-z0-9+.-]*://)[^\s/@]+@", re.IGNORECASE)
_SECRET_SETTINGS = re.compile(
    r"\b(password|passwd|pwd|secret|token|aws_secret_access_key|credentials)(\s*[=:]\s*)('[^']*'|\"[^\"]*\"|\S+)",
    re.IGNORECASE,
)


def ensure_audit_table(warehouse: Warehouse, cursor: Any, raw_schema: str) -> None:
    """Create ``_load_audit`` if missing; add the columns an older one lacks (Redshift has no
    ``add column if not exists``, so ``information_schema`` says which are missing)."""
    warehouse.execute(cursor, q.create_audit_sql(raw_schema))
    existing = set(warehouse.table_columns(cursor, raw_schema, q.AUDIT_TABLE))
    for column, column_type in q.AUDIT_ADDED_COLUMNS.items():
        if column not in existing:
            warehouse.execute(cursor, q.add_column_sql(q.audit_table(raw_schema), column, column_type))


def now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def audit_row(
    table: TableConfig,
    window: Window,
    started_at: datetime,
    seconds: float,
    *,
    status: str = SUCCEEDED,
    **values: Any,
) -> dict:
    """Every audit column: the ones not given are NULL (a failed load's row counts)."""
    row = dict.fromkeys(q.AUDIT_COLUMNS)
    row.update(
        table_name=table.name,
        mode=table.mode,
        window_start=window.start,
        window_end=window.end,
        started_at=started_at,
        finished_at=now(),
        duration_seconds=seconds,
        status=status,
    )
    unknown = set(values) - set(row)
    if unknown:
        raise ValueError(f"not audit columns: {', '.join(sorted(unknown))}")
    row.update(values)
    return row


def error_message(exc: BaseException, secrets: Iterable[str | None] = ()) -> str:
    """The first line of an error's message, without credentials, at most 1024 characters."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    text = lines[0] if lines else type(exc).__name__
    text = _URI_CREDENTIALS.sub(r"\1***@", text)
    text = _SECRET_SETTINGS.sub(r"\1\2***", text)
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, "***")
    return text[:MESSAGE_LENGTH]


def record_failure(warehouse: Warehouse, db: Any, raw_schema: str, row: dict, exc: BaseException) -> None:
    """Write a ``failed`` row in a transaction of its own (``db`` after its rollback, or a
    new connection); if that fails too, log it: the caller raises the load's error."""
    row = {
        **row,
        "status": FAILED,
        "error_class": type(exc).__name__,
        "error_message": error_message(exc, [warehouse.connection.password]),
    }
    own = db is None
    try:
        if own:
            db = warehouse.connect()
        cursor = warehouse.cursor(db)
        warehouse.begin(db)
        warehouse.lock_ddl(cursor)
        warehouse.execute(cursor, f"create schema if not exists {q.quote(raw_schema)}")
        ensure_audit_table(warehouse, cursor, raw_schema)
        warehouse.execute(cursor, q.insert_audit_sql(raw_schema), row)
        db.commit()
    except Exception as audit_exc:  # noqa: BLE001 - logged; the load's own error is raised
        log.error(
            "load %s.%s failed (%s) and its failure could not be recorded in %s.%s: %s",
            raw_schema, row["table_name"], row["error_class"], raw_schema, q.AUDIT_TABLE,
            error_message(audit_exc, [warehouse.connection.password]),
        )  # fmt: skip
        try:
            db is not None and db.rollback()
        except Exception:  # noqa: BLE001, S110 - the connection may be gone
            pass
    finally:
        if own and db is not None:
            try:
                db.close()
            except Exception:  # noqa: BLE001, S110
                pass


def last_loaded_end(warehouse: Warehouse, table: TableConfig, raw_schema: str) -> datetime | None:
    """The end of the table's latest successfully loaded window; None before its first load."""
    db = warehouse.connect()
    try:
        cursor = warehouse.cursor(db)
        columns = warehouse.table_columns(cursor, raw_schema, q.AUDIT_TABLE)
        if not columns:
            return None
        succeeded = " and status = %(status)s" if "status" in columns else ""
        sql = f"select max(window_end) from {q.audit_table(raw_schema)} where table_name = %(table)s"
        return warehouse.scalar(cursor, sql + succeeded, {"table": table.name, "status": SUCCEEDED})
    finally:
        db.close()  # a read only: closing ends it
