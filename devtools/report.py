"""What the demo prints at the end: raw row counts and the MAU summary."""

from __future__ import annotations

from typing import Any

from ingestion.batch import LOADED_AT
from ingestion.config import TableConfig
from ingestion.environments import Environment
from ingestion.load import RAW_SCHEMA
from ingestion.warehouse import open_warehouse
from ingestion.warehouse.sql import AUDIT_TABLE, quote


def query(environment: Environment, sql: str) -> tuple[list[str], list[tuple]]:
    warehouse = open_warehouse(environment.warehouse)
    db = warehouse.connect()
    try:
        cursor = db.cursor()
        cursor.execute(sql)
        names = [d[0] for d in cursor.description]
        return names, cursor.fetchall()
    finally:
        db.close()


def format_table(names: list[str], rows: list[tuple]) -> str:
    cells = [[str(v) for v in row] for row in rows]
    widths = [max(len(n), *(len(r[i]) for r in cells)) if cells else len(n) for i, n in enumerate(names)]
    line = "  ".join(n.ljust(w) for n, w in zip(names, widths, strict=True))
    body = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in cells]
    return "\n".join([line, "  ".join("-" * w for w in widths), *body])


def raw_counts(environment: Environment, tables: dict[str, TableConfig]) -> list[tuple[Any, ...]]:
    """(table, rows, last _loaded_at) of each raw table; names are only ever quoted identifiers."""
    counts = []
    for name in sorted(tables):
        sql = f"select count(*), max({quote(LOADED_AT)}) from {quote(RAW_SCHEMA)}.{quote(name)}"
        counts.append((name, *query(environment, sql)[1][0]))
    return counts


def demo_report(environment: Environment, tables: dict[str, TableConfig]) -> str:
    counts = raw_counts(environment, tables)
    audit = query(
        environment,
        f"select count(*), sum(rows_staged), sum(rows_inserted) "
        f"from {quote(RAW_SCHEMA)}.{quote(AUDIT_TABLE)}",
    )[1][0]
    names, mau = query(
        environment,
        "select activity_month, active_users, session_count from analytics.mau_summary order by 1",
    )
    return "\n".join(
        [
            f"raw_data tables ({environment.name}: {environment.warehouse.conn_type}):",
            format_table(["table", "rows", "last _loaded_at"], counts),
            "",
            f"raw_data._load_audit: {audit[0]} loads, {audit[1]} rows staged, {audit[2]} inserted",
            "",
            "analytics.mau_summary:",
            format_table(names, mau),
        ]
    )
