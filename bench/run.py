"""Benchmark: our extract and load against Airflow's SqlToS3Operator and the client floors.

``make bench ROWS=N`` runs ``.venv/bin/python bench/run.py --rows N``. See bench/README.md.

One run:

1. generates an N-row ``nps`` table in a uniquely named MariaDB database (sequence engine,
   one ``INSERT ... SELECT``), a uniquely named PostgreSQL database, and starts the project's
   loopback S3 server (``ingestion.s3_server``) on a free port with a fresh bucket;
2. runs each measurement in its own subprocess (this file with ``--worker NAME``), sampling
   the RSS of the child's process tree every 50 ms with psutil (the child also reports its
   own high-water mark, VmHWM); the child prints one JSON object with its wall seconds;
3. checks the row counts (S3 Parquet, PostgreSQL, the client dump) and fails loudly when
   one differs from N;
4. prints the results with the ratios and targets and writes them as JSON to
   ``bench/results/bench-<rows>-<UTC timestamp>.json`` and ``bench/results/latest-<rows>.json``;
5. drops both databases (unless ``--keep``), also when something failed.

A missed target is a result, not a failure: the exit code is non-zero only when a
measurement errored or a row count is wrong.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.metadata
import importlib.util
import json
import os
import platform
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
RESULTS_DIR = BENCH_DIR / "results"
# pandas for SqlToS3Operator lives beside the venv, not in it: the project does not depend on
# it. The version is what `apache-airflow-providers-amazon[pandas]` resolves to; numpy comes
# from the venv.
PEER_SITE = REPO_ROOT / ".data" / "bench" / "peer-site"
PEER_REQUIREMENTS = ("pandas==3.1.1",)

if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

SAMPLE_SECONDS = 0.05
INGESTION_ROOT: str | None = None  # --ingestion-root
MEASUREMENT_TIMEOUT = 3600.0
TABLE = "nps"
COPY_TABLE = "copy_floor_nps"
RAW_SCHEMA = "raw_data"

# Targets: (label, ratio key, comparison, bound)
TARGETS = (
    ("extract <= 1.5x client floor", "extract_vs_client_floor", "<=", 1.5),
    ("extract >= 5x faster than SqlToS3Operator", "sql_to_s3_operator_vs_extract", ">=", 5.0),
    ("load <= 1.5x COPY floor", "load_vs_copy_floor", "<=", 1.5),
    ("extract peak RSS < 300 MB", "ours_extract_peak_rss_mb", "<", 300.0),
    ("load peak RSS < 300 MB", "ours_load_peak_rss_mb", "<", 300.0),
)

NPS_DDL = f"""CREATE TABLE {TABLE} (
    id INT NOT NULL PRIMARY KEY,
    created_at DATETIME NOT NULL,
    modified_at DATETIME NOT NULL,
    score TINYINT NOT NULL,
    deleted TINYINT(1) NOT NULL DEFAULT 0,
    KEY nps_modified_at (modified_at)
) ENGINE=InnoDB"""

# Responses spread over two years with up to an hour of jitter; 30% modified again within
# 45 days; scores shaped like NPS answers (20% 0-6, 30% 7-8, 50% 9-10); 3% soft-deleted.
# RAND(seed) makes the table the same on every run; the derived table is materialised
# (it holds RAND), so created_at is computed once per row and reused for modified_at.
NPS_FILL = """INSERT INTO {table} (id, created_at, modified_at, score, deleted)
SELECT seq,
    created,
    IF(r_update < 0.3, created + INTERVAL FLOOR(r_gap * 45 * 86400) SECOND, created),
    CASE
        WHEN r_score < 0.2 THEN FLOOR(r_pick * 7)
        WHEN r_score < 0.5 THEN 7 + FLOOR(r_pick * 2)
        ELSE 9 + FLOOR(r_pick * 2)
    END,
    r_delete < 0.03
FROM (
    SELECT seq,
        TIMESTAMP'2024-01-01 00:00:00'
            + INTERVAL (FLOOR((seq - 1) * (730 * 86400) / {rows}) + FLOOR(RAND(11) * 3600)) SECOND
            AS created,
        RAND(12) AS r_update, RAND(13) AS r_gap, RAND(14) AS r_score, RAND(15) AS r_pick,
        RAND(16) AS r_delete
    FROM seq_1_to_{rows}
) AS generated"""

# Column types of raw_data.nps for the five source columns (what our load creates).
COPY_TABLE_DDL = (
    f"create table {COPY_TABLE} (id integer, created_at timestamp, modified_at timestamp, "
    "score smallint, deleted smallint)"
)


# ------------------------------------------------------------------------------- settings


@dataclass(frozen=True)
class Settings:
    rows: int
    run_id: str
    mysql_host: str
    mysql_port: int
    mysql_user: str
    mysql_password: str
    pg_host: str
    pg_port: int
    pg_user: str
    pg_password: str
    mysql_db: str
    pg_db: str
    bucket: str
    s3_url: str = ""
    workdir: str = ""

    @property
    def dump_path(self) -> str:
        return str(Path(self.workdir) / "client_floor.tsv")

    def spec(self, **extra: Any) -> dict[str, Any]:
        return {**self.__dict__, **extra}


def settings_from(args: argparse.Namespace) -> Settings:
    run_id = f"{datetime.now(UTC):%Y%m%d%H%M%S}_{secrets.token_hex(3)}"
    return Settings(
        rows=args.rows,
        run_id=run_id,
        mysql_host=os.environ.get("MYSQL_HOST", "127.0.0.1"),
        mysql_port=int(os.environ.get("MYSQL_PORT", "3306")),
        mysql_user=os.environ.get("MYSQL_USER", "root"),
        mysql_password=os.environ.get("MYSQL_PASSWORD", ""),
        pg_host=os.environ.get("PGHOST", "127.0.0.1"),
        pg_port=int(os.environ.get("PGPORT", "5432")),
        pg_user=os.environ.get("PGUSER", "root"),
        pg_password=os.environ.get("PGPASSWORD", ""),
        mysql_db=f"bench_{run_id}",
        pg_db=f"bench_{run_id}",
        bucket=f"bench-{run_id.replace('_', '-')}",
    )


def mysql_connection(s: Settings, database: str | None = None) -> Any:
    import MySQLdb

    options: dict[str, Any] = {
        "host": s.mysql_host,
        "port": s.mysql_port,
        "user": s.mysql_user,
        "password": s.mysql_password,
        "charset": "utf8mb4",
    }
    if database:
        options["database"] = database
    db = MySQLdb.connect(**options)
    db.autocommit(True)
    return db


def pg_connection(s: Settings, database: str) -> Any:
    import psycopg2

    db = psycopg2.connect(
        host=s.pg_host, port=s.pg_port, user=s.pg_user, password=s.pg_password or None, dbname=database
    )
    db.autocommit = True
    return db


def pipeline_connections(s: Settings) -> dict[str, Any]:
    """The pipeline's own Connection objects for the bench databases and the S3 server."""
    from ingestion.environments import Connection, loopback_s3_connection

    return {
        "source": Connection(
            "bench_source", "mysql", host=s.mysql_host, port=s.mysql_port, login=s.mysql_user,
            password=s.mysql_password or None, schema=s.mysql_db,
        ),
        "warehouse": Connection(
            "bench_warehouse", "postgres", host=s.pg_host, port=s.pg_port, login=s.pg_user,
            password=s.pg_password or None, schema=s.pg_db,
        ),
        "aws": loopback_s3_connection(s.s3_url, "bench_aws"),
    }  # fmt: skip


def table_config(s: Settings) -> Any:
    from ingestion.config import parse_table

    return parse_table(
        {
            "name": TABLE,
            "source_schema": s.mysql_db,
            "primary_key": "id",
            "mode": "full_refresh",
            "soft_delete": "deleted",
        },
        0,
    )


def bench_window() -> Any:
    from ingestion.window import Window

    return Window(datetime(2000, 1, 1), datetime(2100, 1, 1))


# -------------------------------------------------------------------------------- workers
# Each runs in its own process and returns a dict; "wall_s" and "cpu_s" cover the measured
# part only (imports, connections set-up and checks are outside the clock).


class Clock:
    """Wall seconds and CPU seconds (this process and its waited-for children) of a block."""

    wall = cpu = 0.0

    @staticmethod
    def _cpu() -> float:
        times = os.times()
        return times.user + times.system + times.children_user + times.children_system

    def __enter__(self) -> Clock:
        self._wall, self._cpu0 = time.perf_counter(), self._cpu()
        return self

    def __exit__(self, *exc: object) -> None:
        self.wall = time.perf_counter() - self._wall
        self.cpu = self._cpu() - self._cpu0


def timed_command(command: list[str], env: dict[str, str], rss_file: Path) -> tuple[Clock, Any]:
    """Run a command under the clock; under GNU time (its max RSS into rss_file) when installed."""
    if Path("/usr/bin/time").exists():
        command = ["/usr/bin/time", "-f", "%M", "-o", str(rss_file), *command]
    with Clock() as clock:
        done = subprocess.run(command, env=env, check=False, capture_output=True, text=True)
    return clock, done


def command_max_rss_mb(rss_file: Path) -> float | None:
    try:
        return round(int(rss_file.read_text().split()[-1]) / 1024, 1)
    except (OSError, ValueError, IndexError):
        return None


def _worker_ours_extract(s: Settings, spec: dict) -> dict:
    import ingestion.extract as extract_module
    from ingestion.mysql_source import MySQLSource
    from ingestion.stage import open_stage

    connections = pipeline_connections(s)
    table = table_config(s)
    # Light instrumentation (one timer per batch): where the wall time goes. Parquet
    # writing runs in the extract's writer thread, overlapping the reads: it is
    # reported apart and not subtracted from the wall.
    phases = {"read_source_s": 0.0, "add_metadata_s": 0.0, "close_upload_s": 0.0}
    writer_thread = {"write_parquet_s": 0.0}
    write, with_metadata = extract_module.PartWriter.write, extract_module.with_metadata
    close = extract_module.PartWriter.close

    def timed_close(self: Any) -> Any:
        started = time.perf_counter()
        try:
            return close(self)
        finally:
            phases["close_upload_s"] += time.perf_counter() - started

    def timed_write(self: Any, batch: Any) -> None:
        started = time.perf_counter()
        write(self, batch)
        writer_thread["write_parquet_s"] += time.perf_counter() - started

    def timed_metadata(*a: Any, **k: Any) -> Any:
        started = time.perf_counter()
        result = with_metadata(*a, **k)
        phases["add_metadata_s"] += time.perf_counter() - started
        return result

    extract_module.PartWriter.write = timed_write  # type: ignore[method-assign]
    extract_module.PartWriter.close = timed_close  # type: ignore[method-assign]
    extract_module.with_metadata = timed_metadata  # type: ignore[assignment]

    source = MySQLSource(connections["source"])
    read = source.read

    def timed_read(*a: Any, **k: Any) -> Any:
        batches = read(*a, **k)
        while True:
            started = time.perf_counter()
            try:
                batch = next(batches)
            except StopIteration:
                return
            finally:
                phases["read_source_s"] += time.perf_counter() - started
            yield batch

    source.read = timed_read  # type: ignore[method-assign]
    stage = open_stage(f"s3://{s.bucket}/ours", connections["aws"])
    with Clock() as clock:
        result = extract_module.extract(table, bench_window(), source, stage)
    source.close()
    # connect, columns, manifest, waits for the writer thread
    phases["other_s"] = clock.wall - sum(phases.values())
    phases["writer_thread_parquet_s"] = writer_thread["write_parquet_s"]
    return {
        "wall_s": clock.wall,
        "cpu_s": clock.cpu,
        "rows": result.rows,
        "manifest_url": result.manifest_url,
        "files": result.files,
        "bytes": result.bytes,
        "phases": {k: round(v, 3) for k, v in phases.items()},
    }


def _worker_ours_load(s: Settings, spec: dict) -> dict:
    import ingestion.load as load_module
    from ingestion.stage import open_stage

    connections = pipeline_connections(s)
    table = table_config(s)
    stage = open_stage(f"s3://{s.bucket}/ours", connections["aws"])
    warehouse = load_module.open_warehouse(connections["warehouse"])
    if spec.get("staged"):
        # The path of a batch that must be merged (an incremental batch into a table that
        # holds rows, or any Redshift load): staging table, then INSERT ... SELECT.
        warehouse.loads_into_target = False

    # Time each statement of the load transaction (one timer per statement).
    phases: dict[str, float] = {}

    def timed(name: str, function: Any) -> Any:
        def wrapper(*a: Any, **k: Any) -> Any:
            started = time.perf_counter()
            try:
                return function(*a, **k)
            finally:
                phases[name] = phases.get(name, 0.0) + time.perf_counter() - started

        return wrapper

    execute = warehouse.execute

    def timed_execute(cursor: Any, sql: str, params: dict | None = None) -> int:
        words = sql.split()
        size = 4 if words and words[0].lower() in ("create", "drop") else 3
        name = " ".join(words[:size]).lower() if words else "?"
        return timed(f"sql: {name}", execute)(cursor, sql, params)

    warehouse.execute = timed_execute  # type: ignore[method-assign]
    warehouse.bulk_load = timed("bulk_load (parquet -> binary copy)", warehouse.bulk_load)  # type: ignore[method-assign]
    warehouse.scalar = timed("sql: scalar queries", warehouse.scalar)  # type: ignore[method-assign]

    with Clock() as clock:
        result = load_module.load(table, spec["manifest_url"], bench_window(), warehouse, stage)
    phases["other (manifest, schema, lock, commit)"] = clock.wall - sum(phases.values())
    return {
        "wall_s": clock.wall,
        "cpu_s": clock.cpu,
        "rows": result.rows_inserted,
        "rows_staged": result.rows_staged,
        "phases": {k: round(v, 3) for k, v in phases.items()},
    }


def _worker_sql_to_s3_operator(s: Settings, spec: dict) -> dict:
    # AIRFLOW_HOME and the AIRFLOW_CONN_* variables are set by the parent (see airflow_env).
    if spec.get("peer_site"):
        sys.path.append(spec["peer_site"])  # after the venv: only pandas/numpy come from it
    import pandas  # noqa: F401  (imported before the clock, like our modules)
    from airflow.providers.amazon.aws.transfers.sql_to_s3 import SqlToS3Operator

    def operator(task_id: str, query: str, key: str) -> Any:
        return SqlToS3Operator(
            task_id=task_id,
            query=query,
            s3_bucket=s.bucket,
            s3_key=key,
            sql_conn_id="bench_mysql",
            aws_conn_id="bench_aws",
            file_format="parquet",
            replace=True,
        )

    # Warm-up on one row: Airflow's one-off costs (connections, hooks, plugins, boto3 client
    # set-up) are paid outside the clock, so the measurement is the operator's per-row work.
    warm = time.perf_counter()
    operator("warm_up", f"SELECT * FROM {TABLE} LIMIT 1", "peer/warm-up.parquet").execute(context={})
    warm_up = time.perf_counter() - warm

    with Clock() as clock:
        operator("sql_to_s3", f"SELECT * FROM {TABLE}", spec["key"]).execute(context={})
    return {
        "wall_s": clock.wall,
        "cpu_s": clock.cpu,
        "rows": None,
        "key": spec["key"],
        "warm_up_s": round(warm_up, 3),
        "pandas": importlib.metadata.version("pandas"),
    }


def _worker_client_floor(s: Settings, spec: dict) -> dict:
    command = (
        f"mariadb --quick -B -h {s.mysql_host} -P {s.mysql_port} --protocol=TCP -u {s.mysql_user} "
        f'-e "SELECT * FROM {s.mysql_db}.{TABLE}" > {s.dump_path}'
    )
    env = dict(os.environ)
    if s.mysql_password:
        env["MYSQL_PWD"] = s.mysql_password
    rss_file = Path(s.workdir) / "client_floor.maxrss"
    clock, done = timed_command(["bash", "-c", command], env, rss_file)
    if done.returncode != 0:
        raise RuntimeError(f"{command} exited with {done.returncode}: {done.stderr.strip()}")
    lines = 0
    with open(s.dump_path, "rb") as dump:
        while chunk := dump.read(1 << 20):
            lines += chunk.count(b"\n")
    return {
        "wall_s": clock.wall,
        "cpu_s": clock.cpu,
        "rows": lines - 1,  # the first line holds the column names
        "bytes": Path(s.dump_path).stat().st_size,
        "command": command,
        "client_max_rss_mb": command_max_rss_mb(rss_file),
    }


def _worker_copy_floor(s: Settings, spec: dict) -> dict:
    # The client dump is PostgreSQL's text format already (tab-separated, \-escaped);
    # the first line holds the column names.
    copy = f"\\copy {COPY_TABLE} from '{s.dump_path}' with (format text, header true)"
    command = ["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", s.pg_host, "-p", str(s.pg_port)]
    command += ["-U", s.pg_user, "-d", s.pg_db, "-c", copy]
    env = dict(os.environ)
    if s.pg_password:
        env["PGPASSWORD"] = s.pg_password
    rss_file = Path(s.workdir) / "copy_floor.maxrss"
    clock, done = timed_command(command, env, rss_file)
    if done.returncode != 0:
        raise RuntimeError(f"psql {copy} exited with {done.returncode}: {done.stderr.strip()}")
    rows = None
    for line in done.stdout.splitlines():
        if line.startswith("COPY "):
            rows = int(line.split()[1])
    return {
        "wall_s": clock.wall,
        "cpu_s": clock.cpu,
        "rows": rows,
        "command": copy,
        "client_max_rss_mb": command_max_rss_mb(rss_file),
    }


WORKERS = {
    "client_floor": _worker_client_floor,
    "copy_floor": _worker_copy_floor,
    "ours_extract": _worker_ours_extract,
    "ours_load": _worker_ours_load,
    "ours_load_staged": _worker_ours_load,
    "sql_to_s3_operator": _worker_sql_to_s3_operator,
}
DESCRIPTIONS = {
    "client_floor": "mariadb --quick -B > file",
    "copy_floor": "psql \\copy FROM file",
    "ours_extract": "extract(): MariaDB -> S3 Parquet + manifest",
    "ours_load": "load(): manifest -> PostgreSQL raw_data",
    "ours_load_staged": "the same load through a staging table + merge",
    "sql_to_s3_operator": "Airflow SqlToS3Operator (parquet)",
}


def own_peak_rss_mb() -> float | None:
    """This process's RSS high-water mark (VmHWM); reset by exec, so not the parent's."""
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return None


def worker_main(name: str, spec_text: str) -> int:
    """Run one measurement; print its JSON on the original stdout (everything else to stderr)."""
    result_fd = os.dup(1)
    os.dup2(2, 1)  # libraries that print or log to stdout cannot garble the result
    sys.stdout = sys.stderr
    spec = json.loads(spec_text)
    if spec.get("ingestion_root"):  # --ingestion-root: measure another copy of the package
        sys.path.insert(0, spec["ingestion_root"])
    fields = {k: spec[k] for k in Settings.__dataclass_fields__}
    settings = Settings(**fields)
    try:
        result = WORKERS[name](settings, spec)
        result["ok"] = True
        result["worker_peak_rss_mb"] = own_peak_rss_mb()
        code = 0
    except BaseException as exc:  # report every failure, including KeyboardInterrupt
        traceback.print_exc()
        result = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
        code = 1
    with os.fdopen(result_fd, "w") as out:
        out.write(json.dumps(result, default=str) + "\n")
    return code


# ---------------------------------------------------------------------------- measuring


@dataclass
class Measurement:
    name: str
    ok: bool = False
    wall_s: float | None = None
    rows: int | None = None
    peak_rss_mb: float | None = None
    sampled_tree_rss_mb: float | None = None
    worker_peak_rss_mb: float | None = None
    cpu_s: float | None = None
    error: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)
    skipped: str | None = None

    @property
    def rows_per_s(self) -> float | None:
        if self.ok and self.wall_s and self.rows is not None:
            return self.rows / self.wall_s
        return None

    def as_dict(self) -> dict[str, Any]:
        document = {
            "name": self.name,
            "description": DESCRIPTIONS.get(self.name, ""),
            "ok": self.ok,
            "wall_s": _round(self.wall_s, 3),
            "rows": self.rows,
            "rows_per_s": _round(self.rows_per_s, 0),
            "peak_rss_mb": _round(self.peak_rss_mb, 1),
            "sampled_tree_rss_mb": _round(self.sampled_tree_rss_mb, 1),
            "worker_peak_rss_mb": _round(self.worker_peak_rss_mb, 1),
            "cpu_s": _round(self.cpu_s, 3),
            "detail": self.detail,
        }
        if self.error:
            document["error"] = self.error
        if self.skipped:
            document["skipped"] = self.skipped
        return document


def _round(value: float | None, digits: int) -> float | None:
    return None if value is None else round(value, digits)


def tree_rss(process: Any) -> int:
    """RSS of a process and all of its descendants, in bytes (0 once it is gone)."""
    import psutil

    total = 0
    try:
        members = [process, *process.children(recursive=True)]
    except psutil.Error:
        return 0
    for member in members:
        with contextlib.suppress(psutil.Error):
            total += member.memory_info().rss
    return total


def measure(name: str, settings: Settings, env: dict[str, str], **extra: Any) -> Measurement:
    """Run one worker subprocess, sample its tree's RSS every 50 ms, read its JSON result."""
    import psutil

    measurement = Measurement(name)
    workdir = Path(settings.workdir)
    out_path, log_path = workdir / f"{name}.out", workdir / f"{name}.log"
    command = [sys.executable, str(Path(__file__).resolve()), "--worker", name]
    command += ["--spec", json.dumps(settings.spec(ingestion_root=INGESTION_ROOT, **extra))]
    print(f"bench: {name}: running ({DESCRIPTIONS[name]}) ...", flush=True)
    with open(out_path, "wb") as out, open(log_path, "wb") as log:
        child = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=out, stderr=log, env=env, cwd=REPO_ROOT,
            start_new_session=True,
        )  # fmt: skip
        process = psutil.Process(child.pid)
        peak = 0
        deadline = time.monotonic() + MEASUREMENT_TIMEOUT
        try:
            while True:
                peak = max(peak, tree_rss(process))
                pid, status, rusage = os.wait4(child.pid, os.WNOHANG)
                if pid:
                    # CPU of the whole worker tree over its life (imports included)
                    measurement.detail["worker_total_cpu_s"] = round(rusage.ru_utime + rusage.ru_stime, 2)
                    child.returncode = os.waitstatus_to_exitcode(status)
                    break
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{name} did not finish within {MEASUREMENT_TIMEOUT:.0f}s")
                time.sleep(SAMPLE_SECONDS)
        except BaseException as exc:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(child.pid, signal.SIGKILL)
            child.wait()
            if not isinstance(exc, TimeoutError):
                raise
            measurement.error = str(exc)
            print(f"bench: {name}: ERROR {exc}", flush=True)
            return measurement
    measurement.sampled_tree_rss_mb = peak / 2**20
    text = out_path.read_text().strip()
    try:
        result = json.loads(text.splitlines()[-1]) if text else {}
    except json.JSONDecodeError:
        result = {}
    if child.returncode != 0 or not result.get("ok"):
        tail = log_path.read_text(errors="replace")[-3000:]
        error = result.get("error") or f"worker exited with code {child.returncode}"
        measurement.error = f"{error}\n--- last lines of {log_path} ---\n{tail}"
        print(f"bench: {name}: ERROR {error}", flush=True)
        return measurement
    measurement.ok = True
    measurement.wall_s = float(result.pop("wall_s"))
    measurement.cpu_s = result.pop("cpu_s", None)
    measurement.rows = result.pop("rows", None)
    measurement.worker_peak_rss_mb = result.pop("worker_peak_rss_mb", None)
    # Peak RSS: the largest sum over the worker's process tree seen by the 50 ms sampler, or
    # the worker's own high-water mark when a short spike fell between two samples.
    measurement.peak_rss_mb = max(measurement.sampled_tree_rss_mb, measurement.worker_peak_rss_mb or 0.0)
    result.pop("ok", None)
    measurement.detail = {**result, **measurement.detail}
    print(
        f"bench: {name}: {measurement.wall_s:.2f} s, peak RSS {measurement.peak_rss_mb:.0f} MB",
        flush=True,
    )
    return measurement


def fail(measurement: Measurement, message: str) -> None:
    measurement.ok = False
    measurement.error = message
    print(f"bench: {measurement.name}: ERROR {message}", flush=True)


# ------------------------------------------------------------------------ verification


def s3_filesystem(settings: Settings) -> Any:
    from ingestion.stage import s3_filesystem as make

    return make(pipeline_connections(settings)["aws"])


def verify_rows(measurement: Measurement, settings: Settings, expected: dict[str, Any]) -> None:
    """Count the rows where the measurement put them; a difference is an error."""
    if not measurement.ok:
        return
    import pyarrow.parquet as pq

    name, n = measurement.name, settings.rows
    try:
        if name == "client_floor":
            found = measurement.rows
        elif name == "ours_extract":
            from ingestion.stage import open_stage

            stage = open_stage(f"s3://{settings.bucket}/ours", pipeline_connections(settings)["aws"])
            manifest = stage.read_manifest(measurement.detail["manifest_url"])
            found = sum(stage.open_parquet(e.url).metadata.num_rows for e in manifest.entries)
            if manifest.record_count != found:
                return fail(
                    measurement, f"manifest lists {manifest.record_count:,} rows, files hold {found:,}"
                )
        elif name == "sql_to_s3_operator":
            path = f"{settings.bucket}/{measurement.detail['key']}"
            with s3_filesystem(settings).open_input_file(path) as handle:
                found = pq.ParquetFile(handle).metadata.num_rows
            measurement.rows = found
        else:
            table = COPY_TABLE if name == "copy_floor" else f"{RAW_SCHEMA}.{TABLE}"
            db = pg_connection(settings, settings.pg_db)
            try:
                with db.cursor() as cursor:
                    cursor.execute(
                        f"select count(*), sum(score), sum(deleted), max(modified_at)::text from {table}"
                    )
                    found, score, deleted, last = cursor.fetchone()
            finally:
                db.close()
            checksum = {
                "sum_score": int(score or 0),
                "sum_deleted": int(deleted or 0),
                "max_modified_at": last,
            }
            if checksum != expected:
                return fail(measurement, f"PostgreSQL {table} checksum {checksum} != source {expected}")
    except Exception as exc:
        return fail(measurement, f"row count check failed: {type(exc).__name__}: {exc}")
    measurement.detail["verified_rows"] = found
    if found != n:
        return fail(measurement, f"ROW COUNT MISMATCH: expected {n:,} rows, found {found:,}")
    if measurement.rows is not None and measurement.rows != n:
        return fail(
            measurement, f"ROW COUNT MISMATCH: the worker reported {measurement.rows:,}, expected {n:,}"
        )
    measurement.rows = n


# ------------------------------------------------------------------------------ set-up


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def create_source(settings: Settings) -> dict[str, Any]:
    """Create the bench database and fill nps with N rows; return a checksum of the rows."""
    db = mysql_connection(settings)
    try:
        with db.cursor() as cursor:
            cursor.execute(f"CREATE DATABASE `{settings.mysql_db}`")
            cursor.execute(f"USE `{settings.mysql_db}`")
            cursor.execute(NPS_DDL)
            cursor.execute(NPS_FILL.format(table=TABLE, rows=int(settings.rows)))
            # Warm the buffer pool / page cache the same way for every measurement.
            cursor.execute(
                "SELECT COUNT(*), SUM(score), SUM(deleted), MAX(modified_at) "
                f"FROM {TABLE} IGNORE INDEX (nps_modified_at)"
            )
            count, score, deleted, last = cursor.fetchone()
    finally:
        db.close()
    if count != settings.rows:
        raise RuntimeError(f"generated {count:,} rows instead of {settings.rows:,}")
    return {"sum_score": int(score), "sum_deleted": int(deleted), "max_modified_at": str(last)}


def create_warehouse(settings: Settings) -> None:
    db = pg_connection(settings, "postgres")
    try:
        with db.cursor() as cursor:
            cursor.execute(f'create database "{settings.pg_db}"')
    finally:
        db.close()
    db = pg_connection(settings, settings.pg_db)
    try:
        with db.cursor() as cursor:
            cursor.execute(COPY_TABLE_DDL)
    finally:
        db.close()


def reset_warehouse(settings: Settings, copy_table: bool) -> None:
    """Empty the COPY floor table, or drop raw_data so that load() creates an empty table."""
    db = pg_connection(settings, settings.pg_db)
    try:
        with db.cursor() as cursor:
            if copy_table:
                cursor.execute(f"truncate {COPY_TABLE}")
            else:
                cursor.execute(f"drop schema if exists {RAW_SCHEMA} cascade")
            with contextlib.suppress(Exception):  # needs superuser or pg_checkpoint
                cursor.execute("checkpoint")  # no dirty pages of a previous measurement left to write
    finally:
        db.close()


class ServerCpu:
    """CPU seconds used by MariaDB, PostgreSQL and the S3 server (for the record: the three
    share the machine's cores with the measured process). Other clients' work counts too."""

    def __init__(self, s3_port: int) -> None:
        import psutil

        self.groups: dict[str, list[Any]] = {"mariadb": [], "postgres": [], "s3_server": []}
        for process in psutil.process_iter(["name", "cmdline"]):
            name, cmdline = process.info["name"] or "", process.info["cmdline"] or []
            if name in ("mariadbd", "mysqld"):
                self.groups["mariadb"].append(process)
            elif name in ("postgres", "postmaster"):
                self.groups["postgres"].append(process)
            elif "moto.server" in cmdline and str(s3_port) in cmdline:
                self.groups["s3_server"].append(process)

    @staticmethod
    def _cpu(process: Any) -> float:
        # children: PostgreSQL backends that ended (one per connection) are counted there
        try:
            t = process.cpu_times()
        except Exception:
            return 0.0
        return t.user + t.system + t.children_user + t.children_system

    def snapshot(self) -> dict[str, float]:
        return {group: sum(self._cpu(p) for p in processes) for group, processes in self.groups.items()}

    def since(self, before: dict[str, float]) -> dict[str, float]:
        after = self.snapshot()
        return {group: round(after[group] - before[group], 2) for group in after if self.groups[group]}


def drop_databases(settings: Settings, created: set[str]) -> None:
    if "mysql" in created:
        try:
            db = mysql_connection(settings)
            with db.cursor() as cursor:
                cursor.execute(f"DROP DATABASE IF EXISTS `{settings.mysql_db}`")
            db.close()
            print(f"bench: dropped MariaDB database {settings.mysql_db}")
        except Exception as exc:
            print(
                f"bench: WARNING could not drop MariaDB database {settings.mysql_db}: {exc}", file=sys.stderr
            )
    if "postgres" in created:
        try:
            db = pg_connection(settings, "postgres")
            with db.cursor() as cursor:
                cursor.execute(f'drop database if exists "{settings.pg_db}" with (force)')
            db.close()
            print(f"bench: dropped PostgreSQL database {settings.pg_db}")
        except Exception as exc:
            print(
                f"bench: WARNING could not drop PostgreSQL database {settings.pg_db}: {exc}", file=sys.stderr
            )


def ensure_peer_site() -> str | None:
    """A directory holding pandas for SqlToS3Operator, or None when the venv has it already."""
    if importlib.util.find_spec("pandas") is not None:
        return None
    marker = PEER_SITE / ".requirements"
    if marker.exists() and marker.read_text() == "\n".join(PEER_REQUIREMENTS):
        return str(PEER_SITE)
    shutil.rmtree(PEER_SITE, ignore_errors=True)
    PEER_SITE.mkdir(parents=True)
    print(f"bench: installing {' '.join(PEER_REQUIREMENTS)} for SqlToS3Operator into {PEER_SITE}")
    uv = shutil.which("uv")
    if uv:
        command = [uv, "pip", "install", "--quiet", "--python", sys.executable, "--target", str(PEER_SITE)]
    else:
        command = [sys.executable, "-m", "pip", "install", "--quiet", "--target", str(PEER_SITE)]
    env = {**os.environ, "UV_PYTHON_DOWNLOADS": "never"}
    subprocess.run([*command, "--no-deps", *PEER_REQUIREMENTS], check=True, env=env)
    marker.write_text("\n".join(PEER_REQUIREMENTS))
    return str(PEER_SITE)


def airflow_env(settings: Settings, airflow_home: Path) -> dict[str, str]:
    mysql = {
        "conn_type": "mysql",
        "host": settings.mysql_host,
        "port": settings.mysql_port,
        "login": settings.mysql_user,
        "schema": settings.mysql_db,
    }
    if settings.mysql_password:
        mysql["password"] = settings.mysql_password
    # The same connection as ours (keys, endpoint, checksum setting), as Airflow reads it.
    aws = json.loads(pipeline_connections(settings)["aws"].to_json())
    return {
        "AIRFLOW_HOME": str(airflow_home),
        "AIRFLOW_CONN_BENCH_MYSQL": json.dumps(mysql),
        "AIRFLOW_CONN_BENCH_AWS": json.dumps(aws),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_FOLDER": str(airflow_home / "dags"),
        "DO_NOT_TRACK": "1",
        "SCARF_NO_ANALYTICS": "true",
    }


# ------------------------------------------------------------------------------ report


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


def machine_info(settings: Settings, peer_site: str | None) -> dict[str, Any]:
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
            "pandas (SqlToS3Operator)": _version("pandas")
            or (PEER_REQUIREMENTS[0].split("==")[1] if peer_site else None),
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
                "value": _round(value, 3),
                "bound": f"{op} {bound:g}",
                "status": status,
            }
        )
    return checks


def render(
    rows: int, measurements: dict[str, Measurement], checks: list[dict[str, Any]], repeat: int = 1
) -> str:
    runs = f", fastest of {repeat} runs each" if repeat > 1 else ""
    lines = ["", f"benchmark: {rows:,} rows of nps{runs}", ""]
    header = f"{'measurement':<20} {'wall s':>8} {'rows/s':>12} {'peak RSS MB':>12} {'cpu s':>8}  what"
    lines += [header, "-" * len(header)]
    for name in TABLE_ORDER:
        m = measurements.get(name)
        if m is None:
            continue
        if m.skipped:
            lines.append(f"{name:<20} {'skipped':>8} {'':>12} {'':>12} {'':>8}  {m.skipped}")
            continue
        if not m.ok:
            lines.append(
                f"{name:<20} {'ERROR':>8} {'':>12} {'':>12} {'':>8}  {(m.error or '').splitlines()[0]}"
            )
            continue
        rate = f"{m.rows_per_s:,.0f}" if m.rows_per_s else "-"
        cpu = f"{m.cpu_s:.2f}" if m.cpu_s is not None else "-"
        lines.append(
            f"{name:<20} {m.wall_s:>8.2f} {rate:>12} {m.peak_rss_mb:>12.0f} {cpu:>8}  {DESCRIPTIONS[name]}"
        )
    lines += ["", f"{'ratio / target':<46} {'value':>9}  {'target':>8}  status", "-" * 76]
    names = {
        "extract_vs_client_floor": ("ours_extract / client_floor", "x"),
        "sql_to_s3_operator_vs_extract": ("sql_to_s3_operator / ours_extract (speedup)", "x"),
        "load_vs_copy_floor": ("ours_load / copy_floor", "x"),
        "ours_extract_peak_rss_mb": ("peak RSS of ours_extract", " MB"),
        "ours_load_peak_rss_mb": ("peak RSS of ours_load", " MB"),
    }
    for check in checks:
        label, unit = names[check["key"]]
        value = check["value"]
        digits = 3 if value is not None and round(value, 2) == float(check["bound"].split()[-1]) else 2
        shown = (
            "-" if value is None else (f"{value:.{digits}f}{unit}" if unit == "x" else f"{value:.0f}{unit}")
        )
        lines.append(f"{label:<46} {shown:>9}  {check['bound']:>8}  {check['status']}")
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


def write_results(document: dict[str, Any], rows: int, stamp: str) -> tuple[Path, Path]:
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    text = json.dumps(document, indent=2, default=str) + "\n"
    path = RESULTS_DIR / f"bench-{rows}-{stamp}.json"
    latest = RESULTS_DIR / f"latest-{rows}.json"
    path.write_text(text)
    latest.write_text(text)
    return path, latest


# -------------------------------------------------------------------------------- main


# The order the measurements run in, and the order of the printed table.
ORDER = ("client_floor", "copy_floor", "ours_extract", "ours_load", "ours_load_staged", "sql_to_s3_operator")
TABLE_ORDER = (
    "client_floor", "ours_extract", "sql_to_s3_operator", "copy_floor", "ours_load", "ours_load_staged",
)  # fmt: skip


def busy_cpu_s() -> float:
    """CPU seconds all cores of the machine spent busy (not idle, not waiting for I/O)."""
    import psutil

    times = psutil.cpu_times()
    return sum(times) - times.idle - getattr(times, "iowait", 0.0)


def run_round(
    settings: Settings,
    env: dict[str, str],
    peer_env: dict[str, str],
    peer_site: str | None,
    skip_peer: bool,
    expected: dict[str, Any],
    servers: ServerCpu,
    rounds: dict[str, list[Measurement]],
) -> None:
    """One measurement of each kind, in a fixed order; appended to ``rounds``."""

    def record(name: str, target_env: dict[str, str], **extra: Any) -> Measurement:
        before, busy, started = servers.snapshot(), busy_cpu_s(), time.monotonic()
        measurement = measure(name, settings, target_env, **extra)
        elapsed, busy = time.monotonic() - started, busy_cpu_s() - busy
        server_cpu = servers.since(before)
        measurement.detail["server_cpu_s"] = server_cpu
        # CPU used by everything else on the machine meanwhile (other tests, other benchmarks):
        # the machine's busy time minus the worker tree's and the three servers'.
        other = busy - measurement.detail.get("worker_total_cpu_s", 0.0) - sum(server_cpu.values())
        measurement.detail["other_cpu_cores"] = round(max(0.0, other) / max(elapsed, 1e-3), 2)
        verify_rows(measurement, settings, expected)
        rounds[name].append(measurement)
        return measurement

    client = record("client_floor", env)
    if client.ok:
        reset_warehouse(settings, copy_table=True)
        record("copy_floor", env)
    else:
        rounds["copy_floor"].append(Measurement("copy_floor", error="needs the client_floor dump"))
    extracted = record("ours_extract", env)
    if extracted.ok:
        reset_warehouse(settings, copy_table=False)  # an empty raw_data.nps for every load
        record("ours_load", env, manifest_url=extracted.detail["manifest_url"])
        reset_warehouse(settings, copy_table=False)
        record("ours_load_staged", env, manifest_url=extracted.detail["manifest_url"], staged=True)
    else:
        for name in ("ours_load", "ours_load_staged"):
            rounds[name].append(Measurement(name, error="needs the ours_extract manifest"))
    if skip_peer:
        rounds["sql_to_s3_operator"].append(Measurement("sql_to_s3_operator", skipped="--skip-peer"))
    else:
        record("sql_to_s3_operator", peer_env, key=f"peer/{TABLE}.parquet", peer_site=peer_site)


def best(runs: list[Measurement]) -> Measurement:
    """The fastest of the repeated runs (an error in any run is reported instead)."""
    failed = [m for m in runs if not m.ok and not m.skipped]
    if failed or runs[0].skipped:
        return failed[0] if failed else runs[0]
    chosen = min(runs, key=lambda m: m.wall_s or 0.0)
    chosen.detail["walls_s"] = [round(m.wall_s or 0.0, 3) for m in runs]
    return chosen


def run(args: argparse.Namespace) -> int:
    from ingestion.s3_server import ensure_bucket, running_s3_server

    settings = settings_from(args)
    started_at = datetime.now(UTC)
    stamp = f"{started_at:%Y%m%dT%H%M%SZ}"
    workdir = Path(tempfile.mkdtemp(prefix=f"bench-{settings.run_id}-"))
    settings = Settings(**{**settings.__dict__, "workdir": str(workdir)})
    created: set[str] = set()
    rounds: dict[str, list[Measurement]] = {name: [] for name in ORDER}
    setup_error: str | None = None
    generation_s = None
    peer_site = None
    expected: dict[str, Any] = {}
    print(f"bench: run {settings.run_id}: {settings.rows:,} rows, work dir {workdir}", flush=True)
    try:
        created.add("mysql")
        clock = time.perf_counter()
        expected = create_source(settings)
        generation_s = time.perf_counter() - clock
        print(
            f"bench: generated {settings.mysql_db}.{TABLE} ({settings.rows:,} rows) in {generation_s:.1f} s"
        )
        created.add("postgres")
        create_warehouse(settings)
        if not args.skip_peer:
            peer_site = ensure_peer_site()
        port = args.s3_port or free_port()
        with running_s3_server(port) as url:
            ensure_bucket(url, settings.bucket)
            settings = Settings(**{**settings.__dict__, "s3_url": url})
            print(f"bench: S3 server {url}, bucket {settings.bucket}", flush=True)
            env = dict(os.environ)
            env["PYTHONUNBUFFERED"] = "1"
            airflow_home = workdir / "airflow"
            (airflow_home / "dags").mkdir(parents=True)
            peer_env = {**env, **airflow_env(settings, airflow_home)}
            servers = ServerCpu(port)
            for round_number in range(1, args.repeat + 1):
                if args.repeat > 1:
                    print(f"bench: round {round_number} of {args.repeat}", flush=True)
                run_round(settings, env, peer_env, peer_site, args.skip_peer, expected, servers, rounds)
    except BaseException as exc:
        setup_error = f"{type(exc).__name__}: {exc}"
        traceback.print_exc()
        if isinstance(exc, KeyboardInterrupt):
            print("bench: interrupted", file=sys.stderr)
    finally:
        if args.keep:
            print(
                f"bench: --keep: MariaDB {settings.mysql_db}, PostgreSQL {settings.pg_db}, work dir {workdir}"
            )
        else:
            drop_databases(settings, created)
            shutil.rmtree(workdir, ignore_errors=True)

    measurements = {name: best(runs) for name, runs in rounds.items() if runs}
    skipped = {m.name for m in measurements.values() if m.skipped}
    values = ratios(measurements)
    checks = evaluate(values, skipped)
    print(render(settings.rows, measurements, checks, args.repeat))
    errors = [f"{m.name}: {m.error}" for m in measurements.values() if not m.ok and not m.skipped]
    if setup_error:
        errors.insert(0, f"setup: {setup_error}")
    document = {
        "rows": settings.rows,
        "run_id": settings.run_id,
        "started_at": started_at.isoformat(),
        "finished_at": datetime.now(UTC).isoformat(),
        "generation_s": _round(generation_s, 3),
        "source_checksum": expected,
        "options": {
            "skip_peer": args.skip_peer,
            "keep": args.keep,
            "repeat": args.repeat,
            "ingestion_root": INGESTION_ROOT,
        },
        "machine": machine_info(settings, peer_site),
        "measurements": {name: m.as_dict() for name, m in measurements.items()},
        "ratios": {k: _round(v, 3) for k, v in values.items()},
        "targets": checks,
        "errors": errors,
    }
    path, latest = write_results(document, settings.rows, stamp)
    print(f"bench: results written to {path.relative_to(REPO_ROOT)} and {latest.relative_to(REPO_ROOT)}")
    if errors:
        print("bench: FAILED:", file=sys.stderr)
        for error in errors:
            print(f"  {error}", file=sys.stderr)
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="bench/run.py",
        description="Benchmark our extract/load against SqlToS3Operator and the client floors.",
    )
    parser.add_argument(
        "--rows", type=int, default=1_000_000, help="rows of the nps table (default 1,000,000)"
    )
    parser.add_argument(
        "--skip-peer", action="store_true", help="skip SqlToS3Operator (it needs GBs of memory at 5M rows)"
    )
    parser.add_argument(
        "--keep", action="store_true", help="keep the MariaDB/PostgreSQL databases and work dir"
    )
    parser.add_argument("--s3-port", type=int, default=0, help="port of the S3 server (default: a free one)")
    parser.add_argument(
        "--repeat", type=int, default=3, help="run every measurement N times, report the fastest (default 3)"
    )
    parser.add_argument(
        "--ingestion-root",
        help="measure the ingestion package found in this directory (e.g. a scratch copy with a fix)",
    )
    parser.add_argument("--worker", choices=sorted(WORKERS), help=argparse.SUPPRESS)
    parser.add_argument("--spec", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        return worker_main(args.worker, args.spec or "{}")
    if args.rows < 1:
        parser.error("--rows must be at least 1")
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    if args.ingestion_root:
        global INGESTION_ROOT
        root = Path(args.ingestion_root).resolve()
        if not (root / "ingestion" / "__init__.py").exists():
            parser.error(f"--ingestion-root {root}: no ingestion package there")
        INGESTION_ROOT = str(root)

    def terminate(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, terminate)
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
