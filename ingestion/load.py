"""Load: one staged attempt into ``raw_data.<table>`` in one transaction.

1. create a temporary staging table shaped like the staged Parquet files;
2. bulk-load the manifest's files into it (the dialect's ``bulk_load``);
3. keep one row per primary key (latest cursor, then latest extract, then the
   row's values, never file order); ``incremental``: delete the target rows
   whose cursor is older and insert the keys the target does not hold (a rerun
   changes nothing, an old backfill never overwrites newer data);
   ``full_refresh``: delete every target row and insert the batch (never
   ``TRUNCATE``: it commits on Redshift);
4. write an audit row to ``raw_data._load_audit``;
5. commit. Any failure rolls back and leaves ``raw_data`` exactly as it was.

When the batch's key is unique and the merge could only insert (a full
refresh, or an empty target), a warehouse that can fill the target itself
bulk-loads straight into it instead of steps 1 and 3, in the same transaction.
The SQL text is in ``ingestion/warehouse/sql.py``; the dialects in
``ingestion/warehouse/``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa

from ingestion.batch import LOADED_AT, Batch
from ingestion.config import TableConfig
from ingestion.errors import LoadError, PipelineError
from ingestion.stage import Manifest, Stage
from ingestion.timing import Timings
from ingestion.warehouse import StagedBatch, Warehouse
from ingestion.warehouse import sql as q
from ingestion.window import Window

log = logging.getLogger(__name__)

RAW_SCHEMA = "raw_data"


@dataclass(frozen=True)
class LoadResult:
    table: str
    batch_id: str
    manifest_url: str
    files: int
    rows_staged: int
    rows_inserted: int
    rows_replaced: int
    rows_deleted: int
    bytes: int
    seconds: float
    timings: dict[str, float] = field(default_factory=dict, compare=False)

    def as_dict(self) -> dict:
        return asdict(self)


def ensure_tables(
    warehouse: Warehouse, db: Any, cursor: Any, raw_schema: str, table: TableConfig, schema: pa.Schema
) -> None:
    """Create the schema, the audit table and the (empty) target table if missing, in a
    short transaction of their own (creating them changes no data), serialised so that
    parallel first loads do not race."""
    warehouse.begin(db)
    warehouse.lock_ddl(cursor)
    warehouse.execute(cursor, f"create schema if not exists {q.quote(raw_schema)}")
    warehouse.execute(cursor, q.create_audit_sql(raw_schema))
    warehouse.execute(cursor, warehouse.create_target_sql(raw_schema, table, schema))
    db.commit()


def check_target_columns(
    warehouse: Warehouse, cursor: Any, raw_schema: str, table: TableConfig, expected: list[str]
) -> None:
    existing = warehouse.table_columns(cursor, raw_schema, table.name)
    if existing != expected:
        missing = [c for c in expected if c not in existing]
        extra = [c for c in existing if c not in expected]
        raise LoadError(
            f"table {raw_schema}.{table.name}: its columns differ from the staged batch "
            f"(missing in the warehouse: {', '.join(missing) or '-'}; "
            f"not in the batch: {', '.join(extra) or '-'}; or the order differs). "
            "Alter the table to match the source, or drop it to reload.",
            retryable=False,
        )


def merge(
    warehouse: Warehouse,
    cursor: Any,
    raw_schema: str,
    table: TableConfig,
    columns: list[str],
    batch: Batch,
    loaded_at: datetime,
) -> tuple[int, int, int]:
    """Step 3: staging table → target. Returns rows inserted, replaced, deleted."""
    run = warehouse.execute
    staging = q.staging_table(table)
    if batch.unique_key:
        latest = staging  # one snapshot of a unique key: nothing to dedupe
    else:
        run(cursor, q.dedupe_sql(table, columns))
        latest = q.latest_table(table)
    stamp = {"loaded_at": loaded_at}
    if table.is_incremental:
        replaced = run(cursor, q.delete_older_sql(raw_schema, table, latest))
        inserted = run(cursor, q.insert_new_sql(raw_schema, table, columns, latest), stamp)
        deleted = 0
    else:
        deleted = run(cursor, q.delete_all_sql(raw_schema, table))
        inserted = run(cursor, q.insert_all_sql(raw_schema, table, columns, latest), stamp)
        replaced = 0
    if latest != staging:
        run(cursor, f"drop table {latest}")
    run(cursor, f"drop table {staging}")
    return inserted, replaced, deleted


def loads_straight_into_target(
    warehouse: Warehouse, cursor: Any, raw_schema: str, table: TableConfig, batch: Batch
) -> bool:
    """Whether the merge could only insert every row of the batch, so the bulk-load
    may fill the target itself: a unique key, and a full refresh or an empty target."""
    if not (warehouse.loads_into_target and batch.unique_key):
        return False
    if not table.is_incremental:
        return True
    target = q.target_table(raw_schema, table)
    return not warehouse.scalar(cursor, f"select exists (select 1 from {target})")


def check_row_count(target_name: str, loaded: int, manifest: Manifest) -> None:
    if loaded != manifest.record_count:
        raise LoadError(
            f"table {target_name}: bulk-loaded {loaded:,} rows but the manifest lists "
            f"{manifest.record_count:,}; nothing was loaded",
            retryable=False,
        )


def load(
    table: TableConfig,
    manifest_url: str,
    window: Window,
    warehouse: Warehouse,
    stage: Stage,
    *,
    raw_schema: str = RAW_SCHEMA,
    force_staging: bool = False,
    before_commit: Callable[[], None] | None = None,
) -> LoadResult:
    """Load one staged attempt into ``raw_schema.<table>`` in one transaction.

    ``force_staging`` takes the staging-table path even when the bulk-load could
    fill the target itself (the path of every Redshift load).
    """
    timings = Timings()
    started_clock = time.monotonic()
    started_at = datetime.now(UTC).replace(tzinfo=None)
    target_name = f"{raw_schema}.{table.name}"
    with timings.phase("prepare_s"):
        manifest = stage.read_manifest(manifest_url)
        schema = stage.open_parquet(manifest.entries[0].url).schema_arrow
        batch = Batch.of(schema, manifest.entries[0].url)
        columns = list(schema.names)
    log.info(
        "load %s: %d file(s), %s rows listed in %s",
        target_name, len(manifest.entries), f"{manifest.record_count:,}", manifest_url,
    )  # fmt: skip

    db = warehouse.connect()
    try:
        cursor = warehouse.cursor(db)
        run = warehouse.execute
        with timings.phase("prepare_s"):
            ensure_tables(warehouse, db, cursor, raw_schema, table, schema)
            warehouse.begin(db)
            check_target_columns(warehouse, cursor, raw_schema, table, [*columns, LOADED_AT])
            warehouse.lock(cursor, raw_schema, table)
            straight = not force_staging and loads_straight_into_target(
                warehouse, cursor, raw_schema, table, batch
            )

        loaded_at = datetime.now(UTC).replace(tzinfo=None)
        constants = batch.constants()
        if straight:
            log.info("load %s: unique key, nothing to merge: bulk-loading into the table", target_name)
            with timings.phase("merge_s"):
                deleted = 0 if table.is_incremental else run(cursor, q.delete_all_sql(raw_schema, table))
            constants[LOADED_AT] = pa.scalar(loaded_at, pa.timestamp("us"))
            with timings.phase("bulk_load_s"):
                into = q.target_table(raw_schema, table)
                staged = warehouse.bulk_load(cursor, into, StagedBatch(manifest, stage, columns, constants))
            check_row_count(target_name, staged, manifest)
            inserted, replaced = staged, 0
        else:
            with timings.phase("bulk_load_s"):
                run(cursor, q.create_staging_sql(raw_schema, table, columns))
                staging = StagedBatch(manifest, stage, columns, constants)
                staged = warehouse.bulk_load(cursor, q.staging_table(table), staging)
            check_row_count(target_name, staged, manifest)
            with timings.phase("merge_s"):
                inserted, replaced, deleted = merge(
                    warehouse, cursor, raw_schema, table, columns, batch, loaded_at
                )

        seconds = round(time.monotonic() - started_clock, 3)
        result = LoadResult(
            table=table.name,
            batch_id=batch.batch_id,
            manifest_url=manifest_url,
            files=len(manifest.entries),
            rows_staged=staged,
            rows_inserted=inserted,
            rows_replaced=replaced,
            rows_deleted=deleted,
            bytes=manifest.content_length,
            seconds=seconds,
        )
        with timings.phase("audit_s"):
            run(cursor, q.insert_audit_sql(raw_schema), audit_row(result, table, window, started_at))
        if before_commit is not None:
            before_commit()
        with timings.phase("commit_s"):
            db.commit()
    except PipelineError:
        db.rollback()
        raise
    except Exception as exc:
        db.rollback()
        raise LoadError(
            f"table {target_name}: load of {manifest_url} failed, nothing changed: {exc}"
        ) from exc
    finally:
        db.close()
    log.info(
        "load %s: %s staged, %s inserted (%s replacing older versions), %s deleted, %.1fs",
        target_name, f"{staged:,}", f"{inserted:,}", f"{replaced:,}", f"{deleted:,}", seconds,
    )  # fmt: skip
    return LoadResult(**{**asdict(result), "timings": timings.as_dict()})


def audit_row(result: LoadResult, table: TableConfig, window: Window, started_at: datetime) -> dict:
    return {
        "table_name": table.name,
        "mode": table.mode,
        "window_start": window.start,
        "window_end": window.end,
        "batch_id": result.batch_id,
        "manifest_url": result.manifest_url,
        "files": result.files,
        "rows_staged": result.rows_staged,
        "rows_inserted": result.rows_inserted,
        "rows_replaced": result.rows_replaced,
        "rows_deleted": result.rows_deleted,
        "bytes": result.bytes,
        "started_at": started_at,
        "finished_at": datetime.now(UTC).replace(tzinfo=None),
        "duration_seconds": result.seconds,
    }
