"""The report: ratios, targets, the printed table, the machine, the JSON document."""

from __future__ import annotations

import contextlib
import importlib.metadata
import json
import os
import platform
import subprocess
from pathlib import Path
from types import MappingProxyType
from typing import Any

from bench.measure import Measurement, rounded
from bench.settings import DESCRIPTIONS, RESULTS_DIR, TABLE_ORDER, Settings, mysql_connection, pg_connection

# Targets: (label, ratio key, comparison, bound)
TARGETS = (
    ("extract <= 1.5x client floor", "extract_vs_client_floor", "<=", 1.5),
    ("extract >= 5x faster than SqlToS3Operator", "sql_to_s3_operator_vs_extract", ">=", 5.0),
    ("load <= 1.5x COPY floor", "load_vs_copy_floor", "<=", 1.5),
    ("extract peak RSS < 300 MB", "ours_extract_peak_rss_mb", "<", 300.0),
    ("load peak RSS < 300 MB", "ours_load_peak_rss_mb", "<", 300.0),
)
# How the table shows each target's value: (label, unit)
TARGET_LABELS = MappingProxyType(
    {
        "extract_vs_client_floor": ("ours_extract / client_floor", "x"),
        "sql_to_s3_operator_vs_extract": ("sql_to_s3_operator / ours_extract (speedup)", "x"),
        "load_vs_copy_floor": ("ours_load / copy_floor", "x"),
        "ours_extract_peak_rss_mb": ("peak RSS of ours_extract", " MB"),
        "ours_load_peak_rss_mb": ("peak RSS of ours_load", " MB"),
    }
)


def ratios(measurements: dict[str, Measurement]) -> dict[str, float | None]:
    def wall(name: str) -> float | None:
        m = measurements.get(name)
        return m.wall_s if m is not None and m.ok else None

    def ratio(a: str, b: str) -> float | None:
        top, bottom = wall(a), wall(b)
        return top / bottom if top is not None and bottom else None

    def rss(name: str) -> float | None:
        m = measurements.get(name)
        return m.peak_rss_mb if m is not None and m.ok else None

    return {
        "extract_vs_client_floor": ratio("ours_extract", "client_floor"),
        "sql_to_s3_operator_vs_extract": ratio("sql_to_s3_operator", "ours_extract"),
        "load_vs_copy_floor": ratio("ours_load", "copy_floor"),
        "load_staged_vs_copy_floor": ratio("ours_load_staged", "copy_floor"),
        "ours_extract_peak_rss_mb": rss("ours_extract"),
        "ours_load_peak_rss_mb": rss("ours_load"),
    }


def evaluate(values: dict[str, float | None], skipped: set[str]) -> list[dict[str, Any]]:
    checks = []
    for label, key, op, bound in TARGETS:
        value = values.get(key)
        if value is None:
            status = "skipped" if key == "sql_to_s3_operator_vs_extract" and skipped else "n/a"
        elif op == "<=":
            status = "met" if value <= bound else "NOT met"
        elif op == ">=":
            status = "met" if value >= bound else "NOT met"
        else:
            status = "met" if value < bound else "NOT met"
        checks.append(
            {
                "target": label,
                "key": key,
                "value": rounded(value, 3),
                "bound": f"{op} {bound:g}",
                "status": status,
            }
        )
    return checks


def measurement_line(name: str, m: Measurement) -> str:
    if m.skipped:
        return f"{name:<20} {'skipped':>8} {'':>12} {'':>12} {'':>8}  {m.skipped}"
    if not m.ok:
        return f"{name:<20} {'ERROR':>8} {'':>12} {'':>12} {'':>8}  {(m.error or '').splitlines()[0]}"
    rate = f"{m.rows_per_s:,.0f}" if m.rows_per_s else "-"
    cpu = f"{m.cpu_s:.2f}" if m.cpu_s is not None else "-"
    return f"{name:<20} {m.wall_s:>8.2f} {rate:>12} {m.peak_rss_mb:>12.0f} {cpu:>8}  {DESCRIPTIONS[name]}"


def target_line(check: dict[str, Any]) -> str:
    label, unit = TARGET_LABELS[check["key"]]
    value = check["value"]
    digits = 3 if value is not None and round(value, 2) == float(check["bound"].split()[-1]) else 2
    shown = "-" if value is None else (f"{value:.{digits}f}{unit}" if unit == "x" else f"{value:.0f}{unit}")
    return f"{label:<46} {shown:>9}  {check['bound']:>8}  {check['status']}"


def render(
    rows: int, measurements: dict[str, Measurement], checks: list[dict[str, Any]], repeat: int = 1
) -> str:
    runs = f", fastest of {repeat} runs each" if repeat > 1 else ""
    lines = ["", f"benchmark: {rows:,} rows of nps{runs}", ""]
    header = f"{'measurement':<20} {'wall s':>8} {'rows/s':>12} {'peak RSS MB':>12} {'cpu s':>8}  what"
    lines += [header, "-" * len(header)]
    lines += [measurement_line(name, measurements[name]) for name in TABLE_ORDER if name in measurements]
    lines += ["", f"{'ratio / target':<46} {'value':>9}  {'target':>8}  status", "-" * 76]
    lines += [target_line(check) for check in checks]
    staged, floor = measurements.get("ours_load_staged"), measurements.get("copy_floor")
    if staged is not None and floor is not None and staged.ok and floor.ok and floor.wall_s:
        value = f"{(staged.wall_s or 0.0) / floor.wall_s:.2f}x"
        lines.append(f"{'ours_load_staged / copy_floor':<46} {value:>9}  {'-':>8}  (no target)")
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
