"""One table, one window: extract to the stage, then load into the warehouse.

What the Airflow tasks and the CLI call; they take an
:class:`~ingestion.environments.Environment` and know nothing of Airflow.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from ingestion.config import TableConfig
from ingestion.environments import Environment
from ingestion.extract import ExtractResult, extract
from ingestion.load import LoadResult, load
from ingestion.sources import open_source
from ingestion.stage import Stage, open_stage
from ingestion.warehouse import open_warehouse
from ingestion.window import Window

__all__ = ["environment_stage", "open_source", "run_extract", "run_load", "run_table"]


def environment_stage(environment: Environment) -> Stage:
    return open_stage(environment.stage_uri, environment.aws)


def run_extract(table: TableConfig, window: Window, environment: Environment) -> ExtractResult:
    source = open_source(environment.source)
    try:
        return extract(table, window, source, environment_stage(environment))
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
