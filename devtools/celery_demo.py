"""The DAG under the CeleryExecutor: ``make demo ENV=services EXECUTOR=celery``.

Starts a scheduler, a DAG processor, an API server and two Celery workers (``w1``,
``w2``) on loopback (``devtools.airflow_cluster``), with Redis as the broker and a
PostgreSQL database as Airflow's metadata database, runs the DAG for a range of daily
intervals through the scheduler with ``airflow backfill create``, waits for the runs,
prints which worker ran which task and what landed, and stops every process it started
(also on Ctrl-C, SIGTERM or an error). Needs the services environment: the stage is S3,
so no task reads a file another worker wrote; the workers share this checkout, so each
finds the dbt manifest (``make manifest``) where the DAG file expects it.

    python -m ingestion --env services exec -- \\
        python -m devtools.celery_demo --from-date 2026-10-30 --to-date 2026-11-01

``--from-date`` and ``--to-date`` are the first and last interval's start (the logical
dates of the DAG's daily intervals). The metadata database (``--metadata-db``) is created
afresh on the warehouse's PostgreSQL server and kept afterwards for inspection.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections import Counter
from datetime import date
from pathlib import Path
from typing import Any
from urllib.parse import quote as url_quote

from devtools.airflow_cluster import Cluster, ClusterError, Settings, running_cluster, tail
from ingestion import config, environments
from ingestion.airflow_tasks import SOURCE_POOL
from ingestion.connection import Connection

DAG_ID = "mysql_to_redshift"
REPO_ROOT = Path(__file__).resolve().parent.parent
MANIFEST = REPO_ROOT / "dbt_project" / "target" / "manifest.json"
FINISHED = ("success", "failed")


def check_redis(url: str) -> None:
    """PING the broker; a laptop without Redis gets told what to do."""
    import redis

    try:
        redis.Redis.from_url(url, socket_connect_timeout=3).ping()
    except redis.RedisError as exc:
        raise ClusterError(
            f"no Redis answers PING at {url} ({exc}): the Celery demo needs it as its broker; "
            "install and start it (apt-get install redis-server, or `redis-server --daemonize yes`) "
            "or give --broker-url"
        ) from exc


def metadata_url(server: Connection, database: str) -> str:
    """SQLAlchemy URL of ``database`` on the PostgreSQL server of ``server``."""
    login = url_quote(server.login or "", safe="")
    password = f":{url_quote(server.password, safe='')}" if server.password else ""
    return f"postgresql+psycopg2://{login}{password}@{server.host}:{server.port or 5432}/{database}"


def connect(server: Connection, database: str) -> Any:
    import psycopg2

    db = psycopg2.connect(
        host=server.host, port=server.port or 5432, user=server.login, password=server.password or None,
        dbname=database, connect_timeout=5,
    )  # fmt: skip
    db.autocommit = True
    return db


def recreate_database(server: Connection, database: str) -> None:
    """A fresh metadata database: no runs or backfills of an earlier demo."""
    import psycopg2

    try:
        admin = connect(server, "postgres")
    except psycopg2.Error as exc:
        raise ClusterError(f"PostgreSQL at {server.host}:{server.port} unreachable: {exc}") from exc
    try:
        with admin.cursor() as cursor:
            cursor.execute(f'drop database if exists "{database}" with (force)')
            cursor.execute(f'create database "{database}"')
    finally:
        admin.close()


def query(server: Connection, database: str, sql: str, params: tuple = ()) -> list[tuple]:
    db = connect(server, database)
    try:
        with db.cursor() as cursor:
            cursor.execute(sql, params)
            return cursor.fetchall()
    finally:
        db.close()


class Demo:
    """The cluster plus what the demo asks of it, read back from the metadata database."""

    def __init__(self, cluster: Cluster, server: Connection, database: str) -> None:
        self.cluster, self.server, self.database = cluster, server, database

    def query(self, sql: str, params: tuple = ()) -> list[tuple]:
        return query(self.server, self.database, sql, params)

    def wait_for_dag(self, timeout: float = 300) -> None:
        """Until the DAG processor has parsed and serialized the DAG."""
        deadline = time.monotonic() + timeout
        while not self.query("select 1 from serialized_dag where dag_id = %s", (DAG_ID,)):
            self.cluster.check_alive()
            if time.monotonic() > deadline:
                log = self.cluster.log_dir / "dag-processor.log"
                raise ClusterError(f"{DAG_ID} was not parsed within {timeout:.0f} s; {log}:\n{tail(log)}")
            time.sleep(2)

    def backfill(self, from_date: date, to_date: date) -> int:
        """``airflow backfill create`` for the intervals starting from ``from_date`` to
        ``to_date``, one run at a time, oldest first; the backfill's id."""
        self.cluster.airflow(
            "backfill", "create", "--dag-id", DAG_ID, "--from-date", from_date.isoformat(),
            "--to-date", to_date.isoformat(), "--max-active-runs", "1", "--reprocess-behavior", "completed",
        )  # fmt: skip
        return self.query("select max(id) from backfill where dag_id = %s", (DAG_ID,))[0][0]

    def wait_for_runs(self, backfill_id: int, timeout: float) -> list[tuple[str, str]]:
        """(run id, state) of the backfill's runs once all have finished; a clear error
        naming the unfinished runs after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            runs = self.query(
                "select run_id, state from dag_run where backfill_id = %s order by logical_date",
                (backfill_id,),
            )
            if runs and all(state in FINISHED for _, state in runs):
                return runs
            self.cluster.check_alive()
            if time.monotonic() > deadline:
                waiting = ", ".join(f"{run} {state}" for run, state in runs if state not in FINISHED)
                log = self.cluster.log_dir / "scheduler.log"
                raise ClusterError(
                    f"backfill {backfill_id} not finished after {timeout:.0f} s ({waiting or 'no runs'}); "
                    f"component logs in {self.cluster.log_dir}; {log}:\n{tail(log)}"
                )
            time.sleep(3)

    def task_hosts(self, backfill_id: int) -> list[tuple[str, str, str, str]]:
        """(task id, interval start, worker, state) of every task of the backfill's runs."""
        rows = self.query(
            "select ti.task_id, to_char(dr.data_interval_start, 'YYYY-MM-DD'), coalesce(ti.hostname, ''), "
            "ti.state from task_instance ti "
            "join dag_run dr on dr.dag_id = ti.dag_id and dr.run_id = ti.run_id "
            "where dr.backfill_id = %s order by ti.task_id, dr.data_interval_start",
            (backfill_id,),
        )
        return [(task, day, host, state or "") for task, day, host, state in rows]


def who_ran_what(rows: list[tuple[str, str, str, str]]) -> str:
    """One line per task, one column per interval: the worker that ran it (or its state)."""
    days = sorted({day for _, day, _, _ in rows})
    cells: dict[str, dict[str, str]] = {}
    for task, day, host, state in rows:
        cells.setdefault(task, {})[day] = host.split("@")[0] if state == "success" else state
    width = max(len(task) for task in cells)
    lines = ["task".ljust(width) + "  " + "  ".join(days)]
    for task, by_day in cells.items():
        lines.append(task.ljust(width) + "  " + "  ".join(by_day.get(day, "-").ljust(10) for day in days))
    counts = Counter(host for _, _, host, state in rows if state == "success")
    lines.append("tasks per worker: " + ", ".join(f"{host} {n}" for host, n in sorted(counts.items())))
    return "\n".join(lines)


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m devtools.celery_demo", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--from-date", type=date.fromisoformat, required=True, help="first interval's start")
    parser.add_argument("--to-date", type=date.fromisoformat, required=True, help="last interval's start")
    parser.add_argument("--metadata-db", default="pipeline_airflow", help="PostgreSQL database for Airflow")
    parser.add_argument("--broker-url", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--queue", default="pipeline", help="the Celery queue the workers serve")
    parser.add_argument("--home", type=Path, default=REPO_ROOT / ".airflow-celery", help="AIRFLOW_HOME")
    parser.add_argument("--timeout", type=float, default=1800, help="seconds to wait for the runs")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    environment = environments.resolve()
    env = {**os.environ, **environment.variables()}
    try:
        if environment.name != "services" or environment.warehouse.conn_type != "postgres":
            raise ClusterError(
                f"the Celery demo runs in the services environment (PIPELINE_ENV=services), not "
                f"{environment.name!r}: its workers share no disk, so the stage must be S3"
            )
        if not MANIFEST.exists():
            raise ClusterError(
                f"{MANIFEST} is missing: the workers render the DAG from it; run `make manifest`"
            )
        check_redis(args.broker_url)
        server = environment.warehouse
        recreate_database(server, args.metadata_db)
        settings = Settings(
            home=args.home.resolve(), metadata_url=metadata_url(server, args.metadata_db),
            broker_url=args.broker_url, queue=args.queue,
        )  # fmt: skip
        print(f"==> Airflow on loopback: API server {settings.api_url}, metadata database "
              f"{args.metadata_db}, broker {args.broker_url}, workers {', '.join(settings.workers)}; "
              f"logs in {settings.home}", flush=True)  # fmt: skip
        with running_cluster(settings, env) as cluster:
            demo = Demo(cluster, server, args.metadata_db)
            demo.wait_for_dag()
            # The tasks that read the source take slots of its pool: it must exist.
            slots = os.environ.get("PIPELINE_SOURCE_POOL_SLOTS", "2")
            cluster.airflow("pools", "set", SOURCE_POOL, slots, "tasks that read the source")
            cluster.airflow("dags", "unpause", DAG_ID)
            print(f"==> airflow backfill create --dag-id {DAG_ID} --from-date {args.from_date} "
                  f"--to-date {args.to_date} --max-active-runs 1", flush=True)  # fmt: skip
            started = time.monotonic()
            backfill_id = demo.backfill(args.from_date, args.to_date)
            runs = demo.wait_for_runs(backfill_id, args.timeout)
            print(f"\n==> runs ({time.monotonic() - started:.0f} s)")
            print("\n".join(f"    {run}: {state}" for run, state in runs))
            print("\n==> which worker ran which task\n" + who_ran_what(demo.task_hosts(backfill_id)))
        failed = [run for run, state in runs if state != "success"]
        if failed:
            logs = settings.home / "logs"
            raise ClusterError(f"{len(failed)} run(s) failed: {', '.join(failed)}; task logs in {logs}")
    except ClusterError as exc:
        print(f"celery demo: {exc}", file=sys.stderr)
        return 1
    from devtools import report

    print("\n==> what landed\n" + report.demo_report(environment, config.load_tables()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
