"""Give the demo's `airflow dags test` runs their real start time.

`airflow dags test DAG DATE` records the run's start_date as the logical date (Airflow
3.3 passes ``start_date=logical_date`` when it creates the run), so a run made today for
an interval five weeks ago shows a duration of five weeks in the UI. The moment the
command created the run is its ``run_after``; this sets ``start_date`` (and the empty
``queued_at``) to it, so the UI shows how long the run really took. Only finished runs
made by `dags test` whose start_date lies before their run_after change; running it
twice changes nothing. Usage (with the Airflow home of the runs)::

    python -m ingestion exec -- python -m devtools.dag_test_runs mysql_to_redshift
"""

from __future__ import annotations

import sys


def record_real_start(dag_id: str) -> list[str]:
    """Fix the start of every finished `dags test` run of ``dag_id``; one line per run changed."""
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session
    from airflow.utils.state import DagRunState
    from airflow.utils.types import DagRunTriggeredByType
    from sqlalchemy import select

    changed = []
    with create_session() as session:
        runs = session.scalars(
            select(DagRun).where(
                DagRun.dag_id == dag_id,
                DagRun.triggered_by == DagRunTriggeredByType.TEST,
                DagRun.state.in_([DagRunState.SUCCESS, DagRunState.FAILED]),
                DagRun.start_date < DagRun.run_after,
            )
        ).all()
        for run in runs:
            run.start_date = run.run_after
            run.queued_at = run.queued_at or run.run_after
            seconds = (run.end_date - run.start_date).total_seconds() if run.end_date else None
            took = f", took {seconds:.0f} s" if seconds is not None else ""
            changed.append(f"{run.run_id}: started {run.start_date:%Y-%m-%d %H:%M:%S} UTC{took}")
    return changed


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m devtools.dag_test_runs DAG_ID", file=sys.stderr)
        return 2
    for line in record_real_start(argv[0]):
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
