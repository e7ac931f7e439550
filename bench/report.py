"""The report: the printed table (targets from ``bench.targets``), the machine, the JSON."""

from __future__ import annotations

import contextlib
import importlib.metadata
import json
import os
import platform
import subprocess
from pathlib import Path
from typing import Any

from bench import reconcile
from bench.measure import Measurement
from bench.settings import DESCRIPTIONS, RESULTS_DIR, TABLE_ORDER, Settings, mysql_connection, pg_connection
from bench.targets import breakdown_lines, target_lines


def measurement_line(name: str, m: Measurement) -> str:
    if m.skipped:
        return f"{name:<22} {'skipped':>8} {'':>12} {'':>12} {'':>8}  {m.skipped}"
    if not m.ok:
        return f"{name:<22} {'ERROR':>8} {'':>12} {'':>12} {'':>8}  {(m.error or '').splitlines()[0]}"
    rate = f"{m.rows_per_s:,.0f}" if m.rows_per_s else "-"
    cpu = f"{m.cpu_s:.2f}" if m.cpu_s is not None else "-"
    return f"{name:<22} {m.wall_s:>8.2f} {rate:>12} {m.peak_rss_mb:>12.0f} {cpu:>8}  {DESCRIPTIONS[name]}"


def render(
    rows: int, measurements: dict[str, Measurement], checks: list[dict[str, Any]], repeat: int = 1
) -> str:
    runs = f", fastest of {repeat} runs each" if repeat > 1 else ""
    lines = ["", f"benchmark: {rows:,} rows of nps{runs}", ""]
    header = f"{'measurement':<22} {'wall s':>8} {'rows/s':>12} {'peak RSS MB':>12} {'cpu s':>8}  what"
    lines += [header, "-" * len(header)]
    lines += [measurement_line(name, measurements[name]) for name in TABLE_ORDER if name in measurements]
    lines += ["", *target_lines(checks), *reconcile.report_lines(measurements)]
    lines += ["", "where the time goes (cpu s of our worker and of the servers meanwhile):"]
    lines += breakdown_lines(measurements, TABLE_ORDER)
    busiest = max((m.detail.get("other_cpu_cores", 0.0) for m in measurements.values() if m.ok), default=0.0)
    if busiest > 0.2:
        lines += [
            "",
            f"note: other processes used up to {busiest:.2f} of the {os.cpu_count()} cores during a "
            "measurement: the walls are noisy; rerun on a quiet machine or with --repeat 3.",
        ]
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------------ the machine


def _version(package: str) -> str | None:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


def _command_output(command: list[str]) -> str | None:
    try:
        return subprocess.run(command, capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None


def machine_info(settings: Settings, pandas_version: str | None) -> dict[str, Any]:
    import psutil

    cpu_model = None
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
    info: dict[str, Any] = {
        "cpu_count": os.cpu_count(),
        "cpu_model": cpu_model,
        "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "versions": {
            "pyarrow": _version("pyarrow"),
            "mysqlclient": _version("mysqlclient"),
            "psycopg2": _version("psycopg2-binary") or _version("psycopg2"),
            "apache-airflow": _version("apache-airflow"),
            "apache-airflow-providers-amazon": _version("apache-airflow-providers-amazon"),
            "apache-airflow-providers-mysql": _version("apache-airflow-providers-mysql"),
            "apache-airflow-providers-common-sql": _version("apache-airflow-providers-common-sql"),
            "moto": _version("moto"),
            "connectorx": _version("connectorx"),
            "adbc-driver-postgresql": _version("adbc-driver-postgresql"),
            "duckdb": _version("duckdb"),
            "astronomer-cosmos": _version("astronomer-cosmos"),
            "pandas (SqlToS3Operator)": pandas_version,
            "mariadb client": _command_output(["mariadb", "--version"]),
            "psql": _command_output(["psql", "--version"]),
        },
    }
    with contextlib.suppress(Exception):
        db = mysql_connection(settings)
        with db.cursor() as cursor:
            cursor.execute("SELECT VERSION(), @@innodb_buffer_pool_size")
            version, pool = cursor.fetchone()
        db.close()
        info["versions"]["MariaDB"] = version
        info["mariadb_innodb_buffer_pool_mb"] = int(pool) // 2**20
    with contextlib.suppress(Exception):
        db = pg_connection(settings, "postgres")
        with db.cursor() as cursor:
            cursor.execute("select version(), current_setting('work_mem'), current_setting('shared_buffers')")
            version, work_mem, shared_buffers = cursor.fetchone()
        db.close()
        info["versions"]["PostgreSQL"] = version
        info["postgres_work_mem"] = work_mem
        info["postgres_shared_buffers"] = shared_buffers
    return info


# ------------------------------------------------------------------------ the JSON


def write_results(document: dict[str, Any], rows: int, stamp: str) -> tuple[Path, Path]:
    """``bench/results/bench-<rows>-<stamp>.json`` and ``bench/results/latest-<rows>.json``."""
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    text = json.dumps(document, indent=2, default=str) + "\n"
    path = RESULTS_DIR / f"bench-{rows}-{stamp}.json"
    latest = RESULTS_DIR / f"latest-{rows}.json"
    path.write_text(text)
    latest.write_text(text)
    return path, latest
