"""Lineage: what each task reads and writes, named so Airflow and OpenLineage agree.

* The extract reads the source table (``mysql://host:port/database/table``) and writes
  the table's stage prefix (``s3://bucket/stage/<table>``, ``file:///…/stage/<table>``);
  the load reads that prefix and writes ``raw_data.<table>`` in the warehouse
  (``postgres://host:port/database/raw_data/<table>``, ``redshift://…``). When
  OpenLineage is enabled, the tasks report these through Airflow's hook lineage
  collector; the OpenLineage provider turns them into the task's datasets by the
  OpenLineage naming spec (namespace ``mysql://host:port``, name ``database.table``).
* Every dbt model is an Airflow Asset of the same form (``model_asset``), an outlet of
  the model's run task, so other DAGs can be scheduled on a model.

Airflow is imported inside functions only; URIs carry no secret (host, port, names).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ingestion import environments
from ingestion.config import TableConfig
from ingestion.environments import Environment
from ingestion.errors import ConfigError
from ingestion.warehouse import asset_uri, dialect_of, open_warehouse

if TYPE_CHECKING:
    from ingestion.load import LoadResult

log = logging.getLogger(__name__)

RAW_SCHEMA = "raw_data"
#: The schema dbt builds the models in (``profiles.yml``).
DBT_SCHEMA = "analytics"
#: Source connection types with an Asset URI (and OpenLineage namespace) of their own.
SOURCE_SCHEMES = {"mysql": "mysql", "mariadb": "mysql"}


def source_uri(environment: Environment, table: TableConfig) -> str | None:
    """The source table's Asset URI; ``None`` for a source without a scheme (SQLite)."""
    source = environment.source
    scheme = SOURCE_SCHEMES.get(source.conn_type.lower())
    if scheme is None:
        return None
    database = table.source_schema or source.schema
    return f"{scheme}://{source.host}:{source.port or 3306}/{database}/{table.source_table}"


def stage_uri(environment: Environment, table: TableConfig) -> str:
    """The table's stage prefix: every attempt's files live under it."""
    stage = environment.stage_uri.rstrip("/")
    if "://" not in stage:
        stage = Path(stage).resolve().as_uri()
    return f"{stage}/{table.name}"


def raw_table_uri(environment: Environment, table: TableConfig) -> str:
    return open_warehouse(environment.warehouse).asset_uri(RAW_SCHEMA, table.name)


def model_asset(model: str) -> Any:
    """The Asset of a dbt model, from the warehouse connection the environment defines
    (its ``AIRFLOW_CONN_PIPELINE_WAREHOUSE`` variable or loopback default: no query, so
    DAG files call this at parse time). A warehouse known only to Airflow's connection
    store (metadata database, secrets backend) gives the name-only ``analytics.<model>``."""
    from airflow.sdk import Asset

    try:
        connection = environments.resolve().warehouse
        dialect = dialect_of(connection)
    except ConfigError:
        return Asset(f"{DBT_SCHEMA}.{model}")
    return Asset(asset_uri(connection, DBT_SCHEMA, model, dialect))


def report_extract(environment: Environment, table: TableConfig) -> None:
    report(inputs=[source_uri(environment, table)], outputs=[stage_uri(environment, table)])


def report_load(environment: Environment, table: TableConfig, result: LoadResult | None = None) -> None:
    """The load's datasets; with its ``result``, OpenLineage's statistics facets too: the
    running task gets ``get_openlineage_facets_on_complete`` (the provider's operator
    method, read when the task completes), which returns ``load_lineage``."""
    report(inputs=[stage_uri(environment, table)], outputs=[raw_table_uri(environment, table)])
    if result is None or not openlineage_enabled():
        return
    from airflow.sdk import get_current_context

    try:
        task = get_current_context()["task"]
    except RuntimeError:  # not in a task: nothing to report to
        return
    task.get_openlineage_facets_on_complete = lambda task_instance: load_lineage(environment, table, result)


def load_lineage(environment: Environment, table: TableConfig, result: LoadResult) -> Any:
    """The load's OpenLineage datasets (``OperatorLineage``), named by the providers'
    converters: the stage prefix it read, with ``inputStatistics`` (the manifest's rows,
    Parquet bytes and files), and ``raw_data.<table>`` it wrote, with ``outputStatistics``
    (rows inserted or replaced, the Parquet bytes they came in). A dataset without a
    converter (DuckDB) is left out, as the hook lineage collector leaves it out."""
    from airflow.providers.openlineage.extractors import OperatorLineage
    from airflow.providers.openlineage.utils.utils import translate_airflow_asset
    from airflow.sdk import Asset
    from openlineage.client.event_v2 import InputDataset, OutputDataset
    from openlineage.client.generated.input_statistics_input_dataset import InputStatisticsInputDatasetFacet
    from openlineage.client.generated.output_statistics_output_dataset import (
        OutputStatisticsOutputDatasetFacet,
    )

    stage = translate_airflow_asset(Asset(stage_uri(environment, table)), None)
    raw = translate_airflow_asset(Asset(raw_table_uri(environment, table)), None)
    read = {
        "inputStatistics": InputStatisticsInputDatasetFacet(
            rowCount=result.rows_staged, size=result.bytes, fileCount=result.files
        )
    }
    written = {
        "outputStatistics": OutputStatisticsOutputDatasetFacet(
            rowCount=result.rows_inserted + result.rows_replaced, size=result.bytes
        )
    }
    inputs = (
        [InputDataset(namespace=stage.namespace, name=stage.name, facets=stage.facets, inputFacets=read)]
        if stage
        else []
    )
    outputs = (
        [OutputDataset(namespace=raw.namespace, name=raw.name, facets=raw.facets, outputFacets=written)]
        if raw
        else []
    )
    return OperatorLineage(inputs=inputs, outputs=outputs)


def report(inputs: list[str | None], outputs: list[str | None]) -> None:
    """Hand the task's datasets to the hook lineage collector, when OpenLineage is on
    (the collector loads every provider's URI handlers: seconds a task need not spend)."""
    if not openlineage_enabled():
        return
    from airflow.sdk.lineage import get_hook_lineage_collector

    collector = get_hook_lineage_collector()
    for uri in filter(None, inputs):
        collector.add_input_asset(context=collector, uri=uri)
    for uri in filter(None, outputs):
        collector.add_output_asset(context=collector, uri=uri)
    log.info("lineage: inputs %s, outputs %s", [*filter(None, inputs)], [*filter(None, outputs)])


def openlineage_enabled() -> bool:
    try:
        from airflow.providers.openlineage.conf import is_disabled
    except ImportError:
        return False
    return not is_disabled()
