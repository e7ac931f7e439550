"""Hard deletes: flag the raw rows whose key is gone from the source.

An incremental extract reads the rows whose cursor moved; a row deleted at the
source never moves again, so it would stay in ``raw_data`` (and every mart)
for good. With ``hard_deletes: reconcile`` in the table config:

* the extract also streams the source's primary-key columns, every row, in a
  snapshot of their own (read after the data: a row deleted in between is
  still in the batch and is flagged by the next run), through the stage like
  any batch: ``<attempt>/keys/part-NNNNN.parquet`` and ``<attempt>/keys/manifest.json``,
  found from the data manifest's URL alone, so the DAG still hands one string on;
* the load, in the transaction that merges the batch, bulk-loads those keys
  (plus the batch's own, which exist too) into a temporary table and anti-joins
  it against ``raw_data.<table>``: a row whose key is in neither gets
  ``_deleted_at`` = the load time; a flagged row whose key is back gets
  ``_deleted_at`` NULL. Both stamp ``_loaded_at``, so incremental dbt models
  pick the change up. Rows are flagged, never deleted (like Fivetran's
  ``_fivetran_deleted``);
* a ``full_refresh`` batch holds every key already: it is the key set, no
  separate key extract runs, and gone rows are flagged instead of deleted.

The audit row counts the rows flagged and un-flagged. The SQL text is in
``ingestion/warehouse/sql.py``.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

import pyarrow.fs as pafs

from ingestion import audit
from ingestion.config import TableConfig
from ingestion.errors import LoadError, PipelineError
from ingestion.extract import DEFAULT_BATCH_ROWS, DEFAULT_PART_BYTES, PartWriter
from ingestion.progress import Progress
from ingestion.sources.base import Source, source_schema
from ingestion.stage import Manifest, Stage
from ingestion.warehouse import StagedBatch, Warehouse
from ingestion.warehouse import sql as q
from ingestion.window import Window

log = logging.getLogger(__name__)

RECONCILE = "reconcile"
KEYS_FOLDER = "keys"


def enabled(table: TableConfig) -> bool:
    return table.hard_deletes == RECONCILE


def needs_key_extract(table: TableConfig) -> bool:
    """An incremental table's batch holds only changed rows; a full refresh holds every key."""
    return enabled(table) and table.is_incremental


def keys_manifest_url(manifest_url: str) -> str:
    """The key snapshot's manifest, next to the data manifest of the same attempt."""
    return f"{manifest_url.rsplit('/', 1)[0]}/{KEYS_FOLDER}/manifest.json"


@dataclass(frozen=True)
class KeysResult:
    manifest_url: str
    rows: int
    files: int
    bytes: int
    seconds: float


def extract_keys(
    table: TableConfig,
    source: Source,
    stage: Stage,
    manifest_url: str,
    *,
    batch_rows: int = DEFAULT_BATCH_ROWS,
    part_bytes: int = DEFAULT_PART_BYTES,
) -> KeysResult:
    """Stream every key of the source table (key columns only, one snapshot) into the
    stage next to the data manifest ``manifest_url``."""
    started = time.monotonic()
    columns = {c.name: c for c in source.columns(table)}
    key_columns = [columns[k] for k in table.primary_key]  # extract() checked that they exist
    every_row = replace(table, mode="full_refresh", cursor=None, lookback=timedelta(0))
    url = keys_manifest_url(manifest_url)
    prefix = url.rsplit("/", 1)[0]
    writer = PartWriter(stage, prefix, source_schema(key_columns), part_bytes)
    progress = Progress(log, f"extract {table.name} keys")
    rows = 0
    try:
        # Full refresh: the window is not read; every key of the table is.
        for batch in source.read(every_row, key_columns, Window(datetime.min, datetime.max), batch_rows):
            writer.write(batch)
            rows += batch.num_rows
            progress.add(batch.num_rows, batch.nbytes)
        manifest = Manifest(url=url, entries=tuple(writer.close()))
        stage.write_manifest(url, manifest)
    except PipelineError:
        raise
    except OSError as exc:
        raise stage.error(exc, f"table {table.name!r}: writing the key snapshot {prefix} failed") from exc
    result = KeysResult(
        url, rows, len(manifest.entries), manifest.content_length, round(time.monotonic() - started, 3)
    )
    log.info(
        "extract %s: %s keys (hard-delete reconcile) in %d file(s), %.1fs -> %s",
        table.name, f"{rows:,}", result.files, result.seconds, url,
    )  # fmt: skip
    return result


@dataclass(frozen=True)
class Reconciled:
    flagged: int = 0
    unflagged: int = 0


def read_keys_manifest(stage: Stage, manifest_url: str) -> Manifest | None:
    url = keys_manifest_url(manifest_url)
    try:
        found = stage.filesystem.get_file_info(stage.path(url)).type == pafs.FileType.File
    except OSError as exc:
        raise stage.error(exc, f"key snapshot {url} cannot be read", LoadError) from None
    return stage.read_manifest(url) if found else None


def newer_batch_loaded(
    warehouse: Warehouse, cursor: Any, raw_schema: str, table: TableConfig, batch_id: str
) -> str | None:
    """The newest batch of the table loaded successfully, when it was extracted after
    ``batch_id`` (batch ids start with their extract time, to the second)."""
    sql = (
        f"select max(batch_id) from {q.audit_table(raw_schema)}\n"
        "where table_name = %(table)s and status = %(status)s"
    )
    newest = warehouse.scalar(cursor, sql, {"table": table.name, "status": audit.SUCCEEDED})
    if newest and newest.split("-", 1)[0] > batch_id.split("-", 1)[0]:
        return newest
    return None


def apply(
    warehouse: Warehouse,
    cursor: Any,
    raw_schema: str,
    table: TableConfig,
    stage: Stage,
    manifest_url: str,
    loaded_at: datetime,
    batch_id: str,
) -> Reconciled:
    """Flag and un-flag the raw rows by the source's keys, in the load's transaction.

    Runs after the batch is in the staging table and before the merge. A
    ``full_refresh`` batch is the key set itself; an incremental one uses the key
    snapshot staged with it (none staged, e.g. an attempt extracted before the table
    was switched to reconcile: nothing is flagged, with a warning).

    A batch older than one already loaded (a stale manifest loaded late) reconciles
    nothing: its key snapshot would flag rows that came back since and un-flag rows
    gone since. Its rows still merge (an older version never replaces a newer one)."""
    if not enabled(table):
        return Reconciled()
    target_name = f"{raw_schema}.{table.name}"
    newer = newer_batch_loaded(warehouse, cursor, raw_schema, table, batch_id)
    if newer is not None:
        log.warning(
            "load %s: batch %s is older than batch %s, loaded already: its key snapshot is stale, "
            "hard deletes are not reconciled by this load",
            target_name, batch_id, newer,
        )  # fmt: skip
        return Reconciled()
    run = warehouse.execute
    keys = q.staging_table(table)
    if table.is_incremental:
        manifest = read_keys_manifest(stage, manifest_url)
        if manifest is None:
            log.warning(
                "load %s: no key snapshot staged at %s: hard deletes are not reconciled by this load",
                target_name, keys_manifest_url(manifest_url),
            )  # fmt: skip
            return Reconciled()
        keys = q.keys_table(table)
        run(cursor, q.create_keys_sql(raw_schema, table))
        loaded = warehouse.bulk_load(cursor, keys, StagedBatch(manifest, stage, table.primary_key, {}))
        if loaded != manifest.record_count:
            raise LoadError(
                f"table {target_name}: bulk-loaded {loaded:,} keys but {manifest.url} lists "
                f"{manifest.record_count:,}; nothing was loaded",
                retryable=False,
            )
        run(cursor, q.add_batch_keys_sql(table))
    stamp = {"loaded_at": loaded_at}
    result = Reconciled(
        flagged=run(cursor, q.flag_deleted_sql(raw_schema, table, keys), stamp),
        unflagged=run(cursor, q.unflag_deleted_sql(raw_schema, table, keys), stamp),
    )
    if keys != q.staging_table(table):
        run(cursor, f"drop table {keys}")
    log.info(
        "load %s: hard deletes: %s row(s) gone from the source flagged (_deleted_at), %s back un-flagged",
        target_name, f"{result.flagged:,}", f"{result.unflagged:,}",
    )  # fmt: skip
    return result
