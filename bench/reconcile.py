"""The hard-delete reconcile of the bench table, next to the table's full extract.

``ours_reconcile`` measures what ``hard_deletes: reconcile`` adds to a run of an
incremental table of ``--rows`` rows (``make bench ROWS=5000000`` for a 5,000,000-row
table), through the library's public functions:

* the key extract: ``ingestion.reconcile.extract_keys()`` of every ``id`` of the MariaDB
  table into the S3 stage (Parquet + manifest, next to the full extract's manifest);
* the warehouse side: ``ingestion.reconcile.apply()`` against the full ``raw_data.nps``
  (binary ``COPY`` of the keys into a temporary table, the anti-join that flags, the join
  that un-flags), after an empty batch, in a transaction that is rolled back, so the table
  stays as the next measurements expect.

The runner calls :func:`measure` after the incremental measurements (``raw_data.nps`` then
holds the whole table); the ratio of its wall time to ``ours_extract``'s is kept in the
measurement (``vs_full_extract``) and printed by :func:`report_lines`.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from typing import Any

from bench.measure import Clock, Measurement
from bench.settings import RAW_SCHEMA, Settings, pipeline_connections, stage_url, table_config

NAME = "ours_reconcile"


def ours_reconcile(s: Settings, spec: dict[str, Any]) -> dict[str, Any]:
    """The worker: key extract, then the warehouse's flag/un-flag (spec ``manifest_url``)."""
    connections = pipeline_connections(s)  # first: see IMPORT_ORDER in bench/ours.py
    from ingestion import reconcile
    from ingestion.audit import now
    from ingestion.batch import new_batch_id
    from ingestion.sources.mysql import MySQLSource
    from ingestion.stage import open_stage
    from ingestion.warehouse import open_warehouse
    from ingestion.warehouse import sql as q

    table = replace(table_config(s, "day"), hard_deletes="reconcile")
    stage = open_stage(stage_url(s), connections["aws"])
    source = MySQLSource(connections["source"])
    try:
        with Clock() as extract_clock:
            keys = reconcile.extract_keys(table, source, stage, spec["manifest_url"])
    finally:
        source.close()
    warehouse = open_warehouse(connections["warehouse"])
    db = warehouse.connect()
    try:
        cursor = warehouse.cursor(db)
        warehouse.begin(db)
        # The batch the load would merge: empty here, so only the key snapshot counts.
        warehouse.execute(cursor, q.create_staging_sql(RAW_SCHEMA, table, list(table.primary_key)))
        with Clock() as warehouse_clock:
            result = reconcile.apply(
                warehouse, cursor, RAW_SCHEMA, table, stage, spec["manifest_url"], now(), new_batch_id()
            )
    finally:
        db.rollback()
        db.close()
    return {
        "wall_s": extract_clock.wall + warehouse_clock.wall,
        "cpu_s": extract_clock.cpu + warehouse_clock.cpu,
        "rows": keys.rows,
        "key_files": keys.files,
        "key_bytes": keys.bytes,
        "flagged": result.flagged,
        "unflagged": result.unflagged,
        "phases": {
            "key_extract_s": round(extract_clock.wall, 3),
            "warehouse_s": round(warehouse_clock.wall, 3),
        },
    }


def measure(
    record: Any, env: dict[str, str], extracted: Measurement, full_table: bool
) -> Iterator[Measurement]:
    """Record ``ours_reconcile`` (``record``: the round's ``record``) and its ratio to the
    full extract; it needs the full extract's manifest and the full ``raw_data.nps``."""
    if not (extracted.ok and full_table):
        yield Measurement(NAME, error="needs the ours_extract manifest and the full raw_data.nps")
        return
    measurement = record(NAME, env, manifest_url=extracted.detail["manifest_url"])
    if measurement.ok and extracted.wall_s:
        measurement.detail["vs_full_extract"] = round((measurement.wall_s or 0.0) / extracted.wall_s, 3)
    yield measurement


def report_lines(measurements: dict[str, Measurement]) -> list[str]:
    """One line: the reconcile's cost against the full extract's."""
    m, extract = measurements.get(NAME), measurements.get("ours_extract")
    if m is None or not m.ok or extract is None or not extract.ok or not extract.wall_s:
        return []
    phases = m.detail.get("phases", {})
    return [
        f"hard-delete reconcile of {m.rows:,} keys: {m.wall_s:.2f} s (key extract "
        f"{phases.get('key_extract_s', 0.0):.2f} s, warehouse {phases.get('warehouse_s', 0.0):.2f} s) "
        f"= {(m.wall_s or 0.0) / extract.wall_s:.2f} x the full extract ({extract.wall_s:.2f} s)"
    ]
