"""Reports: a dbt model exported to a CSV file, for the DAGs scheduled on a model's Asset.

The file is written whole, then renamed into place: a rerun replaces it, a reader
never sees half a file.
"""

from __future__ import annotations

import csv
import logging
import os
from pathlib import Path

from ingestion.environments import Environment
from ingestion.lineage import DBT_SCHEMA
from ingestion.warehouse import open_warehouse
from ingestion.warehouse.sql import quote

log = logging.getLogger(__name__)


def reports_dir(environment: Environment) -> Path:
    return environment.data_dir / "reports"


def export_model_csv(environment: Environment, model: str) -> Path:
    """Write ``analytics.<model>`` to ``<data dir>/reports/<model>.csv``, ordered by its
    first column; return the file's path."""
    warehouse = open_warehouse(environment.warehouse)
    db = warehouse.connect()
    try:
        cursor = warehouse.cursor(db)
        warehouse.execute(cursor, f"select * from {quote(DBT_SCHEMA)}.{quote(model)} order by 1")
        columns = [column[0] for column in cursor.description]
        rows = cursor.fetchall()
    finally:
        db.close()
    path = reports_dir(environment) / f"{model}.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".csv.partial")
    with partial.open("w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(columns)
        writer.writerows(rows)
    os.replace(partial, path)
    log.info("report %s: %d rows written to %s", model, len(rows), path)
    return path
