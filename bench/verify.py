"""The row checks: count the rows where each measurement put them; a difference is an error.

* ``client_floor``: the lines of the client dump (counted by the worker);
* ``ours_extract``: the Parquet row counts of our parts, which must equal the manifest's
  ``record_count``;
* ``sql_to_s3_operator``: the Parquet row count of the operator's object;
* ``copy_floor``, ``ours_load``, ``ours_load_staged``: ``count(*)`` plus a checksum
  (``sum(score)``, ``sum(deleted)``, ``max(modified_at)``) of the PostgreSQL table, which
  must equal the source's.
"""

from __future__ import annotations

from typing import Any

from bench.measure import Measurement
from bench.settings import (
    COPY_TABLE,
    RAW_SCHEMA,
    TABLE,
    Settings,
    pg_connection,
    pipeline_connections,
    stage_url,
)


def extract_rows(measurement: Measurement, settings: Settings) -> int:
    aws = pipeline_connections(settings)["aws"]  # first: see IMPORT_ORDER in bench/ours.py
    from ingestion.stage import open_stage

    stage = open_stage(stage_url(settings), aws)
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


def warehouse_rows(measurement: Measurement, settings: Settings, expected: dict[str, Any]) -> int:
    table = COPY_TABLE if measurement.name == "copy_floor" else f"{RAW_SCHEMA}.{TABLE}"
    db = pg_connection(settings, settings.pg_db)
    try:
        with db.cursor() as cursor:
            cursor.execute(f"select count(*), sum(score), sum(deleted), max(modified_at)::text from {table}")
            found, score, deleted, last = cursor.fetchone()
    finally:
        db.close()
    checksum = {"sum_score": int(score or 0), "sum_deleted": int(deleted or 0), "max_modified_at": last}
    if checksum != expected:
        raise MismatchError(f"PostgreSQL {table} checksum {checksum} != source {expected}")
    return found


class MismatchError(Exception):
    """The rows are there but are not the source's."""


def verify_rows(measurement: Measurement, settings: Settings, expected: dict[str, Any]) -> None:
    """Count the rows where the measurement put them; a difference fails the measurement."""
    if not measurement.ok:
        return
    name, n = measurement.name, settings.rows
    try:
        if name == "client_floor":
            found = measurement.rows
        elif name == "ours_extract":
            found = extract_rows(measurement, settings)
        elif name == "sql_to_s3_operator":
            found = measurement.rows = peer_rows(measurement, settings)
        else:
            found = warehouse_rows(measurement, settings, expected)
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
