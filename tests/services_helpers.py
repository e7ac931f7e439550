"""Reading the services environment's warehouse back with plain SQL, for the tests."""

from __future__ import annotations

from ingestion.environments import Environment
from ingestion.warehouse import open_warehouse


def warehouse_rows(environment: Environment, sql: str) -> list[tuple]:
    """Every row ``sql`` returns from the environment's warehouse."""
    db = open_warehouse(environment.warehouse).connect()
    try:
        cursor = db.cursor()
        cursor.execute(sql)
        return [tuple(row) for row in cursor.fetchall()]
    finally:
        db.close()


def warehouse_one(environment: Environment, sql: str) -> tuple:
    """The first row ``sql`` returns."""
    return warehouse_rows(environment, sql)[0]
