"""One table, one window: extract to the stage, then load into the warehouse.

What the Airflow tasks and the CLI call; they take an
:class:`~ingestion.environments.Environment` and know nothing of Airflow.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import timedelta

from ingestion import audit, chunks, reconcile
from ingestion.config import TableConfig
from ingestion.environments import Environment
from ingestion.extract import ExtractResult, extract
from ingestion.load import RAW_SCHEMA, LoadResult, load
from ingestion.sources import open_source
from ingestion.stage import Stage, open_stage
from ingestion.warehouse import open_warehouse
from ingestion.window import Window

log = logging.getLogger(__name__)

__all__ = ["environment_stage", "open_source", "run_extract", "run_load", "run_table"]


def environment_stage(environment: Environment) -> Stage:
    return open_stage(environment.stage_uri, environment.aws)


def catch_up_window(table: TableConfig, window: Window, environment: Environment) -> Window:
    """The window to extract so that no missed interval is lost.

    When the table's last successfully loaded window (``raw_data._load_audit``) ends
    before ``window`` starts (runs were missed: the scheduler was down, runs failed),
    the extract starts at that end instead; the lookback still applies. A backfill of
    an old interval (a later window is already loaded) and a first load widen nothing.
    Full-refresh tables read every row anyway.
    """
    if not table.is_incremental:
        return window
    last_end = audit.last_loaded_end(open_warehouse(environment.warehouse), table, RAW_SCHEMA)
    if last_end is None or last_end >= window.start:
        return window
    log.warning(
        "extract %s: the last loaded window ended at %s, before this interval starts: "
        "catching up from there (%s .. %s)",
        table.name, last_end.isoformat(), last_end.isoformat(), window.end.isoformat(),
    )  # fmt: skip
    return Window(last_end, window.end)


def run_extract(
    table: TableConfig, window: Window, environment: Environment, *, catch_up: bool = False
) -> ExtractResult:
    """Extract one table's window; with ``catch_up``, widened over missed intervals.
    With ``hard_deletes: reconcile``, the source's keys are staged next to the batch.
    A table with ``chunks`` > 1 is extracted chunk by chunk (``ingestion/chunks.py``)."""
    if catch_up:
        window = catch_up_window(table, window, environment)
    source = open_source(environment.source)
    stage = environment_stage(environment)
    try:
        if table.chunks > 1:
            return chunks.extract_all(table, window, source, stage)
        result = extract(table, window, source, stage)
        if reconcile.needs_key_extract(table):
            reconcile.extract_keys(table, source, stage, result.manifest_url)
        return result
    finally:
        source.close()


def plan_chunks(table: TableConfig, window: Window, environment: Environment) -> list[chunks.Chunk]:
    """The key ranges of a chunked table's window (widened over missed intervals)."""
    window = catch_up_window(table, window, environment)
    source = open_source(environment.source)
    try:
        return chunks.plan(table, window, source)
    finally:
        source.close()


def run_chunk(table: TableConfig, chunk: chunks.Chunk, environment: Environment) -> ExtractResult:
    """Extract one chunk of a chunked table in its own snapshot."""
    source = open_source(environment.source)
    try:
        return chunks.extract_chunk(table, chunk, source, environment_stage(environment))
    finally:
        source.close()


def run_load(
    table: TableConfig, manifest_url: str, window: Window, environment: Environment, *, rebuild: bool = False
) -> LoadResult:
    warehouse = open_warehouse(environment.warehouse)
    return load(table, manifest_url, window, warehouse, environment_stage(environment), rebuild=rebuild)


def run_table(
    table: TableConfig, window: Window, environment: Environment, *, rebuild: bool = False
) -> tuple[ExtractResult, LoadResult]:
    """Extract and load one window; ``rebuild`` extracts every row (ignoring the cursor
    window) and replaces the raw table's contents and shape in one transaction."""
    every_row = replace(table, mode="full_refresh", cursor=None, lookback=timedelta(0))
    extracted = run_extract(every_row if rebuild else table, window, environment)
    return extracted, run_load(table, extracted.manifest_url, window, environment, rebuild=rebuild)
