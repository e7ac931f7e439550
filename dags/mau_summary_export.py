"""
### Export `mau_summary` when dbt rebuilds it

Scheduled on the Asset of the dbt model `mau_summary` (an outlet of its run task in
`mysql_to_redshift`): each time the model is rebuilt, this DAG writes it to
`<data dir>/reports/mau_summary.csv`. An example of a DAG driven by a dbt model.
"""

from __future__ import annotations

import os
from datetime import timedelta

import pendulum
from airflow.sdk import DAG, task

from ingestion.lineage import model_asset
from ingestion.notify import notify_failure

with DAG(
    dag_id="mau_summary_export",
    doc_md=__doc__,
    schedule=[model_asset("mau_summary")],
    start_date=pendulum.datetime(2026, 10, 30, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    default_args={
        "owner": "data-engineering",
        "retries": int(os.environ.get("PIPELINE_TASK_RETRIES", "2")),
        "retry_delay": timedelta(minutes=5),
        "on_failure_callback": notify_failure,
    },
    tags=["dbt", "reports"],
):

    @task
    def export_mau_summary() -> str:
        from ingestion import airflow_tasks, reports

        return str(reports.export_model_csv(airflow_tasks.task_environment(), "mau_summary"))

    export_mau_summary()
