"""The row checks: count the rows where each measurement put them; a difference is an error.

What each measurement must leave is computed from MariaDB when the run sets up
(``bench.fixtures.create_source`` / ``create_cases``), never from our code: per case, the
row count and a checksum (``sum(score)``, ``sum(deleted)``, ``max(modified_at)``).

* ``client_floor``, ``cx_floor``: the rows the client wrote or read (counted by the worker);
* the extracts: the Parquet row counts of the parts, which must equal the manifest's
  ``record_count`` and the case's rows;
* ``sql_to_s3_operator``: the Parquet row count of the operator's object;
* the PostgreSQL and DuckDB tables: count and checksum of the table, against the case's
  (``ours_merge`` and ``ours_day_load``: the full table after the batch's merge;
  ``copy_batch_floor``: the full table with the batch appended).
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Any

from bench.measure import Measurement
from bench.settings import (
    ADBC_TABLE,
    COPY_TABLE,
    RAW_SCHEMA,
    TABLE,
    Settings,
    pg_connection,
    pipeline_connections,
)

# name -> (the case whose rows it moves, where they land: "count" | "stage" | "peer" |
# "postgres:<table>" | "duckdb:<file>:<table>", the case the landed table must equal)
CHECKS = MappingProxyType(
    {
        "client_floor": ("full", "count", "full"),
        "cx_floor": ("full", "count", "full"),
        "ours_extract": ("full", "stage", "full"),
        "sql_to_s3_operator": ("full", "peer", "full"),
        "copy_floor": ("full", f"postgres:{COPY_TABLE}", "full"),
        "adbc_floor": ("full", f"postgres:{ADBC_TABLE}", "full"),
        "ours_load": ("full", f"postgres:{RAW_SCHEMA}.{TABLE}", "full"),
        "ours_load_staged": ("full", f"postgres:{RAW_SCHEMA}.{TABLE}", "full"),
        "ours_batch_extract": ("batch", "stage", "batch"),
        "copy_batch_floor": ("batch", f"postgres:{COPY_TABLE}", "appended"),
        "ours_merge": ("batch", f"postgres:{RAW_SCHEMA}.{TABLE}", "merged"),
        "ours_day_extract": ("day", "stage", "day"),
        "ours_day_load": ("day", f"postgres:{RAW_SCHEMA}.{TABLE}", "merged"),
        "ours_reconcile": ("full", "count", "full"),  # one key per row of the table
        "ours_embedded_extract": ("embedded", "stage", "embedded"),
        "ours_embedded_load": ("embedded", f"duckdb:warehouse.duckdb:{RAW_SCHEMA}.{TABLE}", "embedded"),
        "duckdb_floor": ("embedded", "duckdb:duckdb_floor.duckdb:floor", "embedded"),
    }
)
CHECKSUM = "select count(*), sum(score), sum(deleted), max(modified_at)::text from {table}"


class MismatchError(Exception):
    """The rows are there but are not the source's."""


def stage_rows(measurement: Measurement, settings: Settings, case: str) -> int:
    aws = pipeline_connections(settings)["aws"]  # first: see IMPORT_ORDER in bench/ours.py
    from bench.ours import open_case_stage

    stage = open_case_stage(settings, case, aws)
    manifest = stage.read_manifest(measurement.detail["manifest_url"])
    found = sum(stage.open_parquet(e.url).metadata.num_rows for e in manifest.entries)
    if manifest.record_count != found:
        raise MismatchError(f"manifest lists {manifest.record_count:,} rows, files hold {found:,}")
    return found


def peer_rows(measurement: Measurement, settings: Settings) -> int:
    import pyarrow.parquet as pq

    aws = pipeline_connections(settings)["aws"]  # first: see IMPORT_ORDER in bench/ours.py
    from ingestion.stage import s3_filesystem

    path = f"{settings.bucket}/{measurement.detail['key']}"
    with s3_filesystem(aws).open_input_file(path) as handle:
        return pq.ParquetFile(handle).metadata.num_rows


def table_checksum(settings: Settings, where: str) -> dict[str, Any]:
    """Count and checksum of a PostgreSQL (``postgres:<table>``) or DuckDB
    (``duckdb:<file in the embedded dir>:<table>``) table."""
    kind, _, rest = where.partition(":")
    if kind == "postgres":
        db = pg_connection(settings, settings.pg_db)
        table = rest
    else:
        import duckdb

        file, _, table = rest.partition(":")
        db = duckdb.connect(str(settings.embedded_dir / file), read_only=True)
    try:
        cursor = db.cursor()
        cursor.execute(CHECKSUM.format(table=table))
        found, score, deleted, last = cursor.fetchone()
    finally:
        db.close()
    return {"rows": int(found), "sum_score": int(score or 0), "sum_deleted": int(deleted or 0),
            "max_modified_at": last}  # fmt: skip


def verify_rows(measurement: Measurement, settings: Settings, expected: dict[str, Any]) -> None:
    """Count the rows where the measurement put them; a difference fails the measurement."""
    if not measurement.ok or measurement.name not in CHECKS:
        return
    case, where, landed = CHECKS[measurement.name]
    n = expected[case]["rows"]
    try:
        if where == "count":
            found = measurement.rows
        elif where == "stage":
            found = stage_rows(measurement, settings, case)
        elif where == "peer":
            found = measurement.rows = peer_rows(measurement, settings)
        else:
            checksum = table_checksum(settings, where)
            if checksum != expected[landed]:
                raise MismatchError(f"{where} checksum {checksum} != source {expected[landed]}")
            found = n  # the table holds the case's rows; the worker's count is checked below
    except MismatchError as exc:
        return measurement.fail(str(exc))
    except Exception as exc:
        return measurement.fail(f"row count check failed: {type(exc).__name__}: {exc}")
    measurement.detail["verified_rows"] = found
    if found != n:
        return measurement.fail(f"ROW COUNT MISMATCH: expected {n:,} rows, found {found:,}")
    if measurement.rows is not None and measurement.rows != n:
        return measurement.fail(
            f"ROW COUNT MISMATCH: the worker reported {measurement.rows:,}, expected {n:,}"
        )
    measurement.rows = n
