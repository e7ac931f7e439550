"""
### MySQL → S3 → Redshift, then dbt

For every table in `config/tables.yml`: **extract** the data interval from the
source into the stage (Parquet parts + a manifest), then **load** the
manifest's files into `raw_data.<table>` in one transaction. Then the dbt
project runs as a Cosmos task group: each model is built and tested before its
children run, and every source's freshness is checked.

`PIPELINE_ENV` picks the environment (embedded, services, production); see
the README. Reruns and backfills are safe: each task is a transaction.
"""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

import pendulum
from airflow.sdk import DAG, Asset, task
from airflow.timetables.interval import CronDataIntervalTimetable

# Cosmos reads this when first imported; the workers have no internet.
os.environ.setdefault("AIRFLOW__COSMOS__ENABLE_TELEMETRY", "False")
os.environ.setdefault("DO_NOT_TRACK", "1")

from cosmos import DbtTaskGroup, ExecutionConfig, ProfileConfig, ProjectConfig, RenderConfig  # noqa: E402
from cosmos.constants import LoadMode, SourceRenderingBehavior, TestBehavior  # noqa: E402

from ingestion import airflow_tasks
from ingestion.airflow_tasks import SOURCE_POOL
from ingestion.config import load_tables
from ingestion.environments import DBT_TARGETS, environment_name
from ingestion.lineage import model_asset
from ingestion.notify import notify_failure

REPO = Path(__file__).resolve().parent.parent
DBT_PROJECT = REPO / "dbt_project"

default_args = {
    "owner": "data-engineering",
    "retries": int(os.environ.get("PIPELINE_TASK_RETRIES", "2")),
    "retry_delay": timedelta(minutes=5),
    "retry_exponential_backoff": True,
    "on_failure_callback": notify_failure,  # Slack, through the connection slack_default
}

with DAG(
    dag_id="mysql_to_redshift",
    doc_md=__doc__,
    schedule=CronDataIntervalTimetable("0 0 * * *", timezone="UTC"),
    start_date=pendulum.datetime(2026, 10, 30, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    default_args=default_args,
    tags=["ingestion", "dbt", "raw_data"],
) as dag:

    @task
    def extract(table: str, data_interval_start=None, data_interval_end=None, dag_run=None) -> str:
        run_type = getattr(dag_run, "run_type", None)  # a backfill run never widens its window
        return airflow_tasks.extract_table(table, data_interval_start, data_interval_end, run_type)

    @task
    def plan_chunks(table: str, data_interval_start=None, data_interval_end=None) -> list[dict]:
        return airflow_tasks.plan_table_chunks(table, data_interval_start, data_interval_end)

    @task
    def extract_chunk(table: str, chunk: dict) -> str:
        return airflow_tasks.extract_table_chunk(table, chunk)

    @task
    def load(table: str, manifest_url, data_interval_start=None, data_interval_end=None) -> dict:
        return airflow_tasks.load_table(table, manifest_url, data_interval_start, data_interval_end)

    loads = []
    for name, table in load_tables().items():
        # Every task that reads the source takes a slot of its pool (created by `make demo`).
        if table.chunks > 1:  # key ranges planned at run time, one mapped extract each
            chunks = plan_chunks.override(task_id=f"plan_chunks_{name}", pool=SOURCE_POOL)(name)
            extract_chunks = extract_chunk.override(task_id=f"extract_{name}", pool=SOURCE_POOL)
            manifest_url = extract_chunks.partial(table=name).expand(chunk=chunks)
        else:
            manifest_url = extract.override(task_id=f"extract_{name}", pool=SOURCE_POOL)(name)
        loads.append(
            load.override(task_id=f"load_{name}", outlets=[Asset(f"raw_data.{name}")])(name, manifest_url)
        )

    project_config = ProjectConfig(
        dbt_project_path=DBT_PROJECT,
        manifest_path=DBT_PROJECT / "target" / "manifest.json",
        install_dbt_deps=False,
    )
    # Cosmos wraps the path in an ObjectStoragePath, whose first open() discovers every
    # provider's filesystems and plugins (boto3, FastAPI): half a second of every parse.
    # The manifest is a local file: a plain Path reads it with none of that.
    project_config.manifest_path = DBT_PROJECT / "target" / "manifest.json"
    transform = DbtTaskGroup(
        group_id="dbt",
        project_config=project_config,
        profile_config=ProfileConfig(
            profile_name="analytics",
            target_name=DBT_TARGETS[environment_name()],
            profiles_yml_filepath=REPO / "profiles.yml",
        ),
        execution_config=ExecutionConfig(),
        render_config=RenderConfig(
            load_method=LoadMode.DBT_MANIFEST,
            test_behavior=TestBehavior.AFTER_EACH,
            source_rendering_behavior=SourceRenderingBehavior.WITH_TESTS_OR_FRESHNESS,
            should_detach_multiple_parents_tests=True,
            # Cosmos's model Assets are runtime aliases named from the profile; each
            # model's run task gets a static Asset below instead (known at parse time).
            emit_datasets=False,
        ),
        operator_args={
            # The warehouse connection reaches dbt when each task runs, resolved by
            # Airflow (env var, metadata DB or secrets backend): no secret in the DAG.
            "pre_execute": airflow_tasks.export_dbt_credentials,
            "install_deps": False,
        },
    )

    loads >> transform

    # Optional last task: remove old staged attempts (PIPELINE_STAGE_RETENTION, e.g. 7d).
    older_than = airflow_tasks.stage_retention()
    if older_than:
        clean_stage = task(airflow_tasks.clean_stage, task_id="clean_stage", trigger_rule="all_done")
        transform >> clean_stage(older_than)

    # Every dbt model is an Asset, an outlet of its run task: DAGs can be scheduled on it.
    for dbt_run in dag.tasks:
        if dbt_run.task_id.startswith("dbt.") and dbt_run.task_id.endswith(".run"):
            dbt_run.outlets = [*dbt_run.outlets, model_asset(dbt_run.task_id.split(".")[1])]
