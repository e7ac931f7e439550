"""Chunked-extract benchmark: one big table extracted with 1, 2 and 4 chunks.

``make bench-chunks ROWS=N`` runs ``python -m bench.chunks --rows N``. The MariaDB table
is the benchmark's ``nps`` (``bench/fixtures.py``: ``INSERT ... SELECT`` from the sequence
engine). For each chunk count the key ranges are planned here (as the DAG's plan task),
then every chunk is extracted by its own ``python -m bench.chunks worker`` process, all
started at once, as the workers of a fleet would, into the stage (a local folder, or the
loopback S3 server with ``--stage s3``); then the chunk manifests are combined.

Reported per chunk count: wall time (plan, the chunk processes from start to exit,
combine), the plan's time, the slowest chunk's own extract time (without the ~0.6 s a
process needs to start Python and import pyarrow), rows/s of the whole extract; per
chunk process: rows, seconds, rows/s, seconds until it exited, CPU seconds (user +
system, from the kernel's accounting of the child) and peak RSS; and the CPU seconds
the MariaDB server spent during the extract (``/proc``). The figures are the fastest
of ``--repeat`` runs by wall time.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import psutil

from bench.fixtures import NPS_DDL, NPS_FILL
from bench.settings import TABLE
from ingestion import chunks
from ingestion.config import parse_table
from ingestion.connection import Connection
from ingestion.environments import loopback_s3_connection
from ingestion.sources import open_source
from ingestion.stage import open_stage
from ingestion.window import Window

REPO_ROOT = Path(__file__).resolve().parent.parent
WINDOW = Window.parse("2026-10-30", "2026-10-31")  # a full refresh reads every row anyway
NPS = parse_table({"name": TABLE, "primary_key": "id", "mode": "full_refresh"}, 0)


def source_connection(database: str) -> Connection:
    return Connection(
        "pipeline_source", "mysql", host=os.environ.get("MYSQL_HOST", "127.0.0.1"),
        port=int(os.environ.get("MYSQL_PORT", "3306")), login=os.environ.get("MYSQL_USER", "root"),
        password=os.environ.get("MYSQL_PASSWORD") or None, schema=database,
    )  # fmt: skip


def mariadb_cpu() -> float:
    """CPU seconds of the local MariaDB/MySQL server process so far (0 when not found)."""
    for process in psutil.process_iter(["name"]):
        if process.info["name"] in ("mariadbd", "mysqld"):
            times = process.cpu_times()
            return times.user + times.system
    return 0.0


def create_table(connection: Connection, rows: int) -> None:
    import MySQLdb

    db = MySQLdb.connect(host=connection.host, port=connection.port, user=connection.login or "",
                         password=connection.password or "")  # fmt: skip
    try:
        with db.cursor() as cursor:
            cursor.execute(f"CREATE DATABASE `{connection.schema}`")
            cursor.execute(f"USE `{connection.schema}`")
            cursor.execute(NPS_DDL)
            cursor.execute(NPS_FILL.format(table=TABLE, rows=int(rows)))
            db.commit()
            cursor.execute(f"SELECT COUNT(*), SUM(score) FROM {TABLE}")  # warm the buffer pool
    finally:
        db.close()


def drop_database(connection: Connection) -> None:
    import MySQLdb

    db = MySQLdb.connect(host=connection.host, port=connection.port, user=connection.login or "",
                         password=connection.password or "")  # fmt: skip
    try:
        with db.cursor() as cursor:
            cursor.execute(f"DROP DATABASE IF EXISTS `{connection.schema}`")
    finally:
        db.close()


def run_chunks(count: int, context: dict[str, Any], work: Path) -> dict[str, Any]:
    """One extract of the table in ``count`` chunks, each in its own process."""
    source = open_source(Connection.parse("pipeline_source", context["source"]))
    server_before, started = mariadb_cpu(), time.monotonic()
    try:
        planned = chunks.plan(NPS, WINDOW, source, count)
    finally:
        source.close()
    plan_seconds = time.monotonic() - started
    processes = []
    for chunk in planned:
        out = work / f"chunk-{count}-{chunk.number}.json"
        argument = json.dumps({**context, "chunk": chunk.to_json()})
        with out.open("w") as stdout:
            command = [sys.executable, "-m", "bench.chunks", "worker", argument]
            processes.append((subprocess.Popen(command, stdout=stdout, cwd=REPO_ROOT), out))  # noqa: S603
    spawned = time.monotonic()
    with ThreadPoolExecutor(max_workers=len(processes)) as pool:  # each exit timed as it happens
        exits = list(pool.map(lambda entry: waited(entry[0]), processes))
    results = []
    for (process, out), (usage, exited) in zip(processes, exits, strict=True):
        if process.returncode != 0:
            raise RuntimeError(f"chunk worker exited {process.returncode}; see its log above")
        result = json.loads(out.read_text().splitlines()[-1])  # after what libraries print
        result.update(
            cpu_s=round(usage.ru_utime + usage.ru_stime, 2),
            peak_rss_mb=round(usage.ru_maxrss / 1024),
            process_s=round(exited - spawned, 2),
        )
        results.append(result)
    stage = open_stage(context["stage_uri"], aws_of(context))
    chunks.combine(NPS, stage, [r["manifest_url"] for r in results])
    wall = time.monotonic() - started
    if stage.is_local:  # the next run writes its own parts: keep the disk bounded
        shutil.rmtree(context["stage_uri"], ignore_errors=True)
    rows = sum(r["rows"] for r in results)
    return {
        "chunks": count, "wall_s": round(wall, 2), "plan_s": round(plan_seconds, 2), "rows": rows,
        "slowest_chunk_s": max(r["seconds"] for r in results),
        "rows_per_s": round(rows / wall), "mariadb_cpu_s": round(mariadb_cpu() - server_before, 2),
        "per_chunk": results,
    }  # fmt: skip


def waited(process: subprocess.Popen) -> tuple[Any, float]:
    """Wait for a process; its resource usage (CPU, peak RSS) and when it exited."""
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    return usage, time.monotonic()


def aws_of(context: dict[str, Any]) -> Connection | None:
    return Connection.parse("pipeline_aws", context["aws"]) if context.get("aws") else None


def worker(argument: str) -> None:
    """One chunk: extract it and print its counts (a process of its own, as on a worker)."""
    context = json.loads(argument)
    chunk = chunks.Chunk.from_json(context["chunk"])
    source = open_source(Connection.parse("pipeline_source", context["source"]))
    stage = open_stage(context["stage_uri"], aws_of(context))
    try:
        result = chunks.extract_chunk(NPS, chunk, source, stage)
    finally:
        source.close()
    print(json.dumps({
        "chunk": f"{chunk.number + 1}/{chunk.count}", "rows": result.rows, "seconds": result.seconds,
        "rows_per_s": round(result.rows / max(result.seconds, 1e-9)), "manifest_url": result.manifest_url,
    }))  # fmt: skip


def report(runs: list[dict[str, Any]]) -> str:
    lines = [
        f"{'chunks':>6} {'wall s':>7} {'plan s':>6} {'slowest s':>9} {'rows/s':>10} {'MariaDB CPU s':>13}   "
        f"{'chunk':>5} {'rows':>11} {'s':>6} {'rows/s':>9} {'exit s':>6} {'CPU s':>6} {'peak RSS MB':>11}"
    ]
    for run in runs:
        head = (
            f"{run['chunks']:>6} {run['wall_s']:>7.1f} {run['plan_s']:>6.1f} {run['slowest_chunk_s']:>9.1f} "
            f"{run['rows_per_s']:>10,} "
            f"{run['mariadb_cpu_s']:>13.1f}   "
        )
        for index, chunk in enumerate(run["per_chunk"]):
            prefix = head if index == 0 else " " * len(head)
            lines.append(
                f"{prefix}{chunk['chunk']:>5} {chunk['rows']:>11,} {chunk['seconds']:>6.1f} "
                f"{chunk['rows_per_s']:>9,} {chunk['process_s']:>6.1f} {chunk['cpu_s']:>6.1f} "
                f"{chunk['peak_rss_mb']:>11}"
            )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args[:1] == ["worker"]:
        worker(args[1])
        return 0
    parser = argparse.ArgumentParser(prog="python -m bench.chunks", description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=2_000_000, help="rows of the table (default 2,000,000)")
    parser.add_argument("--chunks", default="1,2,4", help="chunk counts to measure (default 1,2,4)")
    parser.add_argument("--repeat", type=int, default=1, help="runs per chunk count; the fastest is shown")
    parser.add_argument("--stage", choices=("local", "s3"), default="local", help="where the parts go")
    options = parser.parse_args(args)
    counts = [int(c) for c in options.chunks.split(",")]
    connection = source_connection(f"bench_chunks_{secrets.token_hex(4)}")
    with ExitStack() as stack, tempfile.TemporaryDirectory(prefix="bench-chunks-") as work:
        context: dict[str, Any] = {"source": connection.to_json(), "stage_uri": f"{work}/stage"}
        if options.stage == "s3":
            from devtools.s3_server import ensure_bucket, running_s3_server

            endpoint = stack.enter_context(running_s3_server(int(os.environ.get("S3_PORT", "5555"))))
            ensure_bucket(endpoint, "bench-chunks")
            context.update(
                stage_uri="s3://bench-chunks/stage", aws=loopback_s3_connection(endpoint).to_json()
            )
        print(f"creating {connection.schema}.{TABLE} with {options.rows:,} rows ...", file=sys.stderr)
        stack.callback(drop_database, connection)
        create_table(connection, options.rows)
        runs = []
        for count in counts:
            tries = [run_chunks(count, context, Path(work)) for _ in range(options.repeat)]
            runs.append(min(tries, key=lambda run: run["wall_s"]))
            print(f"{count} chunk(s): {runs[-1]['wall_s']} s", file=sys.stderr)
    print(f"chunked extract of {options.rows:,} rows ({options.stage} stage, {os.cpu_count()} CPUs)")
    print(report(runs))
    return 0


if __name__ == "__main__":
    sys.exit(main())
