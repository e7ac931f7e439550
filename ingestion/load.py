"""Load: one staged attempt into ``raw_data.<table>`` in one transaction.

1. create a temporary staging table shaped like the staged Parquet files;
2. bulk-load the manifest's files into it (the dialect's ``bulk_load``);
3. keep one row per primary key (latest cursor, then latest extract, then the
   row's values, never file order); ``incremental``: delete the target rows
   whose cursor is older and insert the keys the target does not hold (a rerun
   changes nothing, an old backfill never overwrites newer data);
   ``full_refresh``: delete the target rows whose key is gone (flag them, with
   ``hard_deletes: reconcile``: ``ingestion/reconcile.py``) and those whose
   content changed, insert the keys the target does not hold, so unchanged rows
   keep their ``_loaded_at`` and ``_batch_id`` (never ``TRUNCATE``: it commits
   on Redshift);
4. write an audit row to ``raw_data._load_audit``;
5. commit. Any failure rolls back and leaves ``raw_data`` exactly as it was,
   then writes a ``failed`` audit row in a transaction of its own.

Before step 1, in the same transaction, the batch's columns and types are
compared with the table's (``ingestion/schema_drift.py``): new columns are
added, safe widenings applied, anything lossy fails. ``rebuild`` replaces the
table's contents and shape instead (a full extract after a lossy change).

When the batch's key is unique and the target is empty (a first load, a
rebuild), a warehouse that can fill the target itself bulk-loads straight into
it instead of steps 1 and 3, in the same transaction. The SQL text is in
``ingestion/warehouse/sql.py``; the dialects in ``ingestion/warehouse/``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

import pyarrow as pa

from ingestion import reconcile, schema_drift
from ingestion.audit import audit_row, ensure_audit_table, now, record_failure
from ingestion.batch import LOADED_AT, Batch
from ingestion.config import TableConfig
from ingestion.errors import LoadError, PipelineError
from ingestion.progress import Progress
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
    schema_changes: str | None = None
    rows_flagged_deleted: int = 0
    rows_unflagged_deleted: int = 0
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
    ensure_audit_table(warehouse, cursor, raw_schema)
    warehouse.execute(cursor, warehouse.create_target_sql(raw_schema, table, schema))
    db.commit()


def adapt_target(
    warehouse: Warehouse,
    cursor: Any,
    raw_schema: str,
    table: TableConfig,
    schema: pa.Schema,
    window: Window,
    rebuild: bool,
) -> str | None:
    """Bring the raw table to the batch's shape in the load's transaction; say what changed."""
    if rebuild:
        target = q.target_table(raw_schema, table)
        views = warehouse.dependent_views(cursor, raw_schema, table)
        replace = [f"drop table {target}", warehouse.create_target_sql(raw_schema, table, schema)]
        schema_drift.with_views(warehouse, cursor, views, replace)
        return "rebuilt from a full extract"
    drift = schema_drift.plan(
        table,
        f"{raw_schema}.{table.name}",
        warehouse.column_types(schema),
        warehouse.table_column_types(cursor, raw_schema, table.name),
        window,
    )
    schema_drift.apply(warehouse, cursor, raw_schema, table, drift, window)
    return drift.describe() or None


def merge(
    warehouse: Warehouse,
    cursor: Any,
    raw_schema: str,
    table: TableConfig,
    columns: list[str],
    batch: Batch,
    loaded_at: datetime,
    staged: int,
) -> tuple[int, int, int]:
    """Step 3: staging table (``staged`` rows) → target. Returns rows inserted, replaced, deleted.

    Inserted counts every row written (new keys and new versions of replaced rows)."""
    run = warehouse.execute
    staging = q.staging_table(table)
    warehouse.prepare_merge(cursor, raw_schema, table, staged)
    if batch.unique_key:
        latest = staging  # one snapshot of a unique key: nothing to dedupe
    else:
        run(cursor, q.dedupe_sql(table, columns))
        latest = q.latest_table(table)
    if table.is_incremental:
        deleted = 0
        replaced = run(cursor, q.delete_older_sql(raw_schema, table, latest))
    else:
        deleted = 0 if reconcile.enabled(table) else run(cursor, q.delete_gone_sql(raw_schema, table, latest))
        replaced = run(cursor, q.delete_changed_sql(raw_schema, table, columns, latest))
    stamp = {"loaded_at": loaded_at}
    inserted = run(cursor, q.insert_new_sql(raw_schema, table, columns, latest), stamp)
    warehouse.finish_merge(cursor, raw_schema, table)
    if latest != staging:
        run(cursor, f"drop table {latest}")
    run(cursor, f"drop table {staging}")
    return inserted, replaced, deleted


def loads_straight_into_target(
    warehouse: Warehouse, cursor: Any, raw_schema: str, table: TableConfig, batch: Batch
) -> bool:
    """Whether the merge could only insert every row of the batch, so the bulk-load
    may fill the target itself: a unique key and an empty target (a first load, a rebuild).
    A full refresh into rows merges, so that unchanged rows stay as stored."""
    if not (warehouse.loads_into_target and batch.unique_key):
        return False
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
    rebuild: bool = False,
) -> LoadResult:
    """Load one staged attempt into ``raw_schema.<table>`` in one transaction.

    ``force_staging`` takes the staging-table path even when the bulk-load could
    fill the target itself (the path of every Redshift load). ``rebuild`` drops and
    creates the table in the batch's shape first (in the same transaction), for a
    full extract after a schema change that needs one. A failure rolls back, writes
    a ``failed`` audit row and raises a :class:`LoadError` (or the pipeline error).
    """
    timings = Timings()
    started_clock = time.monotonic()
    started_at = now()
    target_name = f"{raw_schema}.{table.name}"
    known: dict[str, Any] = {"manifest_url": manifest_url}  # what the failed audit row can say
    db = None
    try:
        with timings.phase("prepare_s"):
            manifest = stage.read_manifest(manifest_url)
            known.update(files=len(manifest.entries), bytes=manifest.content_length)
            schema = stage.open_parquet(manifest.entries[0].url).schema_arrow
            batch = Batch.of(schema, manifest.entries[0].url)
            known["batch_id"] = batch.batch_id
            if batch.window is not None:  # the window the batch covers (wider after a catch-up)
                window = Window(*batch.window)
        log.info(
            "load %s: %d file(s), %s rows listed in %s",
            target_name, len(manifest.entries), f"{manifest.record_count:,}", manifest_url,
        )  # fmt: skip
        db = warehouse.connect()
        result = load_in_transaction(
            warehouse, db, table, stage, manifest, schema, batch, window, timings,
            raw_schema=raw_schema, force_staging=force_staging, before_commit=before_commit,
            rebuild=rebuild, started_at=started_at, started_clock=started_clock, manifest_url=manifest_url,
        )  # fmt: skip
    except Exception as exc:
        if db is not None:
            try:
                db.rollback()
            except Exception:  # noqa: BLE001 - the connection may be gone; the error is raised below
                log.warning("load %s: rollback failed", target_name, exc_info=True)
        log.error("load %s failed, nothing changed: %s: %s", target_name, type(exc).__name__, exc)
        seconds = round(time.monotonic() - started_clock, 3)
        failed = audit_row(table, window, started_at, seconds, **known)
        record_failure(warehouse, db, raw_schema, failed, exc)
        if isinstance(exc, PipelineError):
            raise
        raise LoadError(
            f"table {target_name}: load of {manifest_url} failed, nothing changed: {exc}"
        ) from exc
    finally:
        if db is not None:
            db.close()
    log.info(
        "load %s: %s staged, %s inserted (%s replacing older versions), %s deleted, %.1fs",
        target_name, f"{result.rows_staged:,}", f"{result.rows_inserted:,}", f"{result.rows_replaced:,}",
        f"{result.rows_deleted:,}", result.seconds,
    )  # fmt: skip
    return LoadResult(**{**asdict(result), "timings": timings.as_dict()})


def load_in_transaction(
    warehouse: Warehouse,
    db: Any,
    table: TableConfig,
    stage: Stage,
    manifest: Manifest,
    schema: pa.Schema,
    batch: Batch,
    window: Window,
    timings: Timings,
    *,
    raw_schema: str,
    force_staging: bool,
    before_commit: Callable[[], None] | None,
    rebuild: bool,
    started_at: datetime,
    started_clock: float,
    manifest_url: str,
) -> LoadResult:
    """Steps 1 to 5 on an open connection; the caller rolls back on any error."""
    target_name = f"{raw_schema}.{table.name}"
    columns = list(schema.names)
    cursor = warehouse.cursor(db)
    run = warehouse.execute
    with timings.phase("prepare_s"):
        ensure_tables(warehouse, db, cursor, raw_schema, table, schema)
        warehouse.begin(db)
        warehouse.lock(cursor, raw_schema, table)
        changes = adapt_target(warehouse, cursor, raw_schema, table, schema, window, rebuild)
        straight = not force_staging and loads_straight_into_target(
            warehouse, cursor, raw_schema, table, batch
        )

    loaded_at = now()
    constants = batch.constants()
    # Counted where a dialect streams the rows itself (PostgreSQL's COPY); a dialect that
    # loads the files in one statement (DuckDB, Redshift's COPY) logs no progress lines.
    progress = Progress(log, f"load {target_name}", total_rows=manifest.record_count)
    reconciled = reconcile.Reconciled()  # an empty target (first load, rebuild): nothing to flag
    if straight:
        log.info("load %s: unique key, nothing to merge: bulk-loading into the table", target_name)
        constants[LOADED_AT] = pa.scalar(loaded_at, pa.timestamp("us"))
        with timings.phase("bulk_load_s"):
            into = q.target_table(raw_schema, table)
            staged = warehouse.bulk_load(
                cursor, into, StagedBatch(manifest, stage, columns, constants, progress)
            )
        check_row_count(target_name, staged, manifest)
        inserted, replaced, deleted = staged, 0, 0
    else:
        with timings.phase("bulk_load_s"):
            run(cursor, q.create_staging_sql(raw_schema, table, columns))
            staging = StagedBatch(manifest, stage, columns, constants, progress)
            staged = warehouse.bulk_load(cursor, q.staging_table(table), staging)
        check_row_count(target_name, staged, manifest)
        if not rebuild:
            with timings.phase("reconcile_s"):
                reconciled = reconcile.apply(
                    warehouse, cursor, raw_schema, table, stage, manifest_url, loaded_at, batch.batch_id
                )
        with timings.phase("merge_s"):
            inserted, replaced, deleted = merge(
                warehouse, cursor, raw_schema, table, columns, batch, loaded_at, staged
            )

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
        seconds=round(time.monotonic() - started_clock, 3),
        schema_changes=changes,
        rows_flagged_deleted=reconciled.flagged,
        rows_unflagged_deleted=reconciled.unflagged,
    )
    with timings.phase("audit_s"):
        counts = {k: v for k, v in asdict(result).items() if k in AUDITED}
        row = audit_row(table, window, started_at, result.seconds, **counts)
        run(cursor, q.insert_audit_sql(raw_schema), row)
    if before_commit is not None:
        before_commit()
    with timings.phase("commit_s"):
        db.commit()
    return result


AUDITED = (
    "batch_id", "manifest_url", "files", "rows_staged", "rows_inserted", "rows_replaced",
    "rows_deleted", "bytes", "schema_changes", "rows_flagged_deleted", "rows_unflagged_deleted",
)  # fmt: skip
